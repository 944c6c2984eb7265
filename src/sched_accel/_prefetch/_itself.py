"""Patterns whose URL is the item itself, not a template filled from it: an item that is a
URL (:class:`Whole`: a list of URLs, each fetched as it is) and, with ``items = "learned"``, a
request the loop made in its last run (:class:`Replay`). Each is sent only to the host the
loop itself called in this run, and, like a template (``_requests.Pattern``), only once it
predicted one of the loop's own requests (``_templates``).
"""

from __future__ import annotations

from typing import Any

from ._encoding import whole_url
from ._requests import Url
from ._shape import item_path, text_of

__all__ = ["Replay", "Whole", "whole"]


def whole(url: Url, found: list[tuple[str, str]], library: str | None) -> Whole | None:
    """The pattern of an item one of whose ``fields`` is ``url`` itself, as ``library`` sends it."""
    if url.fragment:
        return None
    for path, text in found:
        if "://" in text and whole_url(library, text) == url.text:
            return Whole(path, url.base, library)
    return None


class Whole:
    """The pattern of an item that is the URL itself (or whose field at ``path`` is), as the
    client sends it: the same for another item, to the same host only."""

    __slots__ = ("_get", "base", "kind", "library", "loose", "paths")

    strong = True
    open = True

    def __init__(self, path: str, base: str, library: str | None) -> None:
        self.base, self.library = base, library
        self.kind = self.loose = ("whole", path, base)
        self.paths = frozenset({path})
        self._get = item_path(path)

    def url_for(self, item: Any) -> str | None:
        try:
            text = text_of(self._get(item))
        except Exception:
            return None
        url = None if text is None or "#" in text else whole_url(self.library, text)
        return url if url is not None and url.startswith(self.base + "/") else None

    def match(self, url: Url, item: Any) -> Whole | None:
        """Itself, if ``url`` is the item's."""
        return self if self.url_for(item) == url.text else None

    def near(self, url: Url, item: Any) -> bool:
        return False

    def fits(self, url: Url) -> bool:
        return url.base == self.base and not url.fragment


class Replay:
    """The pattern of ``items = "learned"``: an item is a request of the last run, ``(method,
    url)``, sent again only to the host the loop called in this run (that of ``url``)."""

    __slots__ = ("base", "kind", "loose", "method")

    strong = True
    open = True
    paths = frozenset({"item", "item.0", "item.1"})  # the request is the item itself

    def __init__(self, method: str, url: str) -> None:
        scheme, _, rest = url.partition("://")
        self.method = method
        self.base = f"{scheme}://{rest.split('/', 1)[0]}"
        self.kind = self.loose = ("replay", method, self.base)

    def url_for(self, item: Any) -> str | None:
        method, url = item
        return url if method == self.method and isinstance(url, str) and url.startswith(self.base + "/") else None

    def match(self, url: Url, item: Any) -> Replay | None:
        """Itself, if ``url`` is the request ``item`` recorded."""
        return self if isinstance(item, list | tuple) and len(item) == 2 and self.url_for(item) == url.text else None

    def near(self, url: Url, item: Any) -> bool:
        return False

    def fits(self, url: Url) -> bool:
        return url.base == self.base
