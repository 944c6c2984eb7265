"""Where an item's values are in a URL, and the URL the loop will ask for another item.

``learn(url, item)`` looks for the item's values (a string, a number, a bool, else its
fields: dict values, tuple items, attributes and slots, two levels deep) in the URL's path
segments and query values, decoded, and keeps the URL as a :class:`Pattern` with those
places left open. Each open place, a :class:`Hole`, keeps every way it may have been made
that fits what was seen: its text as it was (the value may be there by chance), or a field
of the item as text (a bool also as httpx's ``true``), encoded as that client encodes that
part of a URL (``_encoding``: its ``params``, its own quoting of a URL string, or the app's
``quote`` or ``urlencode``), between the literal text around it. (An item that is the URL
itself is ``_itself``'s.)

``pattern.url_for(other)`` is the URL for ``other`` when every way left makes the same one,
else None: nothing is guessed. ``pattern.match(url, item)`` is the pattern narrowed to the
ways that make ``url`` for ``item`` (the loop's own request: the pattern learns from it), or
None. Nothing is evaluated: fields are attribute, key or index lookups (``_shape.item_path``).

A pattern only proposes: a prefetched answer is served only when the loop's own request
is exactly the one sent (``_http_run``), and a pattern is followed only once it predicted
one of the loop's requests (``_templates``).
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any

from ._encoding import encode, encodings, plain
from ._shape import fields, item_path, text_of

__all__ = ["Hole", "Pattern", "Url", "Way", "fields", "learn"]

#: A value shorter than this inside a path segment or query value (``A0`` in ``A0USD``), or a
#: bool, is a weak sign of an item: only looked for in the loop's current and next item.
MIN_INSIDE = 3
#: Ways kept per hole, and places of one value in one part.
MAX_WAYS = 24
MAX_PLACES = 3

_BOOLS = ("True", "False")


def _form(form: str, text: str) -> str | None:
    """A field's text as one way writes it: as is, or a bool in lower case (httpx's params)."""
    if form == "str":
        return text
    return text.lower() if text in _BOOLS else None


@dataclass(frozen=True, slots=True)
class Way:
    """One way a hole may have been made: the field at ``path``, as text (``form``), encoded by
    one of ``encodings``, between the raw ``before`` and ``after``."""

    path: str
    form: str
    before: str
    after: str
    encodings: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Hole:
    """A place in a URL made from the item: ``raw`` is what was first seen there; ``literal``
    while it may be that text by chance; ``ways`` the ways of making it that fit so far."""

    raw: str
    literal: bool
    ways: tuple[Way, ...]
    where: str  # "path" or "query"


class Pattern:
    """A URL with the places of the item's values left open."""

    __slots__ = ("_getters", "base", "kind", "library", "loose", "query", "segments", "strong")

    def __init__(
        self,
        base: str,
        segments: tuple[str | Hole, ...],
        query: tuple[tuple[str, str | Hole], ...],
        library: str | None = None,
        *,
        strong: bool = True,
    ) -> None:
        self.base = base  # scheme://netloc
        self.segments = segments
        self.query = query
        self.library = library
        #: Whether a value of the item is in it by more than a weak sign (``MIN_INSIDE``).
        self.strong = strong
        parts = [*segments, *(value for _, value in query)]
        keys = tuple(key if value != _BARE else key + _BARE for key, value in query)
        #: What two patterns learned from different requests share when they are the same one,
        #: and (``loose``) when they differ only in their literal text.
        self.kind: Any = (base, keys, tuple(p if isinstance(p, str) else _context(p) for p in parts))
        self.loose: Any = (base, len(segments), keys, tuple(i for i, p in enumerate(parts) if isinstance(p, Hole)))
        paths = {way.path for part in parts if isinstance(part, Hole) for way in part.ways}
        self._getters: dict[str, Callable[[Any], Any]] = {path: item_path(path) for path in paths}

    @property
    def paths(self) -> frozenset[str]:
        """The item paths of the fields its holes may be made of."""
        return frozenset(self._getters)

    @property
    def open(self) -> bool:
        """Whether some place is still made from the item (not only ever its first text)."""
        return any(isinstance(part, Hole) and part.ways for part in (*self.segments, *(v for _, v in self.query)))

    def _texts(self, item: Any) -> dict[str, str | None]:
        texts: dict[str, str | None] = {}
        for path, get in self._getters.items():
            try:
                texts[path] = text_of(get(item))
            except Exception:
                texts[path] = None
        return texts

    def _made(self, hole: Hole, texts: dict[str, str | None]) -> set[str] | None:
        """What the hole's ways make of the item's texts; None if one of them cannot."""
        made = {hole.raw} if hole.literal else set()
        for way in hole.ways:
            text = texts.get(way.path)
            value = None if text is None else _form(way.form, text)
            if value is None:
                return None
            if plain(value):
                made.add(way.before + value + way.after)
                continue
            for name in way.encodings:
                encoded = encode(self.library, hole.where, name, value)
                if encoded is None:
                    return None
                made.add(way.before + encoded + way.after)
        if hole.where == "path" and any(piece in (".", "..") for part in made for piece in part.split("/")):
            return None  # a dot segment: the client drops it
        return made

    def url_for(self, item: Any) -> str | None:
        """The URL for ``item``; None when its ways do not all make the same one."""
        texts = self._texts(item)
        filled: list[str] = []
        for part in (*self.segments, *(value for _, value in self.query)):
            made = {part} if isinstance(part, str) else self._made(part, texts)
            if made is None or len(made) != 1:
                return None
            filled.append(made.pop())
        count = len(self.segments)
        query = "&".join(
            key if value == _BARE else f"{key}={value}"
            for (key, _), value in zip(self.query, filled[count:], strict=True)
        )
        return f"{self.base}{'/'.join(filled[:count])}" + (f"?{query}" if query else "")

    def fits(self, url: Url) -> bool:
        """Whether ``url`` has this pattern's shape and literal text (its holes aside)."""
        if (
            url.fragment
            or url.base != self.base
            or len(url.segments) != len(self.segments)
            or len(url.query) != len(self.query)
        ):
            return False
        for part, (raw, _) in zip(self.segments, url.segments, strict=True):
            if isinstance(part, str) and part != raw:
                return False
        for (key, part), (their_key, raw, value) in zip(self.query, url.query, strict=True):
            if (
                key != their_key
                or (part == _BARE) != (value is None)
                or (isinstance(part, str) and part != _BARE and part != raw)
            ):
                return False
        return True

    def _raws(self, url: Url) -> Iterator[tuple[str | Hole, str]]:
        yield from zip(self.segments, (raw for raw, _ in url.segments), strict=True)
        yield from zip((part for _, part in self.query), (raw for _, raw, _ in url.query), strict=True)

    def match(self, url: Url, item: Any) -> Pattern | None:
        """This pattern narrowed to the ways that make ``url`` for ``item``, or None."""
        if not self.fits(url):
            return None
        texts = self._texts(item)
        narrowed: list[str | Hole] = []
        for part, raw in self._raws(url):
            if isinstance(part, Hole):
                hole = self._narrow(part, raw, texts)
                if hole is None:
                    return None
                part = hole
            narrowed.append(part)
        count = len(self.segments)
        if narrowed == [*self.segments, *(v for _, v in self.query)]:
            return self
        query = tuple((key, value) for (key, _), value in zip(self.query, narrowed[count:], strict=True))
        return Pattern(self.base, tuple(narrowed[:count]), query, self.library, strong=self.strong)

    def _narrow(self, hole: Hole, raw: str, texts: dict[str, str | None]) -> Hole | None:
        """The hole with the ways that made ``raw`` from these texts, and those that may have
        (their text cannot be told for this value: they show nothing, and stay); None if
        neither it as it was first seen nor any way made it."""
        ways, made = [], hole.literal and raw == hole.raw
        for way in hole.ways:
            text = texts.get(way.path)
            value = None if text is None else _form(way.form, text)
            if value is None:
                continue
            kept: list[str] = []
            for name in way.encodings:
                encoded = value if plain(value) else encode(self.library, hole.where, name, value)
                if encoded is None or way.before + encoded + way.after == raw:
                    kept.append(name)
                    made = made or encoded is not None
            if kept:
                ways.append(way if len(kept) == len(way.encodings) else replace(way, encodings=tuple(kept)))
        literal = hole.literal and raw == hole.raw
        if not made:
            return None
        return (
            hole
            if literal == hole.literal and tuple(ways) == hole.ways
            else Hole(hole.raw, literal, tuple(ways), hole.where)
        )

    def near(self, url: Url, item: Any) -> bool:
        """Whether ``url`` holds the item's values where this pattern has them, with the same
        literal text, but written otherwise (another encoding): a prediction it got wrong."""
        if not self.fits(url):
            return False
        texts = self._texts(item)
        differs = False
        for part, raw in self._raws(url):
            if not isinstance(part, Hole) or self._narrow(part, raw, texts) is not None:
                continue
            differs = True
            decoded = _decodings(raw, part.where)
            if not any(
                (text := texts.get(way.path)) is not None
                and (value := _form(way.form, text)) is not None
                and any(
                    urllib.parse.unquote(way.before) + value + urllib.parse.unquote(way.after) == d for d in decoded
                )
                for way in part.ways
            ):
                return False
        return differs


