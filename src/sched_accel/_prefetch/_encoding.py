"""How a value is written into a URL by each HTTP client, so that a URL made for another item
is, byte for byte, the one the loop will ask for. What each client does is its integration's
to say (``_integrations``: ``Client.quoted``, ``whole_url``, ``param_ways``); the ways every
client shares, and the choice among them, are here.

A value reaches a path segment or a query value in one of these ways (``encodings``):

- ``raw``: the app wrote it into the URL string (an f-string) and the client quoted the URL
  as it quotes any URL it is given: httpx its own way (``%20`` for a space, ``'`` and ``!``
  kept), requests with urllib3's and ``requote_uri``, aiohttp with yarl (``+`` for a space in
  a query), urllib not at all (the URL is sent as given);
- ``quote``, ``quote_all``: the app quoted it first (``urllib.parse.quote``, with ``/`` kept
  or not), and the client leaves that as it is;
- ``quote_plus``: ``urlencode``, which is what requests' ``params`` are (and httpx's since 0.28; ``+`` for
  a space, ``%27`` for ``'``), and the app's own ``urlencode`` for urllib;
- a client's own ``params`` (``param_ways``): ``yarl`` for aiohttp (``+`` for a space, ``/``,
  ``?``, ``'`` and ``!`` kept); ``httpx_params`` for httpx where the installed one writes them
  other than ``quote_plus`` (0.27 writes a space ``%20``: found by the version matrix).

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

from .._integrations import CLIENTS

__all__ = ["encode", "encodings", "plain", "whole_url"]

_PLAIN = frozenset(string.ascii_letters + string.digits + "-._~")
_PREFIX = {"path": "http://h/", "query": "http://h/?q="}


def plain(text: str) -> bool:
    """Whether every way writes ``text`` as itself."""
    return all(c in _PLAIN for c in text)


_QUOTED: dict[str, Callable[[str], str]] = {
    "quote": lambda text: urllib.parse.quote(text, safe="/"),
    "quote_all": lambda text: urllib.parse.quote(text, safe=""),
    "quote_plus": urllib.parse.quote_plus,
}
#: What ``Client.quoted`` returns for the part the probe's prefix leads to, before the text.
_RETURNED = {"path": "/", "query": "q="}


@functools.lru_cache(maxsize=1024)
def whole_url(library: str | None, text: str) -> str | None:
    """A whole URL the app gives the client (an item that is a URL), as the client sends it,
    or None if it refuses it."""
    client = CLIENTS.get(library or "")
    return text if client is None else client.whole_url(text)


def encodings(library: str | None, where: str) -> tuple[str, ...]:
    """The ways a value may be written into a ``where`` ("path" or "query") part by this client."""
    if where == "path":
        return ("raw", "quote", "quote_all")
    client = CLIENTS.get(library or "")
    return ("raw", "quote", "quote_all", "quote_plus", *(() if client is None else client.param_ways()))


@functools.lru_cache(maxsize=4096)
def _normal(library: str, where: str, text: str) -> str | None:
    client = CLIENTS.get(library)
    if client is None:
        return text  # sent as given
    made = client.quoted(_PREFIX[where] + text, where)
    prefix = _RETURNED[where]
    return made[len(prefix) :] if made is not None and made.startswith(prefix) else None


def _way(library: str | None, name: str) -> Callable[[str], str] | None:
    """The function that writes a value in way ``name``: a shared one, or the client's own."""
    shared = _QUOTED.get(name)
    if shared is not None:
        return shared
    client = CLIENTS.get(library or "")
    return None if client is None else client.param_ways().get(name)


def encode(library: str | None, where: str, name: str, text: str) -> str | None:
    """``text`` written into a ``where`` part in way ``name`` by this client, or None when
    that cannot be told exactly (a ``%`` the client may take for an escape, a ``#``, a ``?``
    in a path, a dot segment: the URL around it would change)."""
    if name != "raw":
        way = _way(library, name)
        if way is None:
            return None  # another client's own way: not this one's
        encoded: str | None = way(text)
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
