"""The URL patterns an HTTP-level run learns from the loop's own requests, and what each of
them has been shown: templates made exact.

A pattern is learned from a request the loop made itself (``Window.find``), and sends
nothing until it has predicted one of the loop's own requests exactly: a later request of
the loop, for another item and another URL, that the pattern makes for that item
(``Pattern.match``, which also keeps only the ways of making it that fit), with the request
it would have sent for it (this URL, the headers of the request it was learned from) equal
to the loop's. Then it is ``confirmed``, and followed for the whole window (``_http_run``).
Until then a wrong pattern costs nothing: nothing it predicted was sent.

It retires, for the rest of the run, at its first miss:

- the loop's request for an item holds the item's values where the pattern has them, but
  written otherwise (``Pattern.near``: another encoding), or its headers differ from the
  pattern's prediction (``_http_run`` says which);
- a request it sent ahead for an item was never asked for, while the loop asked for another
  URL of the same shape for that item (``Sent.contradicted``).

A retired pattern's kind (its shape and the places of its holes, whatever their text) is not
learned again in this run, so a wrong template costs at most one window of requests; what it
had sent is still served where the loop asks for exactly that. Every request it sent ahead
for an item the loop asks for is served only if it is exactly the loop's: never twice.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._ahead import Ahead, Taught, Window
from ._itself import Replay, Whole
from ._requests import Pattern, Url

if TYPE_CHECKING:
    from .._integrations import Client, Request

__all__ = ["MAX_PATTERNS", "Templates"]

#: URL patterns learned per run at most (requests per item the loop makes).
MAX_PATTERNS = 16


class Templates:
    """The patterns of one run (``learned``, in the order learned) and the kinds retired."""

    __slots__ = ("_retired", "items", "learned", "replay")

    def __init__(self, items: Window, *, replay: bool) -> None:
        self.items = items
        self.replay = replay
        self.learned: list[Taught] = []
        self._retired: set[Any] = set()

    def observe(self, client: Client, wrapped: Any, instance: Any, request: Request) -> tuple[Ahead | None, str | None]:
        """A request the loop made itself (nothing sent ahead answered it): what it shows each
        pattern, or the pattern it teaches. Returns the item it is for, if found, and, when it
        was a pattern's prediction but for its headers, which of them differed."""
        url = Url(request.url)
        at: Ahead | None = None
        differs: str | None = None
        made = False
        unmade: list[Taught] = []  # of its shape, but not made by them
        for known in self.learned:
            if known.retired or known.client is not client or known.base.method != request.method:
                continue
            found = self._made_by(known, url)
            if found is None:
                if known.skeleton == url.skeleton and url.text != known.first:
                    unmade.append(known)
                continue
            entry, narrowed = found
            at = at or entry
            if narrowed is None:  # its values, written otherwise: a wrong prediction
                self.retire(known)
                continue
            made = True
            differs = self._shown(known, narrowed, entry, request, wrapped, instance) or differs
        if not made:
            learned = self.items.find(request.method, url, replay=self.replay, library=client.library)
            if learned is not None:
                at = at or learned[0]
                self._add(learned[1], client, wrapped, instance, request, learned[0])
        if at is not None:
            at.miss(request.method, url.skeleton)
            for known in unmade:
                known.tested = known.tested or at.index != known.at  # the loop's request for another item
        return at, differs

    def _made_by(self, known: Taught, url: Url) -> tuple[Ahead, Pattern | Replay | Whole | None] | None:
        """The first item ahead for which the pattern makes ``url``, narrowed to the ways that
        do; else the first whose values it holds, written otherwise (None for the pattern)."""
        pattern = known.pattern
        if not pattern.fits(url):
            return None
        entries = self.items.entries
        for entry in entries:
            narrowed = pattern.match(url, entry.item)
            if narrowed is not None:
                return entry, narrowed
        for entry in entries:
            if pattern.near(url, entry.item):
                return entry, None
        return None

    def _shown(
        self,
        known: Taught,
        narrowed: Pattern | Replay | Whole,
        entry: Ahead,
        request: Request,
        wrapped: Any,
        instance: Any,
    ) -> str | None:
        """The pattern made the loop's request for ``entry``: keep the ways that did; the
        first time for another item and another URL, compare the whole request it would have
        sent, and confirm it or retire it. Returns the headers that differed, if any."""
        known.narrow(narrowed, entry.index)
        if not narrowed.open:  # every place is only ever its first text: it predicts nothing
            self.retire(known)
            return None
        if not known.confirmed:
            if entry.index == known.at or request.url == known.first:
                known.seen(request, wrapped, instance, entry.fields)
                return None  # the item it was learned from, or the same URL again: no test
            predicted = known.client.rebuild(known.base, known.instance, request.url)
            if predicted is None or predicted.extra != request.extra:
                self.retire(known)
                return predicted.differs(request) if predicted is not None else None
            known.confirmed = True
        known.seen(request, wrapped, instance, entry.fields)
        known.upto = max(known.upto, entry.index)
        return None

    def _add(
        self,
        pattern: Pattern | Replay | Whole,
        client: Client,
        wrapped: Any,
        instance: Any,
        request: Request,
        entry: Ahead,
    ) -> None:
        if len(self.learned) >= MAX_PATTERNS or pattern.loose in self._retired:
            return  # a kind that retired in this run is not learned again
        if any(known.pattern.kind == pattern.kind for known in self.learned if not known.retired):
            return  # one that did not make this request: it is not made by this kind either
        self.learned.append(
            Taught(pattern, client, wrapped, instance, request, entry.index, entry.unplaced, entry.fields)
        )

    def retire(self, known: Taught) -> None:
        """Predict nothing more with this pattern, nor with any of its kind, in this run."""
        self._retired.add(known.pattern.loose)
        for other in self.learned:
            if other.pattern.loose == known.pattern.loose:
                other.retired = True

    def close(self) -> None:
        """The loop ended: patterns never confirmed, of a kind whose requests the loop made
        for other items than predicted, are ones the loop did not follow (``_why`` says so)."""
        missed = {known.pattern.loose for known in self.learned if known.tested and not known.confirmed}
        for known in self.learned:
            if not known.confirmed and known.pattern.loose in missed:
                known.retired = True
