"""What an HTTP-level run holds ahead of the loop: the items read ahead (:class:`Window`,
each an :class:`Ahead` with the requests :class:`Sent` for it), the patterns it learned
(:class:`Taught`, with each item's URL counted: a URL two items in the window share is
never sent ahead, since which of them the loop's request is for would be a guess) and the
requests the loop made itself (:class:`Made`: a prediction equal to one is never sent).
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from .._engine import Slot
from ._requests import Pattern, Replay, Url, fields, learn

if TYPE_CHECKING:
    from ._clients import Client, Request

__all__ = ["Ahead", "Made", "Sent", "Taught", "Window"]

_END: Any = object()


class Taught:
    """A pattern of the loop's requests, and the request it was learned from (or last seen
    as): the one copied, with another URL, for each item."""

    __slots__ = ("_counted", "_counts", "_urls", "base", "client", "hits", "instance", "misses", "pattern", "retired", "upto", "wrapped")

    def __init__(self, pattern: Pattern | Replay, client: Client, wrapped: Any, instance: Any, base: Request, index: int) -> None:
        self.pattern = pattern
        self.client = client
        self.wrapped = wrapped
        self.instance = instance
        self.base = base
        self.upto = index  # the last item predicted (or fetched by the loop itself)
        self.hits = self.misses = 0
        self.retired = False
        #: Its URL for each item in the window (by index), and how many items have each.
        self._urls: dict[int, str | None] = {}
        self._counts: dict[str, int] = {}
        self._counted = index  # the last item whose URL is known

    def count(self, entries: deque[Ahead]) -> None:
        """Know the URL of each item in the window (each is worked out once)."""
        if not entries:
            return
        urls, counts = self._urls, self._counts
        for entry in itertools.islice(entries, max(self._counted + 1 - entries[0].index, 0), None):
            url = urls[entry.index] = self.pattern.url_for(entry.item)
            if url is not None:
                counts[url] = counts.get(url, 0) + 1
        self._counted = max(self._counted, entries[-1].index)

    def url(self, entry: Ahead) -> str | None:
        """The item's URL, if no other item in the window has it too (counted first): with
        repeated items, which of them a request is for is a guess, so none is sent ahead."""
        url = self._urls.get(entry.index)
        return url if url is not None and self._counts[url] == 1 else None

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
    __slots__ = ("index", "learned", "live", "request", "slot")

    def __init__(self, index: int, slot: Slot[Any], learned: Taught, request: Request) -> None:
        self.index = index
        self.slot = slot
        self.learned = learned
        self.request = request
        self.live = True


class Ahead:
    __slots__ = ("_fields", "index", "item", "sent")

    def __init__(self, index: int, item: Any) -> None:
        self.index = index
        self.item = item
        self.sent: list[Sent] = []
        self._fields: list[tuple[str, str]] | None = None

    @property
    def fields(self) -> list[tuple[str, str]]:
        """The item's ``fields``, found once however many requests are held against it."""
        if self._fields is None:
            self._fields = fields(self.item)
        return self._fields


class Window:
    """The items read ahead of the loop, ``size`` + 1 at most (the loop's own, and ``size``
    after it), each with the requests sent ahead for it."""

    __slots__ = ("entries", "pulled", "size", "source")

    def __init__(self, source: Iterator[Any] | None, size: int) -> None:
        self.source = source
        self.size = size
        self.entries: deque[Ahead] = deque()
        self.pulled = 0

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
            self.pulled += 1

    def find(self, method: str, url: str, *, replay: bool) -> tuple[Ahead, Pattern | Replay] | None:
        """The first item ahead whose values are in this request (``replay``: that is this
        request of the last run), and the request's pattern."""
        if replay:  # the items are requests of the last run
            for entry in self.entries:
                item = entry.item
                if isinstance(item, list | tuple) and len(item) == 2 and tuple(item) == (method, url):
                    return entry, Replay(method, url)
            return None
        parts = Url(url)  # taken apart once, for every item ahead
        for entry in self.entries:
            pattern = learn(parts, entry.item, entry.fields)
            if pattern is not None:
                return entry, pattern
        return None

    def passed(self, index: int, learned: Iterable[Taught] = ()) -> Iterator[Sent]:
        """The loop is at item ``index``: the live requests sent for the items before it,
        which are dropped (the caller cancels them), and the items forgotten."""
        entries = self.entries
        while entries and entries[0].index < index:
            entry = entries.popleft()
            for known in learned:
                known.forget(entry.index)
            for sent in entry.sent:
                if sent.live:
                    sent.live = False
                    yield sent

    def clear(self) -> Iterator[Sent]:
        """Every live request still held (the loop ended), all dropped."""
        yield from self.passed(self.pulled + 1)
        self.entries.clear()


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
