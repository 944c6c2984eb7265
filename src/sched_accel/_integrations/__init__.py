"""What sched_accel knows about each HTTP library it sees, one module per library, and the one
registry of them (:data:`INTEGRATIONS`) that the policy, the prefetch and the install layers
read.

- ``_base``: what an integration is (:class:`Integration`, its :class:`Layer` s and hooks) and
  what prefetch asks of a library (:class:`Client`: a request described, rebuilt for another
  URL, its answer kept and served);
- ``httpx``, ``httpcore``, ``requests``, ``urllib``, ``aiohttp``: one each, its docstring the
  summary (where it is hooked, what is a read, how an answer is rebuilt, what closes a client,
  which errors are transient, the versions supported).

The libraries whose calls are effects a shadow must not make (database drivers and ORMs) are
``_shadow._drivers``, one module per library too: what they know is how a shadow stops.
This package imports nothing else of sched_accel, and none of the libraries: each is read
from ``sys.modules`` or imported inside a call, once the app imported it.
"""

from __future__ import annotations

from typing import Any

from . import aiohttp, httpcore, httpx, requests, urllib
from ._base import (
    GET_HEAD,
    MAX_KEPT,
    STREAMED,
    VOLATILE,
    Answer,
    Args,
    Client,
    Hook,
    Integration,
    Kwargs,
    Layer,
    Outgoing,
    Oversize,
    ReadTest,
    Request,
    announced_over,
    read_capped,
    status_of,
)

__all__ = [
    "CLIENTS",
    "CLOSES",
    "GET_HEAD",
    "INTEGRATIONS",
    "LAYERS",
    "MAX_KEPT",
    "MODULES",
    "STREAMED",
    "VOLATILE",
    "Answer",
    "Args",
    "Client",
    "Hook",
    "Integration",
    "Kwargs",
    "Layer",
    "Outgoing",
    "Oversize",
    "ReadTest",
    "Request",
    "announced_over",
    "http_status",
    "read_capped",
    "status_of",
    "transient",
]

#: Every library sched_accel sees requests of, in the order they are hooked.
INTEGRATIONS: tuple[Integration, ...] = (
    httpx.INTEGRATION,
    httpcore.INTEGRATION,
    requests.INTEGRATION,
    urllib.INTEGRATION,
    aiohttp.INTEGRATION,
)
#: Where each request is sent, by library (``httpx``, ``httpx-async``, ``requests``, ...).
LAYERS: dict[str, Layer] = {layer.library: layer for i in INTEGRATIONS for layer in i.layers}
#: Prefetch's adapter for each layer, by the same names.
CLIENTS: dict[str, Client] = {client.library: client for i in INTEGRATIONS for client in i.clients}
#: What closes a client's transport or adapter, in every library.
CLOSES: tuple[Hook, ...] = tuple(hook for i in INTEGRATIONS for hook in i.closes)
#: The top-level modules of every library here: a ``fetch`` may name their functions.
MODULES: frozenset[str] = frozenset().union(*(i.modules for i in INTEGRATIONS))

_STATUS = tuple(i.status for i in INTEGRATIONS if i.status is not None)
_TRANSIENT = tuple(i.transient for i in INTEGRATIONS if i.transient is not None)


def http_status(exc: BaseException) -> tuple[int, Any] | None:
    """The HTTP status and headers one library's exception carries, by that library's own
    attributes (urllib's ``HTTPError``, aiohttp's ``ClientResponseError``); None for the rest
    (an exception with a ``.response`` is read by the policy, whatever its library)."""
    for status in _STATUS:
        found = status(exc)
        if found is not None:
            return found
    return None


def transient(exc: BaseException) -> bool | None:
    """Whether one library's exception is transient (a refused, reset or timed-out connection),
    as that library says; None when it is none of theirs."""
    for test in _TRANSIENT:
        found = test(exc)
        if found is not None:
            return found
    return None
