"""Upstream-aware policy: what happens around each attempt of a per-item call.

A :class:`Policy` belongs to one run of a prefetched loop. The workers call
:meth:`Policy.attempt` (threads) or :meth:`Policy.aattempt` (tasks) for each try of a
predicted call; it runs the call with the attempt made current (:data:`ATTEMPT`), so that
every HTTP request the call makes through httpx, requests or urllib passes the limits of
its host (``_http`` asks :meth:`Policy.request_sync` / :meth:`Policy.request_async`). A
failure is classified (``_retry``): rate-limited and transient ones are tried again after a
backoff that honours Retry-After, the slot going back in line without a worker waiting for
it; permanent ones, and any failure once the deadline has passed, are final, and the loop
sees the exception at its call site. Calls the loop makes itself (misses, stepped aside)
get the same retries and limits in the loop's own thread or task, through :meth:`Policy.call`
and :meth:`Policy.acall`.

:class:`Hosts` holds one :class:`HostState` per upstream host: its limiter (concurrency,
rate, host-wide pause, AIMD; ``_limits``) and its circuit (:class:`HostCircuit`). All
targets of the process share them. :class:`RunStats` counts what a run went through.
"""

from __future__ import annotations

import sys
import threading
import time
import urllib.error
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass
from random import Random
from typing import Any, Literal, TypeVar

import anyio

from ._config import HostSettings, RetrySettings, Target
from ._engine import Slot
from ._limits import HostLimit, HostLimiter, HostLimiterStatistics
from ._log import event
from ._retry import Backoff, Failure, classify, retry_after

__all__ = ["ATTEMPT", "HostCircuit", "HostState", "Hosts", "Policy", "RunStats", "paced", "statistics_lines"]

R = TypeVar("R")

#: The attempt of a per-item call running in this thread or task: (its run's policy, its slot).
ATTEMPT: ContextVar[tuple[Policy, Slot[Any]] | None] = ContextVar("sched_accel_attempt", default=None)

#: Give-ups logged one by one per run; the rest are only counted in the run's line.
_GIVE_UP_LINES = 5

_COUNTERS = (
    "retried",
    "retries",
    "gave_up",
    "lost",
    "requests",
    "http_429",
    "http_503",
    "timeouts",
    "peak_requests",
)


