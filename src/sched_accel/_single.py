"""single_run: a loop that runs in one process per schedule tick, across every process sharing
the coordination backend (an APScheduler started in each of 4 gunicorn workers runs each job once).

Each call of the loop finds its tick (``_ticks``) and claims ``(target, tick)`` on the backend,
an expiring claim with a fencing token (``_coord``). The winner runs the call as before
(accelerated or not, as the target's switch says); the others skip it, log one
``sched_accel.single_run_skipped`` line and return None, what a run that did nothing returns.

Doing no harm: exactly one run per tick when the backend answers; when it cannot, at least one.
The configured backend down (Redis unreachable), the claims go to the machine backend, so
each machine runs the tick once; that one refused too, or a call with no tick, or a bug of
ours: the call runs, in every process, with one line saying so. A tick run twice is the
legacy app's own behaviour; a tick run by nobody would be a loss no log line brings back.

So that no other client of a Redis server can silence a job, a claim is in force only as far as
one of the app's processes could have made it (issue 24, item 5): ending within its ttl from
now, of a tick that starts within that ttl from now (:func:`claim_latest`); any other is
replaced by the caller's. The app's keys there are named under its secret (``_coord._names``).

A wall clock stepped back lives some ticks again. Each claim keeps the claimant's wall clock,
so a claim this machine made is read on the present clock (``_coord._base.lived_again``): a
window it did not fall in, lived again, is run once more, in one process, as a window whose
claims are over is.
"""

from __future__ import annotations

import hashlib
import math
import os
import threading
import time
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from ._coord import Backend, make_backend
from ._coord._base import MAX_TICK
from ._coordination import CoordinationSettings
from ._events import (
    SINGLE_RUN_CLAIMED,
    SINGLE_RUN_FALLBACK,
    SINGLE_RUN_NO_TICK,
    SINGLE_RUN_RECOVERED,
    SINGLE_RUN_SKIPPED,
    SINGLE_RUN_UNCOORDINATED,
)
from ._exceptions import CoordinationUnavailable
from ._log import event, internal_error
from ._policy._shared import SharedRates
from ._settings import Settings, Target
from ._state import Controls
from ._ticks import Tick, caller, tick_of

__all__ = [
    "Claims",
    "Present",
    "SingleRun",
    "claim_key",
    "claim_latest",
    "claim_ttl",
    "longest_pause",
]

Args = tuple[Any, ...]
Kwargs = dict[str, Any]
#: Seconds the configured backend is not asked again after it failed (the fallback serves).
RETRY_AFTER = 5.0
_claims_made: weakref.WeakSet[Claims] = weakref.WeakSet()


def claim_key(settings: Settings, target: Target) -> str:
    """The key a target's ticks are claimed under: its name, in the namespace (by default the
    config file's path: processes started from the same config coordinate)."""
    namespace = namespace_of(settings)
    return f"single_run:{target.name}@{namespace}" if namespace else f"single_run:{target.name}"


def namespace_of(settings: Settings) -> str:
    """The app's namespace on the backend, hashed ('' without one): what its processes share."""
    namespace = settings.coordination.namespace or settings.path or ""
    return hashlib.blake2b(namespace.encode(), digest_size=8).hexdigest() if namespace else ""


def shared_rates(settings: Settings) -> SharedRates | None:
    """The host rates shared by the app's processes, unless they are the process's own
    (``backend = "process"``, or the machine backend without a state folder)."""
    coordination = settings.coordination
    if coordination.kind == "process" or (coordination.kind == "machine" and not settings.state_dir):
        return None
    return SharedRates(
        lambda: make_backend(coordination, settings.state_dir),
        coordination.where,
        namespace_of(settings) or "app",
        longest=longest_pause(settings),
    )


def longest_pause(settings: Settings) -> float:
    """The longest pause of a host the app takes from the backend: its longest retry deadline,
    as a ``Retry-After`` is cut to its target's (``_policy._hosts.HostState.answered``)."""
    return max([settings.retry.deadline, *(target.retry.deadline for target in settings.targets)])


def claim_ttl(tick: Tick) -> float:
    """How long a claim holds: three ticks, at least a minute. A process later than that for a
    tick nobody has claimed past would run it again; a later tick is never held up by it."""
    return max(3 * tick.seconds, 60.0)


def claim_latest(tick: Tick, now: float) -> int:
    """The latest tick a claim in force may hold at wall time ``now``: one starting within the
    claim's ttl from now (the clocks of the app's machines agree better than that), and never
    before ``tick`` itself. No process of the app claims a later one (schedulers run a job at
    or after its time), so a claim of one was forged: it is replaced."""
    return max(tick.number, min(MAX_TICK - 1, math.floor((now + claim_ttl(tick)) / tick.seconds)))


