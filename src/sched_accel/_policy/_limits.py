"""Per-upstream-host limits, shared by every target in the process.

A :class:`HostLimiter` is asked before each HTTP request to one host. It admits a request
when all of these allow it: no host-wide pause (a ``Retry-After`` seen by anyone), a free
in-flight place under the adaptive (AIMD) concurrency limit, and a token from the bucket
(``per_second`` declared or told by the host, capacity ``burst``). First come, first served.

The decisions are pure and never block: :meth:`HostLimiter.try_acquire` says "go" (0.0) or
how long to wait. Threads and anyio tasks drive the same plan, :meth:`HostLimiter.admission`;
only how a waiter sleeps and is woken differs, in ``_drive``. Which limiter a request asks
is decided in ``_hosts`` (one per host, shared by every target of the process).
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager

import anyio.lowlevel

from ._drive import Plan, run_async, run_sync
from ._limit import HostLimit
from ._stats import HostLimiterStatistics

__all__ = ["HostLimit", "HostLimiter", "Ticket"]

_EPSILON = 1e-9  # float slack when a token is "just" refilled
#: A 429 is taken as the host's overload (halve the concurrency, and pause the whole host
#: for its Retry-After) only when refusals are at least 3/4 of the host's last RECENT answers
#: (and at least 2). Exceeding a host-wide limit refuses nearly everything at once; a 429
#: among successes (a per-key limit, a share of requests refused whatever the load) makes
#: only its own request wait. Measured: a host refusing 25% of requests at random, paused
#: and halved on each 429, ran a 0.3 s job in 48 s.
RECENT = 8


class Ticket:
    """A place in a host's line; ``wake`` is called (from any thread) when it may try again."""

    __slots__ = ("admitted", "number", "refused", "since", "wake")

    def __init__(self, wake: Callable[[], None], since: float) -> None:
        self.wake = wake
        self.since = since
        self.refused = False
        self.admitted = False
        self.number = 0  # once admitted: the how-manieth request to the host it is