class RunStats:
    """What one run went through, counted from the workers and the HTTP layer (thread-safe).

    ``retried``: items tried more than once; ``retries``: the extra attempts; ``gave_up``:
    items whose retry deadline passed (their last exception reached the loop); ``lost``: of
    those, and of items refused while a circuit was open, the rate-limited ones (must stay
    0); ``requests``, ``http_429``, ``http_503``, ``timeouts``: HTTP requests and the
    overload answers among them; ``peak_requests``: most requests of the run in flight at
    once (the concurrency reached); ``limit_wait``: seconds requests and calls waited for
    host and target limits.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.retried = self.retries = self.gave_up = self.lost = 0
        self.requests = self.http_429 = self.http_503 = self.timeouts = 0
        self.in_flight = self.peak_requests = 0
        self.limit_wait = 0.0

    def add(self, name: str, amount: int = 1) -> None:
        with self._lock:
            setattr(self, name, getattr(self, name) + amount)

    def waited(self, seconds: float) -> None:
        if seconds > 0.0005:
            with self._lock:
                self.limit_wait += seconds

    def sent(self) -> None:
        with self._lock:
            self.requests += 1
            self.in_flight += 1
            self.peak_requests = max(self.peak_requests, self.in_flight)

    def answered(self) -> None:
        with self._lock:
            self.in_flight -= 1

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            counts: dict[str, Any] = {name: getattr(self, name) for name in _COUNTERS}
            counts["limit_wait"] = round(self.limit_wait, 3)
            return counts


class HostCircuit:
    """A circuit breaker for one host: ``failures`` failed requests in a row open it.

    While open, the per-item calls that reach the host run as the original code would:
    no limits, no retries, the failure raised in the loop at once. After ``cooldown``
    one request is let through as the trial (half-open); its success closes the circuit,
    its failure opens it again. Answers of 429 are neither: the host is up, only busy.
    """

    def __init__(self, host: str, failures: int, cooldown: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.host = host
        self.failures = failures
        self.cooldown = cooldown
        self.clock = clock
        self._lock = threading.Lock()
        self._failed = 0
        self._opened_at: float | None = None
        self._trial_out = False
        self.opened = 0  # how often it opened

    @property
    def state(self) -> Literal["closed", "open", "half-open"]:
        if self._opened_at is None:
            return "closed"
        return "half-open" if self._trial_out else "open"

    def admit(self) -> Literal["closed", "trial", "open"]:
        """How the next request goes: normally, as the half-open trial, or straight through."""
        if self._opened_at is None:
            return "closed"
        with self._lock:
            if self._opened_at is None:
                return "closed"
            if self._trial_out or self.clock() - self._opened_at < self.cooldown:
                return "open"
            self._trial_out = True
        event("WARNING", "circuit_half_open", "cool-down over: one trial request goes through", host=self.host)
        return "trial"

    def give_back_trial(self) -> None:
        """The trial request was cancelled before an answer: the next request is the trial."""
        with self._lock:
            self._trial_out = False

    def record(self, ok: bool, trial: bool = False) -> None:
        """The outcome of a request admitted as ``closed`` (or as the ``trial``)."""
        opened = closed = False
        with self._lock:
            if trial:
                self._trial_out = False
                if ok:
                    self._opened_at, self._failed, closed = None, 0, True
                else:
                    self._opened_at, opened = self.clock(), True
            elif self._opened_at is None:
                if ok:
                    self._failed = 0
                else:
                    self._failed += 1
                    if self._failed >= self.failures:
                        self._opened_at, opened = self.clock(), True
                        self.opened += 1
        if opened:
            event(
                "ERROR",
                "circuit_open",
                f"{self._failed} failed request(s) in a row; calls to this host run as the original code (no "
                f"limits, no retries) for {self.cooldown:g} s, then one trial request; check the host",
                host=self.host,
                failures=self._failed,
                cooldown=self.cooldown,
            )
        elif closed:
            event("INFO", "circuit_closed", "the trial request succeeded: limits and retries apply again", host=self.host)


@dataclass(slots=True)
class HostState:
    """An upstream host's limiter and circuit."""

    name: str
    limiter: HostLimiter
    circuit: HostCircuit


class Hosts:
    """Every upstream host's state, for the whole process (shared by all targets).

    A host named in the config (``"api.example.com"`` or ``"api.example.com:8443"``, the
    latter first) gets its limits; any other host gets AIMD within ``default_concurrency``
    (by default no bound is tighter than the targets' own), no rate limit, and a circuit
    with the default thresholds.
    """

    def __init__(self, settings: dict[str, HostSettings] | None = None, default_concurrency: int | None = None) -> None:
        self.settings = dict(settings or {})
        self.default_concurrency = default_concurrency
        self._lock = threading.Lock()
        self._states: dict[tuple[str, int | None], HostState] = {}
        self._by_name: dict[str, HostState] = {}
        self._hinted: set[str] = set()

    def get(self, host: str, port: int | None = None) -> HostState:
        key = (host, port)
        state = self._states.get(key)
        if state is not None:
            return state
        with self._lock:
            host = host.lower()
            name = f"{host}:{port}" if port is not None and f"{host}:{port}" in self.settings else host
            state = self._by_name.get(name)
            if state is None:
                conf = self.settings.get(name)
                if conf is None:
                    limit = HostLimit(self.default_concurrency, None)
                    conf = HostSettings()
                else:
                    limit = paced(conf.concurrency, conf.per_second, conf.burst, conf.adaptive)
                circuit = HostCircuit(name, conf.breaker_failures, conf.breaker_cooldown)
                state = self._by_name[name] = HostState(name, HostLimiter(name, limit), circuit)
            self._states[key] = state
            return state

    def hint_undeclared(self) -> None:
        """Once per host: say that a host with no declared rate answered 429, and what to declare."""
        with self._lock:
            states = [s for s in self._by_name.values() if s.name not in self.settings and s.name not in self._hinted]
        for state in states:
            refused = state.limiter.statistics().rate_limited
            if refused:
                self._hinted.add(state.name)
                event(
                    "WARNING",
                    "host_limit_undeclared",
                    f'this host answered 429 and its limit is not declared; add [hosts."{state.name}"] with its '
                    "per_second and burst (from its API docs) so requests are paced instead of refused; while it "
                    "refuses, each Retry-After pauses every request to it",
                    host=state.name,
                    http_429=refused,
                )

    def statistics(self) -> dict[str, tuple[HostLimiterStatistics, str]]:
        """Every host seen so far: its limiter's counters and its circuit's state."""
        with self._lock:
            states = list(self._by_name.values())
        return {s.name: (s.limiter.statistics(), s.circuit.state) for s in states}


