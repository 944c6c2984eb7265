"""Host limits at the HTTP layer: every request a per-item call sends through httpx,
requests, urllib or aiohttp.

One per-item call may send several requests (a client method that pages, or calls two
endpoints), so the limits of a host apply per request, where it is sent: at each library's
layers (``_integrations``: httpx's transports, requests' ``HTTPAdapter.send``, urllib's
``AbstractHTTPHandler.do_open``, aiohttp's ``ClientSession._request``). Each integration says
where its layer is and what a request there is (host, port, timeouts to cap); the wrapper
here is one for all of them (:func:`_sender`).

The wrappers act only inside an attempt of a per-item call (``_policy.ATTEMPT``), or for
the loop's own requests while an HTTP-level prefetch run is current (:data:`LOOP`, which
gets them from each of these layers, urllib's included, and may answer them with answers
sent ahead); every other request of the app, in any thread, goes through untouched.
Inside an attempt, a request first takes its host's turn (concurrency, rate, pause), is
sent with its timeout capped to the target's ``timeout``, and its answer teaches the
host's limiter (AIMD, Retry-After) and circuit.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from types import ModuleType
from typing import Any, Protocol

from .._integrations import INTEGRATIONS, LAYERS, Hook, Layer
from .._patching import Patch, apply
from ._drive import Plan, run_async, run_sync
from ._policy import ATTEMPT, DUE

__all__ = ["KEPT_FOR_LOOP", "LIBRARIES", "LOOP", "SENDERS", "LoopRequests", "patch_http", "send"]

Args = tuple[Any, ...]
Kwargs = dict[str, Any]


class LoopRequests(Protocol):
    """Whoever handles the requests a loop makes itself (an HTTP-level prefetch run)."""

    def request(self, library: str, wrapped: Callable[..., Any], instance: Any, args: Args, kwargs: Kwargs) -> Any:
        """Answer the request (``wrapped(*args, **kwargs)`` sends it as the loop made it)."""
        ...


#: The handler of the loop's own requests, in the loop's thread or task, if any.
LOOP: ContextVar[LoopRequests | None] = ContextVar("sched_accel_loop_requests", default=None)
#: True while a request whose answer is kept for the loop (sent ahead) is being sent: the
#: library's own cookie store below its layer is left alone (``Integration.stores_cookies``);
#: the answer's cookies are stored when it is served to the loop.
KEPT_FOR_LOOP: ContextVar[bool] = ContextVar("sched_accel_kept_for_loop", default=False)


def _seen() -> bool:
    return ATTEMPT.get() is not None or LOOP.get() is not None


def _elsewhere(library: str, wrapped: Callable[..., Any], instance: Any, args: Args, kwargs: Kwargs) -> Any:
    """A request outside an attempt: the loop's own (to its handler), or any other (untouched)."""
    loop = LOOP.get()
    if loop is None:
        return wrapped(*args, **kwargs)
    return loop.request(library, wrapped, instance, args, kwargs)


def _sender(layer: Layer) -> Callable[..., Any]:
    """The wrapper at one library's layer: inside an attempt, the request takes its host's
    turn, goes with its timeouts capped, and its answer teaches the host; else as
    :func:`_elsewhere` says."""
    library, outgoing = layer.library, layer.outgoing
    if layer.is_async:

        async def send_async(wrapped: Callable[..., Awaitable[Any]], instance: Any, args: Args, kwargs: Kwargs) -> Any:
            current = ATTEMPT.get()
            if current is None:
                return await _elsewhere(library, wrapped, instance, args, kwargs)
            policy, tries = current
            out = outgoing(instance, args, kwargs, policy.timeout)
            try:
                return await run_async(
                    policy.request(tries, out.host, out.port, out.pooled), lambda: wrapped(*out.args, **out.kwargs)
                )
            finally:
                if out.restore is not None:
                    out.restore()

        return send_async

    def send_sync(wrapped: Callable[..., Any], instance: Any, args: Args, kwargs: Kwargs) -> Any:
        current = ATTEMPT.get()
        if current is None:
            return _elsewhere(library, wrapped, instance, args, kwargs)
        policy, tries = current
        out = outgoing(instance, args, kwargs, policy.timeout)
        try:
            return run_sync(
                policy.request(tries, out.host, out.port, out.pooled), lambda: wrapped(*out.args, **out.kwargs)
            )
        finally:
            if out.restore is not None:
                out.restore()

    return send_sync


#: Each library's request, sent within the current attempt (limits, timeout cap, answers), by
#: the name :class:`LoopRequests` gets: the wrapper at its layer.
SENDERS: dict[str, Callable[..., Any]] = {library: _sender(layer) for library, layer in LAYERS.items()}


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


# -- installing -------------------------------------------------------------------------------
#: The libraries whose requests are seen, by the name :class:`LoopRequests` gets.
LIBRARIES = tuple(LAYERS)


def send(library: str, wrapped: Callable[..., Any], instance: Any, args: Args, kwargs: Kwargs) -> Any:
    """Send a request as our wrapper at that library's layer would (inside an attempt: with
    the host's limits; outside one: as is). ``wrapped`` is what the wrapper wraps."""
    return SENDERS[library](wrapped, instance, args, kwargs)


def _always() -> bool:
    return True


def _kept_for_loop() -> bool:
    return KEPT_FOR_LOOP.get()


def _not_yet(wrapped: Callable[..., Any], instance: Any, args: Args, kwargs: Kwargs) -> Any:
    """A library's cookie store, for the answer to a request sent ahead: nothing now (the
    cookies are stored when the loop is served it, at its own time; never, for a shadow's)."""
    return None


def patch_http(patch: Patch, watch: Callable[[str, Callable[[ModuleType], None]], None]) -> None:
    """Wrap each library's layers (where requests are sent), wires (where a request's rate
    token is taken) and cookie stores (left alone for a request sent ahead) once it is imported
    (or now, if it is), and the wrappers an integration keeps on always (httpx's making of SSL
    contexts: clients are made before a run starts)."""
    hooks: list[tuple[Hook, Callable[..., Any], Callable[[], bool]]] = []
    for integration in INTEGRATIONS:
        hooks += [(layer.hook, SENDERS[layer.library], _seen) for layer in integration.layers]
        hooks += [(hook, _wire_async if is_async else _wire_sync, _seen) for hook, is_async in integration.wires]
        hooks += [(hook, wrapper, _always) for hook, wrapper in integration.always]
        hooks += [(hook, _not_yet, _kept_for_loop) for hook in integration.stores_cookies]
    for hook, wrapper, enabled in hooks:

        def wrap(
            module: ModuleType, hook: Hook = hook, wrapper: Any = wrapper, enabled: Callable[[], bool] = enabled
        ) -> None:
            owner = hook.find(module)
            if owner is not None:
                apply(patch, owner, hook.attribute, wrapper, enabled)

        watch(hook.module, wrap)