class HostLimiter:
    """Concurrency bound, token bucket, host-wide pause and AIMD for one host; thread-safe."""

    def __init__(self, host: str, limit: HostLimit, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.host = host
        self.limit = limit
        self.clock = clock
        self._lock = threading.Lock()
        self._line: deque[Ticket] = deque()
        self._in_flight = 0
        self._rate, self._burst = limit.per_second, limit.burst  # declared, or learned (learn_rate)
        self.told: float | None = None
        self._tokens = float(limit.burst)
        self._refilled_at = clock()
        self._paused_until = -math.inf
        #: The pauses asked for: (number of the refused request, until when). A refusal is
        #: superseded when a request sent after it is answered without one.
        self._refusals: list[tuple[float, float]] = []
        self._lifted = 0
        self._limit = limit.concurrency  # AIMD's current limit, within [1, concurrency]
        self._lowest = limit.concurrency
        self._successes = 0  # since the limit last changed
        self._recent: deque[bool] = deque(maxlen=RECENT)  # the last answers: True for a refusal
        self._stale = 0  # releases still due from requests sent before the last decrease
        self._requests = self._waits = self._overloads = self._rate_limited = self._peak = 0
        self._wait_seconds = 0.0

    # -- the core: pure decisions under the lock, never blocking -------------------------

    def try_acquire(self, now: float | None = None, ticket: Ticket | None = None) -> float:
        """0.0 if the request may go now (a token taken, a place held), else seconds to wait.

        ``math.inf`` means "until woken": no place is free, or others are ahead in line.
        Without a ``ticket`` the caller does not queue, and gets in only if nobody waits.
        """
        wake: Callable[[], None] | None = None
        with self._lock:
            now = self.clock() if now is None else now
            delay = self._delay(now, ticket)
            if delay > 0:
                if ticket is not None:
                    ticket.refused = True
                return delay
            self._take()
            if ticket is not None:
                ticket.number = self._requests
                ticket.admitted = True
                self._line.popleft()
                if ticket.refused:
                    self._waits += 1
                    self._wait_seconds += max(0.0, now - ticket.since)
                wake = self._head_wake()
        if wake is not None:
            wake()
        return 0.0

    def admit_now(self) -> int:
        """The fast path: admit at once if nobody waits and nothing holds us; the request's
        number, or 0 (then take a place in line)."""
        with self._lock:
            if self._line:
                return 0
            limit = self._limit
            if limit is not None and self._in_flight >= limit:
                return 0
            if self._rate is not None or self._paused_until > -math.inf:
                if self._delay(self.clock(), None) > 0:
                    return 0
                if self._rate is not None:
                    self._tokens -= 1
            self._in_flight += 1
            self._requests += 1
            if self._in_flight > self._peak:
                self._peak = self._in_flight
            return self._requests

    def _take(self) -> None:
        """Admit one request (under the lock): a token, a place, its number."""
        if self._rate is not None:
            self._tokens -= 1
        self._in_flight += 1
        self._requests += 1
        self._peak = max(self._peak, self._in_flight)

    def _delay(self, now: float, ticket: Ticket | None) -> float:
        if self._line and self._line[0] is not ticket:
            return math.inf
        if self._limit is not None and self._in_flight >= self._limit:
            return math.inf
        delay = self._paused_until - now
        rate = self._rate
        if rate is not None:
            self._tokens = min(float(self._burst), self._tokens + max(0.0, now - self._refilled_at) * rate)
            self._refilled_at = max(self._refilled_at, now)
            if self._tokens < 1 - _EPSILON:
                delay = max(delay, (1 - self._tokens) / rate)
        return max(0.0, delay)

    def _head_wake(self) -> Callable[[], None] | None:
        return self._line[0].wake if self._line else None

    def join(self, wake: Callable[[], None] = lambda: None, now: float | None = None) -> Ticket:
        """Take a place at the end of the line."""
        with self._lock:
            ticket = Ticket(wake, self.clock() if now is None else now)
            self._line.append(ticket)
            return ticket

    def leave(self, ticket: Ticket) -> None:
        """Give up a place in line without being admitted (the waiter was cancelled)."""
        with self._lock:
            if ticket.admitted or ticket not in self._line:
                return
            was_head = self._line[0] is ticket
            self._line.remove(ticket)
            wake = self._head_wake() if was_head else None
        if wake is not None:
            wake()

    def release(self) -> None:
        """The request admitted earlier is done: free its place, wake the first in line."""
        with self._lock:
            if self._in_flight == 0:
                raise RuntimeError(f"release() for {self.host} without a matching acquire")
            self._in_flight -= 1
            if self._stale:
                self._stale -= 1
            if not self._line:
                return
            wake = self._line[0].wake
        wake()

    def pause_until(self, deadline: float, refused: int | None = None) -> None:
        """Hold all dispatch to the host until ``deadline`` (on :attr:`clock`).

        ``refused`` is the number of the request whose answer asked for the pause (its ticket's
        ``number``). Such a pause is taken only while refusals dominate the recent answers
        (see ``RECENT``), and it is superseded once a request sent after the refused one is
        answered without refusal (see :meth:`on_success`). Without ``refused``, the pause holds
        until ``deadline``.
        """
        if not -math.inf < deadline < math.inf:
            raise ValueError(f"deadline must be a finite time on the limiter's clock; got {deadline!r}")
        with self._lock:
            if refused is not None and not self._refusing():
                return
            now = self.clock()
            self._refusals = [r for r in self._refusals if r[1] > now]
            self._refusals.append((math.inf if refused is None else refused, deadline))
            self._paused_until = max(self._paused_until, deadline)

    def _refusing(self) -> bool:
        refusals = sum(self._recent)
        return refusals >= 2 and 4 * refusals >= 3 * len(self._recent)

    def pause_for(self, seconds: float, refused: int | None = None) -> None:
        """``pause_until(clock() + seconds)``, for a ``Retry-After`` of ``seconds``."""
        if not 0 <= seconds < math.inf:
            raise ValueError(f"seconds must be a finite number >= 0; got {seconds!r}")
        self.pause_until(self.clock() + seconds, refused)

    def learn_rate(self, per_second: float) -> None:
        """The host said its rate (its answers' RateLimit fields, or the last run's): pace to
        it, a hair inside, one at a time; a declared rate always wins. ``told`` keeps it."""
        with self._lock:
            if self.limit.per_second is None and 0 < per_second < math.inf:
                if self._rate is None:
                    self._tokens, self._refilled_at = 1.0, self.clock()
                self._rate, self._burst, self.told = per_second * 0.98, 1, per_second

    # -- AIMD -----------------------------------------------------------------------------

    @property
    def current_limit(self) -> int | None:
        """The adaptive concurrency limit now; ``None`` when the host has no concurrency bound."""
        return self._limit

    def on_success(self, number: int | None = None) -> None:
        """Additive increase: +1 per ``current_limit`` successes, up to the configured bound.

        ``number`` is the succeeding request's ticket number. A request sent after one whose
        refusal paused the host, and answered without refusal, proves that the host was not
        refusing everyone then (a per-key limit, or a share of requests refused whatever the
        load): that refusal's pause is lifted; the pauses asked by later refusals remain.
        Under a host-wide limit every later request is refused too, and the pause holds.
        """
        wake: Callable[[], None] | None = None
        if number is not None and self._refusals:
            with self._lock:
                now = self.clock()
                kept = [r for r in self._refusals if r[0] > number and r[1] > now]
                if len(kept) < len(self._refusals):
                    until = max((r[1] for r in kept), default=-math.inf)
                    if until < self._paused_until and self._paused_until > now:
                        self._lifted += 1
                        wake = self._head_wake()
                    self._refusals, self._paused_until = kept, until
            if wake is not None:
                wake()
                wake = None
        with self._lock:
            self._recent.append(False)
            ceiling = self.limit.concurrency
            if self._limit is None or ceiling is None or self._limit >= ceiling:
                return
            self._successes += 1
            if self._successes >= self._limit:
                self._limit += 1
                self._successes = 0
                wake = self._head_wake()
        if wake is not None:
            wake()

    def on_overload(self, status: int | None = None) -> None:
        """Multiplicative decrease (halve, at least 1) on a 503, a timeout (``status=None``), or a
        429 while refusals dominate the recent answers (see ``RECENT``).

        Answers to requests already in flight at a decrease echo the same overload, so the
        limit halves at most once per window of those requests.
        """
        with self._lock:
            self._overloads += 1
            if status in (429, 503):
                self._recent.append(True)
            if status == 429:
                self._rate_limited += 1
            if self._limit is None or self._stale > 0 or not self.limit.adaptive:
                return
            if status == 429 and not self._refusing():
                return  # a refusal among successes: not the host's overload
            self._limit = max(1, self._limit // 2)
            self._lowest = min(self._limit, self._lowest if self._lowest is not None else self._limit)
            self._successes = 0
            self._stale = self._in_flight

    def statistics(self) -> HostLimiterStatistics:
        """A consistent snapshot of the counters."""
        with self._lock:
            return HostLimiterStatistics(
                host=self.host,
                requests=self._requests,
                waits=self._waits,
                wait_seconds=self._wait_seconds,
                overloads=self._overloads,
                rate_limited=self._rate_limited,
                in_flight=self._in_flight,
                peak_in_flight=self._peak,
                queued=len(self._line),
                current_limit=self._limit,
                lowest_limit=self._lowest,
                pauses_lifted=self._lifted,
            )

    # -- waiting: one plan, driven by a thread or a task (``_drive``) -------------------

    def admission(self) -> Plan[int]:
        """The plan of one request's admission; its value is the request's number.

        Admitted at once when nobody waits and nothing holds the host (no line joined);
        else it joins the line and waits its turn. Closed early (the waiter was cancelled),
        it gives up its place. The caller calls :meth:`release` once the request is done.
        """
        number = self.admit_now()
        if number:
            return number
        ticket = self.join()
        try:
            yield ticket
            while (delay := self.try_acquire(ticket=ticket)) > 0:
                yield delay
        finally:
            if not ticket.admitted:
                self.leave(ticket)
        return ticket.number

    @contextmanager
    def acquire_sync(self) -> Iterator[int]:
        """``with limiter.acquire_sync() as number:`` around one request, from a thread."""
        number = run_sync(self.admission())
        try:
            yield number
        finally:
            self.release()

    @asynccontextmanager
    async def acquire_async(self) -> AsyncIterator[int]:
        """``async with limiter.acquire_async() as number:`` around one request, from an anyio task."""
        await anyio.lowlevel.checkpoint_if_cancelled()
        number = await run_async(self.admission(), _never)
        try:
            yield number
        finally:
            self.release()


async def _never() -> None:  # pragma: no cover - an admission plan never asks to act
    raise AssertionError("an admission has no action")
