"""What an HTTP-level run holds ahead of the loop: the items read ahead (:class:`Window`,
each an :class:`Ahead` with the requests :class:`Sent` for it and the shapes of the requests
the loop made itself while at it), the patterns it learned (:class:`Taught`, with each
item's URL counted: a URL two items in the window share is never sent ahead, since which of
them the loop's request is for would be a guess) and the requests the loop made itself
(:class:`Made`: a prediction equal to one is never sent), and the requests that had gone out
for items it moved past (:class:`Late`: still served by exact match, never sent twice).
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from .._engine import Slot
from ._itself import Replay, Whole, whole
from ._requests import Pattern, Url, learn
from ._shape import fields, unplaced

if TYPE_CHECKING:
    from .._integrations import Client, Request

__all__ = ["Ahead", "Late", "Made", "Sent", "Taught", "Window"]

_END: Any = object()


class Taught:
    """A pattern of the loop's requests, and the request it was learned from (or last seen
    as): the one copied, with another URL, for each item. It is followed (``confirmed``) only
    once it predicted one of the loop's own requests (``_templates``)."""

    __slots__ = (
        "_counted",
        "_counts",
        "_urls",
        "at",
        "base",
        "base_fields",
        "client",
        "confirmed",
        "credentialed",
        "first",
        "instance",
        "oversize",
        "pattern",
        "retired",
        "skeleton",
        "tenant",
        "tenant_of",
        "tested",
        "unplaced",
        "upto",
        "wrapped",
    )

    def __init__(
        self,
        pattern: Pattern | Replay | Whole,
        client: Client,
        wrapped: Any,
        instance: Any,
        base: Request,
        index: int,
        unplaced: dict[str, str] | None = None,
        fields: list[tuple[str, str]] | None = None,
    ) -> None:
        self.pattern = pattern
        #: The fields of the item ``base`` was made for, and the values of them its credentials
        #: carry (``_http_run``: worked out for ``tenant_of``, the base they were found in).
        self.base_fields = fields or []
        self.tenant: frozenset[str] = frozenset()
        self.tenant_of: Request | None = None
        #: Whether ``tenant_of`` carries credentials at all (a token, a cookie, a client's identity).
        self.credentialed = False
        #: The values of the item it was learned from that no URL shows the place of: another
        #: item's URL is predicted only where they are the same (or one of its holes').
        self.unplaced = unplaced or {}
        self.client = client
        self.wrapped = wrapped
        self.instance = instance
        self.base = base
        self.first, self.at = base.url, index  # learned from this URL, for this item
        self.skeleton = Url(base.url).skeleton
        self.upto = index  # the last item predicted (or fetched by the loop itself)
        self.confirmed = self.retired = False
        #: A request of its shape for another item was not its prediction.
        self.tested = False
        #: An answer to a request it sent ahead was over the cap (set by the worker that read
        #: it): its requests not yet sent are not (``_http_run``), the loop sends them itself.
        self.oversize = False
        #: Its URL for each item in the window (by index), and how many items have each.
        self._urls: dict[int, str | None] = {}
        self._counts: dict[str, int] = {}
        self._counted = index  # the last item whose URL is known

    def seen(self, request: Request, wrapped: Any, instance: Any, fields: list[tuple[str, str]] | None = None) -> None:
        """The loop made (or was served) its request (for the item of ``fields``): later items
        are sent as it was made, through the client it was made with (its headers may have
        changed; a client made per call is closed after it)."""
        self.base, self.wrapped, self.instance = request, wrapped, instance
        if fields is not None:
            self.base_fields = fields

    def narrow(self, pattern: Pattern | Replay | Whole, index: int) -> None:
        """The loop's request for item ``index`` narrowed the pattern: the URLs of the items
        after it are worked out again (those already sent are not sent again)."""
        if pattern is self.pattern:
            return
        self.pattern = pattern
        self._urls.clear()
        self._counts.clear()
        self._counted = -1
        self.upto = min(self.upto, index)

    def count(self, entries: deque[Ahead]) -> None:
        """Know the URL of each item in the window (each is worked out once)."""
        if not entries:
            return
        urls, counts = self._urls, self._counts
        for entry in itertools.islice(entries, max(self._counted + 1 - entries[0].index, 0), None):
            if entry.index in urls:
                continue
            url = urls[entry.index] = self.pattern.url_for(entry.item)
            if url is not None:
                counts[url] = counts.get(url, 0) + 1
        self._counted = max(self._counted, entries[-1].index)

    def url(self, entry: Ahead) -> str | None:
        """The item's URL, if no other item in the window has it too (counted first): with
        repeated items, which of them a request is for is a guess, so none is sent ahead.
        None too when a value of the item whose place in the URL is unseen (a ``/`` written
        into a path splits a segment) differs from the item the pattern was learned from."""
        url = self._urls.get(entry.index)
        if url is None or self._counts[url] != 1:
            return None
        if entry.unplaced or self.unplaced:
            placed = self.pattern.paths
            if {p: v for p, v in entry.unplaced.items() if p not in placed} != {
                p: v for p, v in self.unplaced.items() if p not in placed
            }:
                return None
        return url

    def forget(self, index: int) -> None:
        """The item left the window."""
        url = self._urls.pop(index, None)
        if url is not None:
            left = self._counts[url] - 1
            if left:
                self._counts[url] = left
            else:
                del self._counts[url]


