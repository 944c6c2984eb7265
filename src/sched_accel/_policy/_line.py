"""A host's line: who may send the next request to it, and when (the mechanics of ``_limiter``).

A request is admitted when all of these allow it: no host-wide pause, a free in-flight
place under the current concurrency limit, and a token from the bucket (its rate and
capacity). First come, first served. The decisions are pure and never block:
:meth:`Line.try_acquire` says "go" (0.0) or how long to wait. Threads and anyio tasks drive
the same plan, :meth:`Line.admission`; only how a waiter sleeps and is woken differs, in
``_drive``. What sets the pause, the limit and the rate (the host's answers) is
:class:`~._limiter.HostLimiter`, built on this.
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import TYPE_CHECKING

import anyio.lowlevel

from ._drive import Plan, run_async, run_sync
from ._host_limit import HostLimit
from ._learn import RateLearner

if TYPE_CHECKING:
    from ._shared import SharedRates

__all__ = ["Line", "Ticket"]

_EPSILON = 1e-9  # float slack when a token is "just" refilled
RECHECK = 0.05  #: seconds at most between a waiting request's looks at its turn for a token
#: Seconds at most a shared admission's wait is slept before asking again.
PAUSE_SLICE = 0.25


class Ticket:
    """A place in a host's line; ``wake`` is called (from any thread) when it may try again."""

    __slots__ = ("admitted", "number", "refused", "since", "wake")

    def __init__(self, wake: Callable[[], None], since: float) -> None:
        self.wake = wake
        self.since = since
        self.refused = False
        self.admitted = False
        self.number = 0  # once admitted: the how-manieth request to the host it is