#: A query key without ``=``.
_BARE = "\0"


def _context(hole: Hole) -> frozenset[tuple[str, str, str, str]]:
    """A hole as a pattern's kind tells it: which field goes there, and between what."""
    return frozenset((way.path, way.form, way.before, way.after) for way in hole.ways)


def _decodings(raw: str, where: str) -> tuple[str, ...]:
    """The texts a raw part may stand for: ``+`` is a space in a query (urlencode), or itself."""
    if where == "path":
        return (urllib.parse.unquote(raw),)
    plus, percent = urllib.parse.unquote_plus(raw), urllib.parse.unquote(raw)
    return (plus,) if plus == percent else (plus, percent)


class Url:
    """A URL taken apart once (the loop's request), to be held against many items."""

    __slots__ = ("base", "fragment", "query", "segments", "skeleton", "text")

    def __init__(self, url: str) -> None:
        self.text = url
        #: A URL with a ``#`` is never a pattern's: the client sends it without what follows.
        self.fragment = "#" in url
        parts = urllib.parse.urlsplit(url)
        self.base = f"{parts.scheme}://{parts.netloc}"
        #: Each path segment, raw and as its texts.
        self.segments = [(raw, _decodings(raw, "path")) for raw in parts.path.split("/")]
        #: Each query pair: key, raw value and its texts (None for a bare key).
        self.query: list[tuple[str, str, tuple[str, ...] | None]] = []
        for pair in parts.query.split("&") if parts.query else ():
            key, sep, raw = pair.partition("=")
            self.query.append((key, raw, _decodings(raw, "query") if sep else None))
        #: Its shape: host, how many path segments, which query keys.
        self.skeleton = (self.base, len(self.segments), tuple((key, value is None) for key, _, value in self.query))