class Sent:
    __slots__ = ("contradicted", "entry", "index", "learned", "live", "request", "slot")

    def __init__(
        self, index: int, slot: Slot[Any], learned: Taught, request: Request, entry: Ahead | None = None
    ) -> None:
        self.index = index
        self.entry = entry  # the item it was sent for
        self.slot = slot
        self.learned = learned
        self.request = request
        self.live = True
        #: Never asked for, while the loop asked for another URL of its shape for its item.
        self.contradicted = False


class Ahead:
    __slots__ = ("_fields", "_unplaced", "index", "item", "missed", "sent")

    def __init__(self, index: int, item: Any) -> None:
        self.index = index
        self.item = item
        self.sent: list[Sent] = []
        self._fields: list[tuple[str, str]] | None = None
        self._unplaced: dict[str, str] | None = None
        #: The shapes (method, ``Url.skeleton``) of the requests the loop made itself for it.
        self.missed: set[tuple[str, Any]] | None = None

    def miss(self, method: str, skeleton: Any) -> None:
        """The loop made a request for this item itself (nothing sent ahead answered it)."""
        if self.missed is None:
            self.missed = set()
        self.missed.add((method, skeleton))

    @property
    def fields(self) -> list[tuple[str, str]]:
        """The item's ``fields``, found once however many requests are held against it."""
        if self._fields is None:
            self._fields = fields(self.item)
        return self._fields

    @property
    def unplaced(self) -> dict[str, str]:
        """The item's values whose place in a URL cannot be seen (``_shape.unplaced``)."""
        if self._unplaced is None:
            self._unplaced = unplaced(self.item)
        return self._unplaced