class Line:
    """The line, the places in flight, the token bucket and the pause of one host; thread-safe."""

    def __init__(self, host: str, limit: HostLimit, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.host = host
        self.limit = limit
        self.clock = clock
        self._lock = threading.Lock()
        self._line: deque[Ticket] = deque()
        self._in_flight = 0
        self._rate, self._burst = limit.per_second, limit.burst  # declared, told or learned
        #: Paces a host that refuses without telling its rate (``_learn``).
        self.learner = RateLearner()
        self._tokens = float(limit.burst)
        self._refilled_at = clock()
        self._paused_until = -math.inf
        self._wire: set[int] = set()  # the requests waiting at the wire for their token, by number
        self._sent: dict[int, float] = {}  # when each paced request in flight went out, by number
        self._out: dict[int, float] = {}  # when each request in flight went out, paced or not, by number
        #: The slowest rate a told or learned rate is paced at (0.0: none); set by
        #: :class:`~._limiter.HostLimiter` from the latency of the host's answers. Never a declared one.
        self._floor = 0.0
        self._floor_stale = False  # answers came in while no rate was paced: work it out when one is
        #: The rate shared with the app's other processes (``_shared``), or None: this process's own.
        self.shared: SharedRates | None = None
        self._divide = 1  # the shared backend down: the rate (and shared places) split with the processes last seen
        self._alone = False  # the shared rate's backend did not answer: the rate is paced here
        #: Whether the host's declared concurrency is shared with the app's other processes
        #: (leases on :attr:`shared`; set by ``_hosts``); the leases held, by request number.
        self.places_shared = False
        self._leases: dict[int, str] = {}
        self._limit = limit.concurrency  # the current concurrency limit (AIMD's), within [1, concurrency]
        self._stale = 0  # releases still due from requests sent before AIMD's last decrease
        self._requests = self._waits = self._peak = 0
        self._wait_seconds = 0.0

    # -- the core: pure decisions under the lock, never blocking -------------------------

    def try_acquire(self, now: float | None = None, ticket: Ticket | None = None, token: bool = True) -> float:
        """0.0 if the request may go now (a token taken, a place held), else seconds to wait.

        ``math.inf`` means "until woken": no place is free, or others are ahead in line.
        Without a ``ticket`` the caller does not queue, and gets in only if nobody waits.
        ``token=False``: the rate's token is taken later, nearer the wire (:meth:`take_token`).
        """
        wake: Callable[[], None] | None = None
        with self._lock:
            now = self.clock() if now is None else now
            delay = self._delay(now, ticket, token)
            if delay > 0:
                if ticket is not None:
                    ticket.refused = True
                return delay
            self._take(token)
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

    def admit_now(self, token: bool = True) -> int:
        """The fast path: admit at once if nobody waits and nothing holds us; the request's
        number, or 0 (then take a place in line)."""
        with self._lock:
            if self._line:
                return 0
            limit = self._places()
            if limit is not None and self._in_flight >= limit:
                return 0
            if self._rate is not None or self._paused_until > -math.inf:
                if self._delay(self.clock(), None, token) > 0:
                    return 0
                if self._rate is not None and token:
                    self._tokens -= 1
            self._in_flight += 1
            self._requests += 1
            if self._in_flight > self._peak:
                self._peak = self._in_flight
            if token and self._rate is not None:
                self._went(self._requests, self.clock())
            else:
                self._left(self._requests, self.clock())
            return self._requests

    def _take(self, token: bool = True) -> None:
        """Admit one request (under the lock): a token, a place, its number."""
        if self._rate is not None and token:
            self._tokens -= 1
        self._in_flight += 1
        self._requests += 1
        if token and self._rate is not None:
            self._went(self._requests, self.clock())
        else:
            self._left(self._requests, self.clock())
        self._peak = max(self._peak, self._in_flight)

    def _delay(self, now: float, ticket: Ticket | None, token: bool = True) -> float:
        if self._line and self._line[0] is not ticket:
            return math.inf
        limit = self._places()
        if limit is not None and self._in_flight >= limit:
            return math.inf
        delay = self._paused_until - now
        return max(0.0, delay, self._token_delay(now) if token else 0.0)

    def _places(self) -> int | None:
        """The concurrency limit here: AIMD's, split with the processes last seen while the
        backend sharing the host's places is down."""
        limit = self._limit
        if limit is not None and self._divide > 1 and self.places_shared:
            return max(1, limit // self._divide)
        return limit

    def _paced(self) -> float | None:
        """The rate requests are paced at (under the lock): the declared one as it is; a told
        or learned one (split with the processes last seen) never below :attr:`_floor`."""
        rate = self._rate
        if rate is None:
            return None
        rate /= self._divide
        if self.limit.per_second is not None:
            return rate
        if self._floor_stale:
            self._set_floor()
        return max(rate, self._floor)

    def _set_floor(self) -> None:
        """Work out :attr:`_floor` (under the lock): :class:`~._limiter.HostLimiter`'s."""
        self._floor_stale = False

    def _token_delay(self, now: float) -> float:
        """Seconds until the bucket has a token (under the lock), refilled to ``now``."""
        delay = 0.0
        if self.learner.learning:
            self._rate = self.learner.rate(now)
        rate = self._paced()
        if rate is not None:
            if self._tokens < self._burst:  # (more than a burst: what the host said is left, ``spend``)
                # A told or learned rate (a quota per window, not a spacing the host declared)
                # keeps half a token of slack: a waiter woken a little late does not lose that
                # time (1-2 ms a request made 19.6/s into 19.2/s), and two requests still never
                # go at once. A declared burst is taken as exact.
                cap = self._burst + (0.5 if self.limit.per_second is None else 0.0)
                self._tokens = min(cap, self._tokens + max(0.0, now - self._refilled_at) * rate)
            self._refilled_at = max(self._refilled_at, now)
            if self._tokens < 1 - _EPSILON:
                delay = (1 - self._tokens) / rate
        return delay

    def take_token(self, number: int = 0) -> float:
        """For request ``number``, admitted with ``token=False``, as it goes on the wire: 0.0
        when its token is taken, else about how long until its turn. Tokens go in the order
        requests were admitted (the loop waits for its items in order)."""
        with self._lock:
            delay = self._token_delay(self.clock())
            if self._rate is None:
                self._wire.discard(number)
                return 0.0
            ahead = sum(1 for waiting in self._wire if waiting < number)
            if delay <= 0 and not ahead:
                self._tokens -= 1
                self._wire.discard(number)
                self._went(number, self.clock())
                return 0.0
            self._wire.add(number)
            wait = delay + ahead / (self._paced() or self._rate)
            # Asked again at least every RECHECK s when others are ahead or the rate is told or
            # learned: a waiter asleep on a slower rate (or a wait computed with many ahead,
            # whom a cancel removed, or before an answer raised the floor) would hold the
            # whole line behind it.
            return min(wait, RECHECK) if ahead or self.limit.per_second is None else wait

    def charge(self) -> None:
        """Take the token of a request already sent (it may leave the bucket below zero)."""
        with self._lock:
            self._token_delay(self.clock())
            if self._rate is not None:
                self._tokens -= 1

    def _went(self, number: int, now: float) -> None:
        """Request ``number`` goes out now, paced (under the lock); kept until answered."""
        sent = self._sent
        sent[number] = now
        if len(sent) > 4096:  # requests that raised are never answered: the oldest go
            del sent[next(iter(sent))]
        self._left(number, now)

    def _left(self, number: int, now: float) -> None:
        """Request ``number`` goes out now, paced or not (under the lock): its answer's
        latency is measured from here (:meth:`~._limiter.HostLimiter.took`)."""
        out = self._out
        out[number] = now
        if len(out) > 4096:  # released without a number (``acquire_sync``): the oldest go
            del out[next(iter(out))]

    def sent(self, number: int) -> float | None:
        """When paced request ``number`` went out (forgotten once asked: its answer is in);
        None when it was not paced (nothing waited for: admission is when it went)."""
        return self._sent.pop(number, None)

    def unpaced(self) -> bool:
        """Whether nothing paces this host's requests now: no rate (declared, told, learned or
        shared), no concurrency shared with other processes, no pause. One request at a time,
        as the plain loop sends them, then needs no turn (``Policy.request``'s plain path)."""
        return self._rate is None and not self.places_shared and self._paused_until <= self.clock()

    @property
    def shares(self) -> bool:
        """Whether its rate is admitted by the app's shared backend: a declared one. (A told
        rate is not: each process's answers say what the host has left for all of them.)"""
        return self.shared is not None and self.limit.per_second is not None

    def token(self, number: int = 0) -> Plan[None]:
        """The plan of :meth:`take_token`: wait for the token's turn, then take it (from the
        shared backend when :attr:`shares`; locally while it cannot answer, asking it again
        after each wait: once it answers, a request waiting here is paced there, never by
        the local bucket at the whole rate, which the first answer gives back to this process)."""
        shared, rate = self.shared, self._rate
        try:
            while True:
                if shared is not None and rate is not None and self.shares:
                    while (wait := shared.admit(self.host, rate, self._burst)) is not None:
                        self._divide, self._alone = 1, False
                        if wait <= 0:
                            return
                        yield min(wait, PAUSE_SLICE)  # a pause may be lifted early: asked again within a slice
                    self._pace_alone(shared.live)
                if (delay := self.take_token(number)) <= 0:
                    return
                yield delay
        finally:
            with self._lock:
                self._wire.discard(number)  # cancelled while waiting, or admitted by the backend: out of the token line

    def _pace_alone(self, live: int) -> None:
        """The shared rate's backend cannot answer: pace here at the rate / ``live``, starting
        at a random point of the local interval. Processes that lost the backend together
        otherwise send in step: 4 did, each with its token in hand, and a host with a burst
        of 2 refused half of their requests until the backend was back."""
        with self._lock:
            self._divide = live
            if not self._alone:
                self._alone = True
                self._tokens = min(self._tokens, random.random())
                self._refilled_at = self.clock()

    def look_shared(self) -> None:
        """Hold the pauses the app's other processes gave the backend (``_limiter``)."""

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

    def release(self, number: int = 0) -> None:
        """The request admitted earlier (number ``number``) is done: free its place (and its
        shared one), wake the first in line."""
        if self._leases and (lease := self._leases.pop(number, None)) is not None and self.shared is not None:
            self.shared.release(self.host, lease)
        with self._lock:
            if self._in_flight == 0:
                raise RuntimeError(f"release() for {self.host} without a matching acquire")
            self._out.pop(number, None)
            self._in_flight -= 1
            if self._stale:
                self._stale -= 1
            if not self._line:
                return
            wake = self._line[0].wake
        wake()

    # -- waiting: one plan, driven by a thread or a task (``_drive``) -------------------

    def admission(self, token: bool = True) -> Plan[int]:
        """The plan of one request's admission; its value is the request's number.

        Admitted at once when nobody waits and nothing holds the host (no line joined);
        else it joins the line and waits its turn. Closed early (the waiter was cancelled),
        it gives up its place. The caller calls :meth:`release` once the request is done.
        ``token=False``: the place only; the rate's token is taken later (:meth:`token`).
        """
        number = self.admit_now(token)
        if number:
            return number
        ticket = self.join()
        try:
            yield ticket
            while (delay := self.try_acquire(ticket=ticket, token=token)) > 0:
                yield delay
                if self.shared is not None:
                    self.look_shared()
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