@dataclass(frozen=True, slots=True)
class Claimed:
    """What a claim came to: ``token`` for the winner; ``backend`` None when uncoordinated."""

    token: int | None
    backend: Backend | None

    @property
    def runs(self) -> bool:
        return self.token is not None or self.backend is None


class Claims:
    """The claims of one process: through the configured backend; through the machine backend
    while that one cannot answer (asked again after :data:`RETRY_AFTER` s); uncoordinated,
    the call running, when neither can. Each change is said in one line."""

    def __init__(
        self,
        settings: CoordinationSettings,
        state_dir: str | None,
        *,
        make: Callable[[CoordinationSettings, str | None, str | None], Backend] = make_backend,
        clock: Callable[[], float] = time.monotonic,
        retry_after: float = RETRY_AFTER,
    ) -> None:
        self.settings = settings
        self.state_dir = state_dir
        self._make = make
        self._clock = clock
        self._retry_after = retry_after
        self._lock = threading.Lock()
        self._backends: dict[str, Backend] = {}
        self._down_until = 0.0
        self._down = False  # the configured backend failed, and has not answered since
        self._alone = False  # the fallback failed too, and has not answered since
        _claims_made.add(self)

    @property
    def blocking(self) -> bool:
        """Whether a claim may wait on the network (an async loop asks from a worker thread)."""
        return self.settings.kind == "redis"

    def _backend(self, kind: str) -> Backend:
        with self._lock:
            found = self._backends.get(kind)
            if found is None:
                found = self._backends[kind] = self._make(self.settings, self.state_dir, kind)
            return found

    def claim(
        self,
        key: str,
        tick: int,
        *,
        ttl: float,
        latest: int | None = None,
        at: float | None = None,
        period: float | None = None,
    ) -> Claimed:
        """Claim ``tick`` of ``key`` (``latest``, ``at``, ``period``: :meth:`Backend.claim`'s);
        never raises CoordinationUnavailable (it is said, and runs)."""
        primary = self.settings.kind
        if self._clock() >= self._down_until:
            try:
                backend = self._backend(primary)
                token = backend.claim(key, tick, ttl=ttl, latest=latest, at=at, period=period)
            except CoordinationUnavailable as exc:
                self._down_until = self._clock() + self._retry_after
                self._failed(primary, exc)
            else:
                if self._down or self._alone:
                    self._down = self._alone = False
                    event(SINGLE_RUN_RECOVERED, "claims go through it again", backend=self.settings.where)
                return Claimed(token, backend)
        if primary != "machine":
            try:
                backend = self._backend("machine")
                return Claimed(backend.claim(key, tick, ttl=ttl, latest=latest, at=at, period=period), backend)
            except CoordinationUnavailable as exc:
                self._failed("machine", exc)
        return Claimed(None, None)

    def _failed(self, kind: str, exc: CoordinationUnavailable) -> None:
        if kind == self.settings.kind and kind != "machine":
            if not self._down:
                self._down = True
                event(
                    SINGLE_RUN_FALLBACK,
                    "the backend cannot answer, so single_run claims go to the machine backend (one run per tick "
                    f"on each machine) until it answers again; it is asked again every {self._retry_after:g} s",
                    backend=self.settings.where,
                    error=str(exc),
                )
        elif not self._alone:
            self._alone = True
            event(
                SINGLE_RUN_UNCOORDINATED,
                "no backend can answer, so every process runs each tick (as without single_run) until one does",
                backend=kind,
                error=str(exc),
            )

    def close(self) -> None:
        with self._lock:
            backends, self._backends = self._backends, {}
        for backend in backends.values():
            try:
                backend.close()
            except Exception as exc:  # pragma: no cover - closing files and sockets
                internal_error(f"closing the {backend.kind} backend", exc)

    def _after_fork(self) -> None:
        self._lock = threading.Lock()  # a lock held by a thread that is not in the child


def _after_fork_in_child() -> None:  # pragma: no cover - runs in forked children only
    for claims in list(_claims_made):
        claims._after_fork()


os.register_at_fork(after_in_child=_after_fork_in_child)


class Present:
    """single_run's own switch: on while sched_accel is installed and the control file does not
    switch the target off. The target's breaker is not asked: it trips on failures of the
    acceleration, and a tripped one runs the loop unaccelerated, still once per tick."""

    def __init__(self, name: str, control: Controls, active: Callable[[], bool]) -> None:
        self.name = name
        self.control = control
        self._active = active

    def __call__(self) -> bool:
        try:
            return self._active() and not self.control.state().is_off(self.name)
        except Exception:  # pragma: no cover - defensive: a no is always safe (the loop runs as before)
            return False


