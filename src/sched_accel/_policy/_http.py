"""Host limits at the HTTP layer: every request a per-item call sends through httpx,
requests or urllib.

One per-item call may send several requests (a client method that pages, or calls two
endpoints), so the limits of a host apply per request, where it is sent:

- httpx: ``HTTPTransport.handle_request`` and ``AsyncHTTPTransport.handle_async_request``
  (public API; a custom transport that wraps httpx's is covered too);
- requests: ``HTTPAdapter.send``;
- urllib: ``AbstractHTTPHandler.do_open`` (``urlopen`` and every opener).

The wrappers act only inside an attempt of a per-item call (``_policy.ATTEMPT``); every
other request of the app, in any thread, goes through untouched. Inside one, a request
first takes its host's turn (concurrency, rate, pause), is sent with its timeout capped to
the target's ``timeout``, and its answer teaches the host's limiter (AIMD, Retry-After)
and circuit.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Awaitable, Callable
from types import ModuleType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import httpx

from .._patching import Patch, apply
from ._drive import run_async, run_sync
from ._policy import ATTEMPT

__all__ = ["patch_http"]

Args = tuple[Any, ...]
Kwargs = dict[str, Any]


def _in_attempt() -> bool:
    return ATTEMPT.get() is not None


def _capped(value: Any, cap: float) -> Any:
    """A timeout value (seconds, or None for none) no longer than ``cap``; others unchanged."""
    if value is None:
        return cap
    if isinstance(value, int | float) and not isinstance(value, bool):
        return min(value, cap)
    return value


# -- httpx ------------------------------------------------------------------------------------
def _cap_httpx(request: httpx.Request, cap: float) -> None:
    """Cap the request's own timeouts (in its extensions, as httpx's client puts them)."""
    timeouts = request.extensions.get("timeout")
    if isinstance(timeouts, dict):
        request.extensions = {**request.extensions, "timeout": {k: _capped(v, cap) for k, v in timeouts.items()}}


def _httpx_sync(wrapped: Callable[..., Any], instance: Any, args: Args, kwargs: Kwargs) -> Any:
    current = ATTEMPT.get()
    if current is None:
        return wrapped(*args, **kwargs)
    policy, tries = current
    request = args[0] if args else kwargs["request"]
    if policy.timeout is not None:
        _cap_httpx(request, policy.timeout)
    url = request.url
    return run_sync(policy.request(tries, url.host, url.port), lambda: wrapped(*args, **kwargs))


async def _httpx_async(wrapped: Callable[..., Awaitable[Any]], instance: Any, args: Args, kwargs: Kwargs) -> Any:
    current = ATTEMPT.get()
    if current is None:
        return await wrapped(*args, **kwargs)
    policy, tries = current
    request = args[0] if args else kwargs["request"]
    if policy.timeout is not None:
        _cap_httpx(request, policy.timeout)
    url = request.url
    return await run_async(policy.request(tries, url.host, url.port), lambda: wrapped(*args, **kwargs))


# -- requests ---------------------------------------------------------------------------------
def _requests_send(wrapped: Callable[..., Any], instance: Any, args: Args, kwargs: Kwargs) -> Any:
    current = ATTEMPT.get()
    if current is None:
        return wrapped(*args, **kwargs)
    policy, tries = current
    request = args[0] if args else kwargs["request"]
    cap = policy.timeout
    if cap is not None:
        if len(args) >= 3:  # send(request, stream, timeout, ...)
            args = (*args[:2], _capped_requests(args[2], cap), *args[3:])
        else:
            kwargs = {**kwargs, "timeout": _capped_requests(kwargs.get("timeout"), cap)}
    parts = urllib.parse.urlsplit(request.url)
    return run_sync(policy.request(tries, parts.hostname or "", parts.port), lambda: wrapped(*args, **kwargs))


def _capped_requests(value: Any, cap: float) -> Any:
    if isinstance(value, tuple) and len(value) == 2:  # (connect, read)
        return (_capped(value[0], cap), _capped(value[1], cap))
    return _capped(value, cap)


# -- urllib -----------------------------------------------------------------------------------
def _urllib_open(wrapped: Callable[..., Any], instance: Any, args: Args, kwargs: Kwargs) -> Any:
    current = ATTEMPT.get()
    if current is None:
        return wrapped(*args, **kwargs)
    policy, tries = current
    request = args[1] if len(args) > 1 else kwargs["req"]  # do_open(http_class, req, **conn_args)
    parts = urllib.parse.urlsplit(f"//{request.host}")
    cap = policy.timeout
    if cap is None:
        return run_sync(policy.request(tries, parts.hostname or request.host, parts.port), lambda: wrapped(*args, **kwargs))
    # The default is socket._GLOBAL_DEFAULT_TIMEOUT, an object: no timeout at all. The app's
    # Request object gets its own timeout back afterwards (it may be reused).
    timeout = request.timeout
    request.timeout = min(timeout, cap) if isinstance(timeout, int | float) and timeout > 0 else cap
    try:
        return run_sync(policy.request(tries, parts.hostname or request.host, parts.port), lambda: wrapped(*args, **kwargs))
    finally:
        request.timeout = timeout


# -- installing -------------------------------------------------------------------------------
_LAYERS: tuple[tuple[str, str, str, Callable[..., Any]], ...] = (
    ("httpx", "HTTPTransport", "handle_request", _httpx_sync),
    ("httpx", "AsyncHTTPTransport", "handle_async_request", _httpx_async),
    ("requests.adapters", "HTTPAdapter", "send", _requests_send),
    ("urllib.request", "AbstractHTTPHandler", "do_open", _urllib_open),
)


def patch_http(patch: Patch, watch: Callable[[str, Callable[[ModuleType], None]], None]) -> None:
    """Wrap the send method of each HTTP library once it is imported (or now, if it is)."""
    for module_name, owner_name, attribute, wrapper in _LAYERS:

        def wrap(module: ModuleType, owner_name: str = owner_name, attribute: str = attribute, wrapper: Any = wrapper) -> None:
            owner = getattr(module, owner_name, None)
            if owner is not None and callable(getattr(owner, attribute, None)):
                apply(patch, owner, attribute, wrapper, _in_attempt)

        watch(module_name, wrap)
