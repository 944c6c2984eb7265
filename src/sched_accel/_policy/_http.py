"""Host limits at the HTTP layer: every request a per-item call sends through httpx,
requests, urllib or aiohttp.

One per-item call may send several requests (a client method that pages, or calls two
endpoints), so the limits of a host apply per request, where it is sent:

- httpx: ``HTTPTransport.handle_request`` and ``AsyncHTTPTransport.handle_async_request``
  (public API; a custom transport that wraps httpx's is covered too);
- requests: ``HTTPAdapter.send``;
- urllib: ``AbstractHTTPHandler.do_open`` (``urlopen`` and every opener);
- aiohttp: ``ClientSession._request`` (what ``get``, ``request`` and the others call; it
  has kept its name and signature through aiohttp 3.x).

The wrappers act only inside an attempt of a per-item call (``_policy.ATTEMPT``), or for
the loop's own requests while an HTTP-level prefetch run is current (:data:`LOOP`, which
gets them from each of these layers, urllib's included, and may answer them with answers
sent ahead); every other request of the app, in any thread, goes through untouched.
Inside an attempt, a request first takes its host's turn (concurrency, rate, pause), is
sent with its timeout capped to the target's ``timeout``, and its answer teaches the
host's limiter (AIMD, Retry-After) and circuit.
"""

from __future__ import annotations

import os
import sys
import time
import urllib.parse
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from types import ModuleType
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import httpx

from .._patching import Patch, apply
from ._drive import Plan, run_async, run_sync
from ._policy import ATTEMPT, DUE

__all__ = ["LIBRARIES", "LOOP", "TLS_MADE", "LoopRequests", "patch_http", "send"]

Args = tuple[Any, ...]
Kwargs = dict[str, Any]


class LoopRequests(Protocol):
    """Whoever handles the requests a loop makes itself (an HTTP-level prefetch run)."""

    def request(self, library: str, wrapped: Callable[..., Any], instance: Any, args: Args, kwargs: Kwargs) -> Any:
        """Answer the request (``wrapped(*args, **kwargs)`` sends it as the loop made it)."""
        ...


#: The handler of the loop's own requests, in the loop's thread or task, if any.
LOOP: ContextVar[LoopRequests | None] = ContextVar("sched_accel_loop_requests", default=None)


def _seen() -> bool:
    return ATTEMPT.get() is not None or LOOP.get() is not None


def _elsewhere(library: str, wrapped: Callable[..., Any], instance: Any, args: Args, kwargs: Kwargs) -> Any:
    """A request outside an attempt: the loop's own (to its handler), or any other (untouched)."""
    loop = LOOP.get()
    if loop is None:
        return wrapped(*args, **kwargs)
    return loop.request(library, wrapped, instance, args, kwargs)


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
        return _elsewhere("httpx", wrapped, instance, args, kwargs)
    policy, tries = current
    request = args[0] if args else kwargs["request"]
    if policy.timeout is not None:
        _cap_httpx(request, policy.timeout)
    url = request.url
    return run_sync(policy.request(tries, url.host, url.port, _pooled(instance)), lambda: wrapped(*args, **kwargs))


async def _httpx_async(wrapped: Callable[..., Awaitable[Any]], instance: Any, args: Args, kwargs: Kwargs) -> Any:
    current = ATTEMPT.get()
    if current is None:
        return await _elsewhere("httpx-async", wrapped, instance, args, kwargs)
    policy, tries = current
    request = args[0] if args else kwargs["request"]
    if policy.timeout is not None:
        _cap_httpx(request, policy.timeout)
    url = request.url
    return await run_async(
        policy.request(tries, url.host, url.port, _pooled(instance)), lambda: wrapped(*args, **kwargs)
    )


def _pooled(transport: Any) -> bool:
    """Whether the transport sends through httpcore's connections (httpx's own, and those
    built on it), whose connections take the request's token as it goes out (``_wire_sync``)."""
    return getattr(transport, "_pool", None) is not None and "httpcore" in sys.modules


def _wire_sync(wrapped: Callable[..., Any], instance: Any, args: Args, kwargs: Kwargs) -> Any:
    """httpcore's connection, about to write a request's headers: the token it owes, first
    (``DUE``). Taken there, once the connection has marked itself ACTIVE, not on entering its
    ``handle_request``: until then the pool sees a connection it has handed to a request as
    IDLE, so for the whole wait another thread's pass would hand it to other requests, or close
    it as expired (its keep-alive clock runs until ACTIVE) and, as the request goes out
    meanwhile, close its socket under the response being read (``ReadError: [Errno 9] Bad file
    descriptor``)."""
    due = DUE.get()
    if due is not None:
        DUE.set(None)
        limiter, number = due
        if limiter.shares or limiter.take_token(number) > 0:  # else taken at once, or no rate: no plan to drive
            waits: list[object] = []
            started = time.perf_counter()
            run_sync(_noting(limiter.token(number), waits))
            _waited(time.perf_counter() - started, waits)
    return wrapped(*args, **kwargs)