def _hole(
    raw: str, texts: tuple[str, ...], found: list[tuple[str, str]], library: str | None, where: str
) -> tuple[Hole, bool] | None:
    """The ways the item's fields may have made this raw part, and whether one is a strong
    sign (a whole part, or a value of ``MIN_INSIDE`` characters or more that is not a bool)."""
    ways: dict[tuple[str, str, str, str], list[str]] = {}
    strong = False
    for path, text in found:
        for form in ("str", "lower") if text in _BOOLS else ("str",):
            value = _form(form, text)
            if value is None or not any(value in t for t in texts):
                continue
            if not plain(value) and encode(library, where, "raw", value) is None:
                continue  # how the client writes it into a URL cannot be told: learned from another item
            made: dict[str, list[str]] = {}
            for name in encodings(library, where):
                encoded = value if plain(value) else encode(library, where, name, value)
                if encoded:
                    made.setdefault(encoded, []).append(name)
            for encoded, names in made.items():
                start = raw.find(encoded)
                for _ in range(MAX_PLACES):
                    if start < 0 or len(ways) >= MAX_WAYS:
                        break
                    before, after = raw[:start], raw[start + len(encoded) :]
                    ways.setdefault((path, form, before, after), []).extend(names)
                    whole = not before and not after
                    strong = strong or (text not in _BOOLS and (whole or len(value) >= MIN_INSIDE))
                    start = raw.find(encoded, start + 1)
    if not ways:
        return None
    made_ways = tuple(
        Way(path, form, before, after, tuple(dict.fromkeys(names)))
        for (path, form, before, after), names in ways.items()
    )
    return Hole(raw, True, made_ways, where), strong


def learn(
    url: str | Url, item: Any, found: list[tuple[str, str]] | None = None, library: str | None = None
) -> Pattern | None:
    """The pattern of ``url`` for ``item`` (whose ``fields`` may be given) as ``library``
    encodes it, or None when no value of the item is in it."""
    if found is None:
        found = fields(item)
    if not found:
        return None
    parts = url if isinstance(url, Url) else Url(url)
    if parts.fragment:
        return None
    holes, strong = 0, False
    segments: list[str | Hole] = []
    for raw, texts in parts.segments:
        made = _hole(raw, texts, found, library, "path") if raw else None
        if made is not None:
            holes, strong = holes + 1, strong or made[1]
        segments.append(made[0] if made is not None else raw)
    query: list[tuple[str, str | Hole]] = []
    for key, raw, value in parts.query:
        if value is None:
            query.append((key, _BARE))  # a bare key, kept as it was
            continue
        made = _hole(raw, value, found, library, "query") if raw else None
        if made is not None:
            holes, strong = holes + 1, strong or made[1]
        query.append((key, made[0] if made is not None else raw))
    if not holes:
        return None
    return Pattern(parts.base, tuple(segments), tuple(query), library, strong=strong)
