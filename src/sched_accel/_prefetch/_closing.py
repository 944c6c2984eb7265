"""Clients the app closes while we still send through them: a client made per item, or
per request (``httpx.get``, ``with httpx.Client() as client:`` in the loop's body).

Nothing more is sent ahead through a transport (or adapter, or session) once the app closed
it; one that still carries requests sent ahead is closed by the last of them to be
answered, so that no connection is left open and no request is cut short (and sent again
by the loop). The app sees its client closed at once: it sends nothing more through it.
Where each library closes one is its integration's to say (``_integrations.CLOSES``).
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable
from typing import Any

__all__ = ["closed", "closing", "sending", "sent"]

Args = tuple[Any, ...]
Kwargs = dict[str, Any]

#: Transports and adapters whose client was closed (a client made per item, or per call:
#: ``httpx.get``): nothing more is sent through them.
_CLOSED: weakref.WeakSet[Any] = weakref.WeakSet()
#: Requests sent ahead through each transport right now (by id), and the transports whose
#: close waits for them: closed by the last one, so that no connection is left open and no
#: request is cut (and sent again by the loop).
_IN_FLIGHT: dict[int, int] = {}
_DEFERRED: dict[int, Any] = {}
_LOCK = threading.Lock()


def closing(wrapped: Callable[..., Any], instance: Any, args: Args, kwargs: Kwargs) -> Any:
    """The wrapper on those methods: remember that ``instance`` is closed, and close it only
    once the requests we sent through it are answered."""
    if instance is None:
        return wrapped(*args, **kwargs)
    with _LOCK:
        _CLOSED.add(instance)
        if _IN_FLIGHT.get(id(instance)):
            _DEFERRED[id(instance)] = lambda: wrapped(*args, **kwargs)
            return _done() if wrapped.__name__.startswith(("aclose", "__aexit__")) else None
    return wrapped(*args, **kwargs)


async def _done() -> None:
    return None


def sending(instance: Any) -> bool:
    """A request is about to be sent ahead through ``instance``: False if it is closed."""
    with _LOCK:
        if closed(instance):
            return False
        _IN_FLIGHT[id(instance)] = _IN_FLIGHT.get(id(instance), 0) + 1
        return True


def sent(instance: Any) -> Any:
    """It was answered: the close it held back, if it was the last (call it, then await it
    if it is a coroutine)."""
    with _LOCK:
        left = _IN_FLIGHT[id(instance)] - 1
        if left:
            _IN_FLIGHT[id(instance)] = left
            return None
        del _IN_FLIGHT[id(instance)]
        return _DEFERRED.pop(id(instance), None)


def closed(instance: Any) -> bool:
    """Whether requests may no longer be sent through ``instance``."""
    try:
        return instance in _CLOSED or getattr(instance, "closed", False) is True  # aiohttp's session
    except TypeError:  # not weak-referenceable: never marked
        return False