def _noting(plan: Plan[None], waits: list[object]) -> Plan[None]:
    """``plan`` as it is, each wait it asks for noted in ``waits``."""
    try:
        step = next(plan)
        while True:
            waits.append(step)
            step = plan.send((yield step))
    except StopIteration:
        return None
    finally:
        plan.close()


def _waited(seconds: float, waits: list[object]) -> None:
    """A token's wait counts in the run's ``limit_wait``, as the admission's does; a token
    taken at once (no wait asked for) is none, however long the thread took to take it (off
    the CPU on a busy machine: it counted with no rate at all)."""
    current = ATTEMPT.get()
    if current is not None and waits and seconds > 0:
        current[0].stats.waited(seconds)


async def _wire_async(wrapped: Callable[..., Awaitable[Any]], instance: Any, args: Args, kwargs: Kwargs) -> Any:
    due = DUE.get()
    if due is not None:
        DUE.set(None)
        limiter, number = due
        if limiter.shares or limiter.take_token(number) > 0:  # else taken at once, or no rate: no plan to drive
            waits: list[object] = []
            started = time.perf_counter()
            await run_async(_noting(limiter.token(number), waits), _nothing)
            _waited(time.perf_counter() - started, waits)
    return await wrapped(*args, **kwargs)


async def _nothing() -> None:  # pragma: no cover - a token plan never asks to act
    raise AssertionError("a token plan has no action")


# -- requests ---------------------------------------------------------------------------------
def _requests_send(wrapped: Callable[..., Any], instance: Any, args: Args, kwargs: Kwargs) -> Any:
    current = ATTEMPT.get()
    if current is None:
        return _elsewhere("requests", wrapped, instance, args, kwargs)
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
        return _elsewhere("urllib", wrapped, instance, args, kwargs)
    policy, tries = current
    request = args[1] if len(args) > 1 else kwargs["req"]  # do_open(http_class, req, **conn_args)
    parts = urllib.parse.urlsplit(f"//{request.host}")
    cap = policy.timeout
    if cap is None:
        return run_sync(
            policy.request(tries, parts.hostname or request.host, parts.port), lambda: wrapped(*args, **kwargs)
        )
    # The default is socket._GLOBAL_DEFAULT_TIMEOUT, an object: no timeout at all. The app's
    # Request object gets its own timeout back afterwards (it may be reused).
    timeout = request.timeout
    request.timeout = min(timeout, cap) if isinstance(timeout, int | float) and timeout > 0 else cap
    try:
        return run_sync(
            policy.request(tries, parts.hostname or request.host, parts.port), lambda: wrapped(*args, **kwargs)
        )
    finally:
        request.timeout = timeout


# -- aiohttp ----------------------------------------------------------------------------------
def aiohttp_url(session: Any, args: Args, kwargs: Kwargs) -> Any:
    """The absolute ``yarl.URL`` of a ``ClientSession._request(method, str_or_url, ...)``
    call, with its ``params`` (as aiohttp builds it)."""
    import yarl

    raw = args[1] if len(args) > 1 else kwargs["str_or_url"]
    url = raw if isinstance(raw, yarl.URL) else yarl.URL(str(raw))
    base = getattr(session, "_base_url", None)
    if base is not None and not url.is_absolute():
        url = base.join(url)
    params = kwargs.get("params")
    if params:
        url = url.extend_query(params)
    return url


def _aiohttp_timeout(session: Any, value: Any, cap: float) -> Any:
    """The request's ``timeout`` (or the session's) with each of its limits capped."""
    import aiohttp

    timeout = value if isinstance(value, aiohttp.ClientTimeout) else getattr(session, "timeout", None)
    if not isinstance(timeout, aiohttp.ClientTimeout):
        return aiohttp.ClientTimeout(total=cap)
    return aiohttp.ClientTimeout(
        total=_capped(timeout.total, cap),
        connect=timeout.connect and min(timeout.connect, cap),
        sock_read=timeout.sock_read and min(timeout.sock_read, cap),
        sock_connect=timeout.sock_connect and min(timeout.sock_connect, cap),
    )