def paced(concurrency: int | None, rate: float | None, burst: int, adaptive: bool = True) -> HostLimit:
    """The limit we pace to, a hair inside the host's own: our admission and the request's
    arrival at the host are apart by a varying delay (a thread waiting for the GIL, a new
    connection), and a request that arrives a little early finds the host's bucket empty.
    One 429 can cost a whole second of Retry-After, so one request of the burst is kept in
    hand for that jitter (one rate interval of slack, e.g. 50 ms at 20/s); with a burst of 1
    the rate is paced 2% slower instead."""
    if rate is not None:
        if burst >= 2:
            burst -= 1
        else:
            rate *= 0.98
    return HostLimit(concurrency, rate, burst, adaptive)


def _is_timeout(exc: BaseException) -> bool:
    reason = getattr(exc, "reason", None)  # urllib.error.URLError wraps the socket's
    return any("Timeout" in cls.__name__ for cls in type(exc).__mro__) or isinstance(reason, TimeoutError)


class Policy:
    """Retries, limits and statistics for one run of a target."""

    def __init__(
        self,
        target: Target,
        hosts: Hosts,
        *,
        limiter: HostLimiter | None = None,
        rng: Random | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = target.name
        self.retry: RetrySettings = target.retry
        self.timeout = target.timeout
        self.hosts = hosts
        self.limiter = limiter
        self.rng = rng or Random()
        self.clock = clock
        self.stats = RunStats()
        self.backoff = Backoff(
            initial=self.retry.initial,
            maximum=max(self.retry.maximum, self.retry.initial),
            deadline=self.retry.deadline,
        )
        self._types: dict[str, type[BaseException] | None] = dict.fromkeys(self.retry.on)
        self._give_up_lines = 0

    @property
    def wait_timeout(self) -> float | None:
        """How long the loop waits for a prefetched call before TimeoutError: the per-attempt
        timeout, plus the retry deadline when failed attempts are retried."""
        if self.timeout is None:
            return None
        return self.timeout + (self.retry.deadline if self.retry.enabled else 0.0)

    # -- one attempt -------------------------------------------------------------------------
    def attempt(self, slot: Slot[Any]) -> float | None:
        """Try the slot's call once, in this thread; None when final, else the retry delay."""
        if slot.attempts == 0:
            slot.first_started = self.clock()
        slot.attempts += 1
        token = ATTEMPT.set((self, slot))
        try:
            if self.limiter is None:
                slot.run()
            else:
                started = time.perf_counter()
                with self.limiter.acquire_sync():
                    self.stats.waited(time.perf_counter() - started)
                    slot.run()
        finally:
            ATTEMPT.reset(token)
        return None if slot.error is None else self.retry_delay(slot)

    async def aattempt(self, slot: Slot[Any]) -> float | None:
        """Try the slot's (async) call once, in this task, cancelled after ``timeout``."""
        if slot.attempts == 0:
            slot.first_started = self.clock()
        slot.attempts += 1
        token = ATTEMPT.set((self, slot))
        try:
            if self.limiter is None:
                await self._arun(slot)
            else:
                started = time.perf_counter()
                async with self.limiter.acquire_async():
                    self.stats.waited(time.perf_counter() - started)
                    await self._arun(slot)
        finally:
            ATTEMPT.reset(token)
        return None if slot.error is None else self.retry_delay(slot)

    async def _arun(self, slot: Slot[Any]) -> None:
        try:
            if self.timeout is None:
                slot.value = await slot.fn(*slot.args, **slot.kwargs)
                return
            # A little past the timeout: an HTTP request's own (capped) timeout fires first,
            # so the loop sees the library's exception, as it would have; this catches the rest.
            limit = self.timeout * 1.1 + 0.1
            with anyio.move_on_after(limit) as scope:
                slot.value = await slot.fn(*slot.args, **slot.kwargs)
            if scope.cancelled_caught:
                self.stats.add("timeouts")
                slot.error = TimeoutError(f"the call did not finish within {self.timeout:g} s (timeout)")
        except Exception as exc:  # kept, re-raised where the loop consumes the call
            slot.error = exc

    def retry_delay(self, slot: Slot[Any]) -> float | None:
        """After a failed attempt: seconds until the next one, or None (the failure is final)."""
        error = slot.error
        if error is None or not self.retry.enabled:
            return None
        failure = classify(error, extra_types=self._extra_types(), patterns=self.retry.patterns)
        if failure is None:
            return None  # permanent: the sequential loop would have seen it too
        if slot.bypassed:
            self._final(slot, failure, "its host's circuit is open")
            return None
        if failure.kind == "transient" and slot.attempts >= self.retry.attempts:
            self.stats.add("gave_up")
            self._final(slot, failure, f"{slot.attempts} attempts failed (retry attempts = {self.retry.attempts})")
            return None
        delay = self.backoff.delay(slot.attempts, failure, self.rng)
        if self.backoff.gives_up(self.clock() - slot.first_started, delay):
            self.stats.add("gave_up")
            self._final(slot, failure, f"the retry deadline of {self.backoff.deadline:g} s passed")
            return None
        if slot.attempts == 1:
            self.stats.add("retried")
        self.stats.add("retries")
        _discard(error)
        return delay

    def _final(self, slot: Slot[Any], failure: Failure, why: str) -> None:
        if failure.kind == "rate_limited":
            self.stats.add("lost")
        self._give_up_lines += 1
        if self._give_up_lines <= _GIVE_UP_LINES:
            event(
                "WARNING",
                "retry_gave_up",
                f"{why}: the loop gets the call's last exception, as it would have without us",
                target=self.name,
                attempts=slot.attempts,
                failure=failure.reason,
                host=slot.host or "-",
            )

    def _extra_types(self) -> tuple[type[BaseException], ...]:
        """The configured ``on`` types whose module is loaded (before that, none can be raised)."""
        found: list[type[BaseException]] = []
        for name, cls in self._types.items():
            if cls is None:
                module_name, _, qualname = name.partition(":")
                module = sys.modules.get(module_name)
                if module is None:
                    continue
                value: Any = module
                try:
                    for part in qualname.split("."):
                        value = getattr(value, part)
                except AttributeError:
                    continue
                if not (isinstance(value, type) and issubclass(value, BaseException)):
                    continue
                cls = self._types[name] = value
            found.append(cls)
        return tuple(found)

    # -- calls the loop makes itself -----------------------------------------------------------
    def call(self, fn: Callable[..., R], args: tuple[Any, ...], kwargs: dict[str, Any]) -> R:
        """A per-item call the loop makes directly, with the same retries, in its own thread."""
        slot: Slot[R] = Slot(fn, args, kwargs)
        while (delay := self.attempt(slot)) is not None:
            slot.rearm()
            _pause.wait(delay)
        return slot.outcome()

    async def acall(self, fn: Callable[..., Awaitable[R]], args: tuple[Any, ...], kwargs: dict[str, Any]) -> R:
        """The async twin of :meth:`call`, in the loop's own task."""
        slot: Slot[R] = Slot(fn, args, kwargs)
        while (delay := await self.aattempt(slot)) is not None:
            slot.rearm()
            await anyio.sleep(delay)
        return slot.outcome()

    # -- each HTTP request of an attempt (from ``_http``) ----------------------------------------
    def request_sync(self, slot: Slot[Any], host: str, port: int | None, send: Callable[[], R]) -> R:
        """Send one request of ``slot``'s attempt to ``host`` within its limits."""
        state = self.hosts.get(host, port)
        slot.host = state.name
        admitted = state.circuit.admit()
        if admitted == "open":
            slot.bypassed = True
            return send()
        started = time.perf_counter()
        with state.limiter.acquire_sync() as number:
            self.stats.waited(time.perf_counter() - started)
            self.stats.sent()
            try:
                response = send()
            except BaseException as exc:
                self._raised(state, exc, admitted == "trial")
                raise
            finally:
                self.stats.answered()
            self._answered(state, response, admitted == "trial", number)
        return response

    async def request_async(self, slot: Slot[Any], host: str, port: int | None, send: Callable[[], Awaitable[R]]) -> R:
        """The async twin of :meth:`request_sync`."""
        state = self.hosts.get(host, port)
        slot.host = state.name
        admitted = state.circuit.admit()
        if admitted == "open":
            slot.bypassed = True
            return await send()
        started = time.perf_counter()
        async with state.limiter.acquire_async() as number:
            self.stats.waited(time.perf_counter() - started)
            self.stats.sent()
            try:
                response = await send()
            except BaseException as exc:
                self._raised(state, exc, admitted == "trial")
                raise
            finally:
                self.stats.answered()
            self._answered(state, response, admitted == "trial", number)
        return response

    def _answered(self, state: HostState, response: Any, trial: bool, number: int) -> None:
        status = getattr(response, "status_code", None) or getattr(response, "status", None)
        if not isinstance(status, int):
            return
        if status in (429, 503):
            self.stats.add("http_429" if status == 429 else "http_503")
            state.limiter.on_overload(status)
            headers = getattr(response, "headers", None)
            header = headers.get("Retry-After") if headers is not None else None
            wait = retry_after(header) if isinstance(header, str) else None
            if wait:
                # The whole host backs off together, until a later request is answered.
                state.limiter.pause_for(wait, refused=number)
            if status == 503:
                state.circuit.record(False, trial)
            elif trial:
                state.circuit.record(True, trial)
        elif status >= 500:
            state.circuit.record(False, trial)
        else:
            state.limiter.on_success(number)
            state.circuit.record(True, trial)

    def _raised(self, state: HostState, exc: BaseException, trial: bool) -> None:
        if not isinstance(exc, Exception):  # cancelled: no answer either way
            if trial:
                state.circuit.give_back_trial()
            return
        if _is_timeout(exc):
            self.stats.add("timeouts")
            state.limiter.on_overload(None)
        failure = classify(exc)
        if failure is not None:
            state.circuit.record(False, trial)
        elif trial:
            state.circuit.record(True, trial)  # answered, the error is ours or the app's


def _discard(error: BaseException) -> None:
    """Close what a dropped failure holds: urllib's HTTPError is the open response itself."""
    if isinstance(error, urllib.error.HTTPError):
        try:
            error.close()
        except Exception:
            pass


_pause = threading.Event()  # never set: .wait(seconds) sleeps without time.sleep (which may be patched)


def statistics_lines(hosts: dict[str, tuple[HostLimiterStatistics, str]]) -> list[str]:
    """One line per host, for ``sched-accel status`` and the run report."""
    lines = []
    for name, (stats, circuit) in sorted(hosts.items()):
        limit = "unbounded" if stats.current_limit is None else str(stats.current_limit)
        lines.append(
            f"{name}: requests={stats.requests} http_429={stats.rate_limited} overloads={stats.overloads} "
            f"peak_concurrency={stats.peak_in_flight} limit_now={limit} waited={stats.wait_seconds:.3f}s circuit={circuit}"
        )
    return lines
