"""How a value is written into a URL, by each HTTP client (by the library names of
``_clients.CLIENTS``), so that a URL made for another item is, byte for byte, the one the
loop will ask for.

A value reaches a path segment or a query value in one of these ways (``encodings``):

- ``raw``: the app wrote it into the URL string (an f-string) and the client quoted the URL
  as it quotes any URL it is given: httpx its own way (``%20`` for a space, ``'`` and ``!``
  kept), requests with urllib3's and ``requote_uri``, aiohttp with yarl (``+`` for a space in
  a query), urllib not at all (the URL is sent as given);
- ``quote``, ``quote_all``: the app quoted it first (``urllib.parse.quote``, with ``/`` kept
  or not), and the client leaves that as it is;
- ``quote_plus``: ``urlencode``, which is what requests' ``params`` are (and httpx's since 0.28; ``+`` for
  a space, ``%27`` for ``'``), and the app's own ``urlencode`` for urllib;
- ``yarl``: aiohttp's ``params`` (``+`` for a space, ``/``, ``?``, ``'`` and ``!`` kept);
- ``httpx_params``: httpx's ``params``, as the installed httpx writes them (``quote_plus``'s
  from 0.28 on; 0.27 writes a space ``%20``: found by the version matrix, ``noxfile.py``).

What a value becomes as text first (``str(47.0744)`` is ``47.0744``, as every one of them
writes a float or an int; a bool is ``True`` but ``true`` in httpx's params) is ``_requests``'.
A text of only letters, digits and ``-._~`` is written as itself by every way (``plain``).
An item may be a whole URL, which the client quotes as any URL it is given (``whole_url``).
"""

from __future__ import annotations

import functools
import string
import urllib.parse
from collections.abc import Callable

__all__ = ["encode", "encodings", "plain", "whole_url"]

_PLAIN = frozenset(string.ascii_letters + string.digits + "-._~")
_PREFIX = {"path": "http://h/", "query": "http://h/?q="}


def plain(text: str) -> bool:
    """Whether every way writes ``text`` as itself."""
    return all(c in _PLAIN for c in text)


def _yarl(text: str) -> str:
    import yarl

    return yarl.URL("http://h/").with_query({"q": text}).raw_query_string[2:]


def _httpx_params(text: str) -> str:
    """httpx's ``params``, as the installed httpx writes them (0.27 writes a space ``%20``, 0.28
    on ``+``, as ``urlencode``)."""
    import httpx

    return str(httpx.QueryParams({"q": text}))[2:]


_QUOTED: dict[str, Callable[[str], str]] = {
    "quote": lambda text: urllib.parse.quote(text, safe="/"),
    "quote_all": lambda text: urllib.parse.quote(text, safe=""),
    "quote_plus": urllib.parse.quote_plus,
    "httpx_params": _httpx_params,
    "yarl": _yarl,
}


def _httpx(url: str, where: str) -> str:
    import httpx

    parsed = httpx.URL(url)
    return (parsed.raw_path if where == "path" else parsed.query).decode("ascii")


def _requests(url: str, where: str) -> str:
    from requests.models import PreparedRequest

    prepared = PreparedRequest()
    prepared.prepare_url(url, None)
    return str(prepared.url)


def _aiohttp(url: str, where: str) -> str:
    import yarl

    parsed = yarl.URL(url)
    return parsed.raw_path if where == "path" else parsed.raw_query_string


#: How each client quotes a URL string it is given: the part of it after the probe's prefix.
_NORMAL: dict[str, Callable[[str, str], str]] = {
    "httpx": _httpx,
    "httpx-async": _httpx,
    "requests": _requests,
    "aiohttp": _aiohttp,
}
#: What ``_NORMAL``'s functions return before the part itself.
_RETURNED = {
    ("httpx", "path"): "/",
    ("httpx", "query"): "q=",
    ("requests", "path"): "http://h/",
    ("requests", "query"): "http://h/?q=",
    ("aiohttp", "path"): "/",
    ("aiohttp", "query"): "q=",
}


@functools.lru_cache(maxsize=1024)
def whole_url(library: str | None, text: str) -> str | None:
    """A whole URL the app gives the client (an item that is a URL), as the client sends it,
    or None if it refuses it."""
    if library not in _NORMAL:
        return text  # urllib: sent as given
    try:
        if library == "requests":
            return _requests(text, "path")
        import httpx
        import yarl

        return str(httpx.URL(text) if library in ("httpx", "httpx-async") else yarl.URL(text))
    except Exception:
        return None


def encodings(library: str | None, where: str) -> tuple[str, ...]:
    """The ways a value may be written into a ``where`` ("path" or "query") part by this client."""
    if where == "path":
        return ("raw", "quote", "quote_all")
    if library == "aiohttp":
        return ("raw", "quote", "quote_all", "quote_plus", "yarl")
    if library in ("httpx", "httpx-async") and _httpx_params_differ():
        return ("raw", "quote", "quote_all", "quote_plus", "httpx_params")
    return ("raw", "quote", "quote_all", "quote_plus")


@functools.cache
def _httpx_params_differ() -> bool:
    """Whether the installed httpx writes ``params`` other than ``quote_plus`` does (0.27 does;
    from 0.28 on they agree, and every value would be written twice the same way), judged once
    on every printable ASCII character and a few beyond."""
    return any(_httpx_params(c) != urllib.parse.quote_plus(c) for c in string.printable.strip() + " é€")


@functools.lru_cache(maxsize=4096)
def _normal(library: str, where: str, text: str) -> str | None:
    normal = _NORMAL.get(library)
    if normal is None:
        return text  # urllib: sent as given
    try:
        made = normal(_PREFIX[where] + text, where)
    except Exception:  # a URL the client refuses: the loop could not ask for it either
        return None
    prefix = _RETURNED[("httpx" if library == "httpx-async" else library, where)]
    return made[len(prefix) :] if made.startswith(prefix) else None


def encode(library: str | None, where: str, name: str, text: str) -> str | None:
    """``text`` written into a ``where`` part in way ``name`` by this client, or None when
    that cannot be told exactly (a ``%`` the client may take for an escape, a ``#``, a ``?``
    in a path, a dot segment: the URL around it would change)."""
    if name != "raw":
        encoded: str | None = _QUOTED[name](text)
    elif plain(text):
        encoded = text
    elif "%" in text or "#" in text or (where == "path" and ("?" in text or not _DOTS.isdisjoint(text.split("/")))):
        return None
    else:
        encoded = text if library is None else _normal(library, where, text)
    if encoded is not None and where == "path" and not _DOTS.isdisjoint(encoded.split("/")):
        return None  # a dot segment: the client drops it, with the one before it
    return encoded


_DOTS = frozenset({".", ".."})