class SingleRun:
    """The wrapper on a single_run loop: the call's tick claimed, then the mode's wrapper (while
    ``accelerate`` says yes; else the original loop), or the call skipped (None returned)."""

    def __init__(
        self,
        target: Target,
        inner: Callable[..., Any],
        accelerate: Callable[[], bool],
        claims: Claims,
        *,
        key: str,
        is_async: bool,
    ) -> None:
        self.target = target
        self.inner = inner
        self.accelerate = accelerate
        self.claims = claims
        self.key = key
        self.is_async = is_async
        self._said: set[str] = set()

    def __call__(self, wrapped: Callable[..., Any], instance: Any, args: Args, kwargs: Kwargs) -> Any:
        tick = self._tick()
        if self.is_async:
            return self._call_async(tick, wrapped, instance, args, kwargs)
        if tick is not None and not self._runs(tick):
            return None
        return self._run(wrapped, instance, args, kwargs)

    async def _call_async(
        self, tick: Tick | None, wrapped: Callable[..., Any], instance: Any, args: Args, kwargs: Kwargs
    ) -> Any:
        if tick is not None:
            try:
                runs = await self._runs_async(tick)
            except Exception as exc:  # no worker thread to be had (an event loop anyio does not know)
                if self._first("thread"):
                    internal_error(f"claiming a tick of {self.target.name}", exc)
                runs = True
            if not runs:
                return None
        result: Awaitable[Any] = self._run(wrapped, instance, args, kwargs)
        return await result

    async def _runs_async(self, tick: Tick) -> bool:
        """:meth:`_runs` from a worker thread when the backend may wait on the network, so the
        event loop is not held (the process and machine backends answer in microseconds)."""
        if not self.claims.blocking:
            return self._runs(tick)
        import anyio.to_thread

        return await anyio.to_thread.run_sync(self._runs, tick)

    def _run(self, wrapped: Callable[..., Any], instance: Any, args: Args, kwargs: Kwargs) -> Any:
        if self.accelerate():
            return self.inner(wrapped, instance, args, kwargs)
        return wrapped(*args, **kwargs)

    def _tick(self) -> Tick | None:
        """This call's tick, read from the frames above the wrapper (wrapt adds none)."""
        try:
            tick = tick_of(self.target.tick, caller(2))
        except Exception as exc:  # a bug of ours: the call runs
            if self._first("tick"):
                internal_error(f"finding the tick of {self.target.name}", exc)
            return None
        if tick is None and self._first("no_tick"):
            self._no_tick()
        return tick

    def _no_tick(self) -> None:
        event(
            SINGLE_RUN_NO_TICK,
            "this call comes from no scheduler sched_accel reads the scheduled time of (APScheduler 3.x, schedule), "
            "and the target declares no tick, so it runs in every process; declare tick = <the schedule's "
            "interval in seconds> to run it once per interval",
            target=self.target.name,
        )

    def _runs(self, tick: Tick) -> bool:
        """Claim the tick; whether this call runs (it does whenever anything of ours fails)."""
        try:
            now = time.time()
            claimed = self.claims.claim(
                self.key, tick.number, ttl=claim_ttl(tick), latest=claim_latest(tick, now), at=now, period=tick.seconds
            )
        except Exception as exc:  # a bug of ours: the call runs
            if self._first("claim"):
                internal_error(f"claiming a tick of {self.target.name}", exc)
            return True
        if claimed.runs:
            backend = claimed.backend.kind if claimed.backend is not None else "none (uncoordinated)"
            event(
                SINGLE_RUN_CLAIMED,
                "",
                target=self.target.name,
                tick=tick.number,
                token=claimed.token,
                backend=backend,
            )
            return True
        assert claimed.backend is not None
        try:
            held = claimed.backend.held(self.key)
        except Exception:  # noqa: BLE001 - only for the line: who holds it is unknown
            held = None
        holder: dict[str, Any] = {"holder_token": held[1]} if held is not None else {}
        if held is not None and held[0] != tick.number:
            holder["held_tick"] = held[0]
        event(
            SINGLE_RUN_SKIPPED,
            "another process runs this tick, so this call returns None, as a run that did nothing would",
            target=self.target.name,
            tick=tick.number,
            source=tick.source,
            backend=claimed.backend.kind,
            **holder,
        )
        return False

    def _first(self, what: str) -> bool:
        """Whether ``what`` is said for the first time (each is said once per process)."""
        first = what not in self._said
        self._said.add(what)
        return first
