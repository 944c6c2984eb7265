"""Where an item's values appear in the loop's HTTP requests, and the same request for
another item.

From one request the loop made and the item it was made for, :func:`learn` finds the
item's values (the item itself when it is a string or a number, else its fields, two levels
deep) in the URL's path segments and query values, and keeps the URL as a
:class:`Pattern` with those places left open. ``pattern.url_for(other)`` is then the URL
the loop will ask for ``other``, filled from the same fields. Nothing is evaluated: fields
are attribute, key or index lookups (``_shape.item_path``).

A pattern only proposes: a prefetched answer is served only when the loop's own request
is exactly the one sent (``_http_run``).
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from ._shape import item_path

__all__ = ["Hole", "Pattern", "Replay", "Url", "fields", "learn"]


#: A value shorter than this is only found as a whole path segment or query value, never
#: inside one ("1" is in "v1"; "BTC" is in "BTC-USD").
MIN_INSIDE = 3
#: Fields looked at per item (the item itself, its attributes or keys, theirs).
MAX_FIELDS = 64

_PATH_SAFE = "!$'()*+,;=:@-._~"  # RFC 3986 pchar, unescaped as httpx and requests leave it
_QUERY_SAFE = "!$'()*,;:@-._~/?"  # the same in a query value, but for & = + (which would change it)


def _text(value: Any) -> str | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        return value or None
    if isinstance(value, int):
        return str(value)
    return None


def _children(value: Any) -> Iterator[tuple[str, Any]]:
    if isinstance(value, dict):
        for key, child in value.items():
            if isinstance(key, str) and key and "." not in key:
                yield key, child
    elif isinstance(value, list | tuple):
        for index, child in enumerate(value):
            yield str(index), child
    else:
        attributes = getattr(value, "__dict__", None)
        if isinstance(attributes, dict):
            for name, child in attributes.items():
                if not name.startswith("_"):
                    yield name, child


def fields(item: Any) -> list[tuple[str, str]]:
    """``(item path, text)`` for the item (a string or an integer) or its scalar fields,
    two levels deep, at most ``MAX_FIELDS``."""
    found: list[tuple[str, str]] = []

    def walk(value: Any, path: str, depth: int) -> None:
        text = _text(value)
        if text is not None:
            found.append((path, text))
            return
        if depth == 0:
            return
        for name, child in _children(value):
            if len(found) >= MAX_FIELDS:
                return
            walk(child, f"{path}.{name}", depth - 1)

    walk(item, "item", 2)
    return found


@dataclass(frozen=True, slots=True)
class Hole:
    """A place in a URL filled from the item: ``prefix + text of the field + suffix``."""

    path: str
    prefix: str = ""
    suffix: str = ""


def _hole(text: str, found: list[tuple[str, str]]) -> Hole | None:
    for path, value in found:
        if text == value:
            return Hole(path)
    for path, value in found:
        if len(value) >= MIN_INSIDE and value in text:
            prefix, _, suffix = text.partition(value)
            return Hole(path, prefix, suffix)
    return None


class Pattern:
    """A URL with the places of the item's values left open."""

    __slots__ = ("_getters", "base", "query", "segments", "shape")

    def __init__(self, base: str, segments: tuple[str | Hole, ...], query: tuple[tuple[str, str | Hole], ...]) -> None:
        self.base = base  # scheme://netloc
        self.segments = segments
        self.query = query
        #: What two patterns learned from different items share when they are the same.
        self.shape = (base, segments, query)
        paths = {p.path for p in segments if isinstance(p, Hole)} | {v.path for _, v in query if isinstance(v, Hole)}
        self._getters: dict[str, Callable[[Any], Any]] = {path: item_path(path) for path in paths}

    def url_for(self, item: Any) -> str | None:
        """The URL for ``item``; None when a field is missing or not a string or a number."""
        values: dict[str, str] = {}
        for path, get in self._getters.items():
            try:
                text = _text(get(item))
            except Exception:
                return None
            if text is None:
                return None
            values[path] = text

        def fill(part: str | Hole, safe: str) -> str:
            if isinstance(part, str):
                return part
            return urllib.parse.quote(part.prefix + values[part.path] + part.suffix, safe=safe)

        path = "/".join(fill(p, _PATH_SAFE) for p in self.segments)
        query = "&".join(key if value == _BARE else f"{key}={fill(value, _QUERY_SAFE)}" for key, value in self.query)
        return f"{self.base}{path}" + (f"?{query}" if query else "")


#: A query key without ``=``.
_BARE = "\0"


class Url:
    """A URL taken apart once (the loop's request), to be held against many items."""

    __slots__ = ("base", "query", "segments")

    def __init__(self, url: str) -> None:
        parts = urllib.parse.urlsplit(url)
        self.base = f"{parts.scheme}://{parts.netloc}"
        #: Each path segment, raw and as its value.
        self.segments = [(raw, urllib.parse.unquote(raw)) for raw in parts.path.split("/")]
        #: Each query pair: key, raw value and its value (None for a bare key).
        self.query: list[tuple[str, str, str | None]] = []
        for pair in parts.query.split("&") if parts.query else ():
            key, sep, raw = pair.partition("=")
            self.query.append((key, raw, urllib.parse.unquote_plus(raw) if sep else None))


def learn(url: str | Url, item: Any, found: list[tuple[str, str]] | None = None) -> Pattern | None:
    """The pattern of ``url`` for ``item`` (whose ``fields`` may be given), or None when no
    value of the item is in it."""
    if found is None:
        found = fields(item)
    if not found:
        return None
    parts = url if isinstance(url, Url) else Url(url)
    holes = 0
    segments: list[str | Hole] = []
    for raw, text in parts.segments:
        hole = _hole(text, found) if raw else None
        holes += hole is not None
        segments.append(hole or raw)
    query: list[tuple[str, str | Hole]] = []
    for key, raw, value in parts.query:
        if value is None:
            query.append((key, _BARE))  # a bare key, kept as it was
            continue
        hole = _hole(value, found) if raw else None
        holes += hole is not None
        query.append((key, hole or raw))
    if not holes:
        return None
    return Pattern(parts.base, tuple(segments), tuple(query))


class Replay:
    """The pattern of ``items = "learned"``: an item is a request of the last run, ``(method,
    url)``, sent again only to the host the loop called in this run (that of ``url``)."""

    __slots__ = ("base", "method", "shape")

    def __init__(self, method: str, url: str) -> None:
        scheme, _, rest = url.partition("://")
        self.method = method
        self.base = f"{scheme}://{rest.split('/', 1)[0]}"
        self.shape = ("replay", method, self.base)

    def url_for(self, item: Any) -> str | None:
        method, url = item
        return url if method == self.method and isinstance(url, str) and url.startswith(self.base + "/") else None


# -- what a run keeps of them ------------------------------------------------------------------