class Window:
    """The items read ahead of the loop, ``size`` + 1 at most (the loop's own, and ``size``
    after it), each with the requests sent ahead for it."""

    __slots__ = ("entries", "first", "pulled", "size", "source")

    def __init__(self, source: Iterator[Any] | None, size: int) -> None:
        self.source = source
        self.size = size
        self.entries: deque[Ahead] = deque()
        self.pulled = 0
        self.first: Ahead | None = None  # the first item read (kept for the run's line)

    def read(self) -> None:
        """Read items until the window is full (or the source ends)."""
        if self.source is None:
            return
        entries = self.entries
        first = entries[0].index if entries else self.pulled
        while len(entries) < self.size + 1 and self.pulled < first + self.size + 1:
            item = next(self.source, _END)
            if item is _END:
                self.source = None
                return
            entries.append(Ahead(self.pulled, item))
            if self.first is None:
                self.first = entries[-1]
            self.pulled += 1

    def find(
        self, method: str, url: str | Url, *, replay: bool, library: str | None = None
    ) -> tuple[Ahead, Pattern | Replay | Whole] | None:
        """The first item ahead that is this request's URL, or whose values are in it
        (``replay``: that is this request of the last run), and the request's pattern. A weak sign (a short value inside
        a part, a bool: ``_requests.MIN_INSIDE``) counts only for the loop's current and next
        item, and only when no item ahead has a strong one."""
        parts = url if isinstance(url, Url) else Url(url)  # taken apart once, for every item ahead
        if replay:  # the items are requests of the last run
            for entry in self.entries:
                item = entry.item
                if isinstance(item, list | tuple) and len(item) == 2 and tuple(item) == (method, parts.text):
                    return entry, Replay(method, parts.text)
            return None
        weak: tuple[Ahead, Pattern] | None = None
        for place, entry in enumerate(self.entries):
            itself = whole(parts, entry.fields, library)
            if itself is not None:  # the item is the URL
                return entry, itself
            pattern = learn(parts, entry.item, entry.fields, library)
            if pattern is None:
                continue
            if pattern.strong:
                return entry, pattern
            if weak is None and place < 2:
                weak = entry, pattern
        return weak

    def passed(self, index: int, learned: Iterable[Taught] = ()) -> Iterator[Sent]:
        """The loop is at item ``index``: the live requests sent for the items before it (the
        caller cancels them, or keeps those that went out: :class:`Late`), and the items
        forgotten. A request the loop never asked for, when it asked for another of the same
        shape for that item, is ``contradicted``: its pattern got that item wrong."""
        entries = self.entries
        while entries and entries[0].index < index:
            entry = entries.popleft()
            for known in learned:
                known.forget(entry.index)
            for sent in entry.sent:
                if sent.live:
                    sent.live = False
                    if entry.missed and (sent.request.method, Url(sent.request.url).skeleton) in entry.missed:
                        sent.contradicted = True
                    yield sent

    def clear(self) -> Iterator[Sent]:
        """Every live request still held (the loop ended), all dropped."""
        yield from self.passed(self.pulled + 1)
        self.entries.clear()


class Late:
    """Requests sent ahead for items the loop has moved past, that had gone out: the loop may
    still ask for one (out of the items' order: another item's request names it, or it asks
    again), and is then served by exact match instead of sending it a second time. The last
    ``size`` are kept; those let go before the loop asked for them were wasted."""

    __slots__ = ("_sents",)

    def __init__(self, size: int) -> None:
        self._sents: deque[Sent] = deque(maxlen=size)

    def keep(self, sent: Sent) -> Sent | None:
        """Keep it (servable again); the one that let go of, if the loop never asked for it."""
        sents = self._sents
        dropped = sents[0] if len(sents) == sents.maxlen and sents[0].live else None
        if dropped is not None:
            dropped.live = False
        sent.live = True
        sents.append(sent)
        return dropped

    def clear(self) -> list[Sent]:
        """The loop ended: let go of every one; those it never asked for."""
        wasted = [sent for sent in self._sents if sent.live]
        self._sents.clear()
        return wasted


class Made:
    """The last ``size`` requests the loop made itself, as ``(method, URL)``: taken once each."""

    __slots__ = ("_counts", "_order")

    def __init__(self, size: int) -> None:
        self._order: deque[tuple[str, str]] = deque(maxlen=size)
        self._counts: dict[tuple[str, str], int] = {}

    def add(self, key: tuple[str, str]) -> None:
        order, counts = self._order, self._counts
        if len(order) == order.maxlen:  # the oldest is forgotten (if not taken already)
            old = order[0]
            if counts.get(old, 0) > 1:
                counts[old] -= 1
            else:
                counts.pop(old, None)
        order.append(key)
        counts[key] = counts.get(key, 0) + 1

    def take(self, key: tuple[str, str]) -> bool:
        """Whether the loop made this request itself (and not yet taken); takes it."""
        count = self._counts.get(key)
        if not count:
            return False
        if count > 1:
            self._counts[key] = count - 1
        else:
            del self._counts[key]
        return True