async def _aiohttp_request(wrapped: Callable[..., Awaitable[Any]], instance: Any, args: Args, kwargs: Kwargs) -> Any:
    current = ATTEMPT.get()
    if current is None:
        return await _elsewhere("aiohttp", wrapped, instance, args, kwargs)
    policy, tries = current
    url = aiohttp_url(instance, args, kwargs)
    if policy.timeout is not None:
        kwargs = {**kwargs, "timeout": _aiohttp_timeout(instance, kwargs.get("timeout"), policy.timeout)}
    return await run_async(policy.request(tries, url.host or "", url.port), lambda: wrapped(*args, **kwargs))


# -- installing -------------------------------------------------------------------------------
_LAYERS: tuple[tuple[str, str, str, Callable[..., Any]], ...] = (
    ("httpx", "HTTPTransport", "handle_request", _httpx_sync),
    ("httpx", "AsyncHTTPTransport", "handle_async_request", _httpx_async),
    # Once connected and the connection taken (ACTIVE), as each request's headers are written
    # (see ``Policy.request(wire=True)``, and ``_wire_sync`` for why not earlier).
    ("httpcore", "HTTP11Connection", "_send_request_headers", _wire_sync),
    ("httpcore", "AsyncHTTP11Connection", "_send_request_headers", _wire_async),
    ("httpcore", "HTTP2Connection", "_send_request_headers", _wire_sync),
    ("httpcore", "AsyncHTTP2Connection", "_send_request_headers", _wire_async),
    ("requests.adapters", "HTTPAdapter", "send", _requests_send),
    ("urllib.request", "AbstractHTTPHandler", "do_open", _urllib_open),
    ("aiohttp", "ClientSession", "_request", _aiohttp_request),
)

#: The libraries whose requests are seen, by the name :class:`LoopRequests` gets.
LIBRARIES = ("httpx", "httpx-async", "requests", "urllib", "aiohttp")

#: Each library's request, sent within the current attempt (limits, timeout cap, answers).
_SENDERS: dict[str, Callable[..., Any]] = {
    "httpx": _httpx_sync,
    "httpx-async": _httpx_async,
    "requests": _requests_send,
    "urllib": _urllib_open,
    "aiohttp": _aiohttp_request,
}


def send(library: str, wrapped: Callable[..., Any], instance: Any, args: Args, kwargs: Kwargs) -> Any:
    """Send a request as our wrapper at that library's layer would (inside an attempt: with
    the host's limits; outside one: as is). ``wrapped`` is what the wrapper wraps."""
    return _SENDERS[library](wrapped, instance, args, kwargs)


#: The attribute an SSL context httpx made from its own settings carries: what it was made from
#: (``verify`` and ``cert`` as given, ``trust_env`` and the variables it reads), so that two
#: clients made alike (one per item) are known as the same client, and two made with different
#: certificates never are (``_prefetch._clients``: an answer is served only to its own client).
TLS_MADE = "_sched_accel_made"


def _tag_ssl_context(wrapped: Callable[..., Any], instance: Any, args: Args, kwargs: Kwargs) -> Any:
    """httpx's ``create_ssl_context(verify, cert, trust_env)``: the context, tagged with what it
    was made from when httpx made it (a context the app made and passed in is left untagged:
    it is known by its identity)."""
    context = wrapped(*args, **kwargs)
    verify = args[0] if args else kwargs.get("verify", True)
    if isinstance(verify, bool | str):
        cert = args[1] if len(args) > 1 else kwargs.get("cert")
        trust_env = bool(args[2] if len(args) > 2 else kwargs.get("trust_env", True))
        made: tuple[object, ...] = (repr(verify), repr(cert), trust_env)
        if trust_env:
            made += (os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR"))
        try:
            setattr(context, TLS_MADE, made)
        except AttributeError:  # a context that takes no attribute: known by its identity
            pass
    return context


def _always() -> bool:
    return True


def patch_http(patch: Patch, watch: Callable[[str, Callable[[ModuleType], None]], None]) -> None:
    """Wrap the send method of each HTTP library once it is imported (or now, if it is), and
    httpx's making of SSL contexts (always: clients are made before a run starts)."""
    for module_name, owner_name, attribute, wrapper in _LAYERS:

        def wrap(
            module: ModuleType, owner_name: str = owner_name, attribute: str = attribute, wrapper: Any = wrapper
        ) -> None:
            owner = getattr(module, owner_name, None)
            if owner is not None and callable(getattr(owner, attribute, None)):
                apply(patch, owner, attribute, wrapper, _seen)

        watch(module_name, wrap)

    def tag(module: ModuleType) -> None:
        if callable(getattr(module, "create_ssl_context", None)):
            apply(patch, module, "create_ssl_context", _tag_ssl_context, _always)

    watch("httpx._transports.default", tag)
