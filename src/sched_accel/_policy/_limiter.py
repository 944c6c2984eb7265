"""Per-upstream-host limits, shared by every target in the process.

A :class:`HostLimiter` is asked before each HTTP request to one host. It admits a request
when all of these allow it (the line, ``_line``): no host-wide pause (a ``Retry-After``
seen by anyone), a free in-flight place under the adaptive (AIMD) concurrency limit, and a
token from the bucket (``per_second`` declared, told by the host's answers, or learned
from its refusals, ``_learn``; capacity ``burst``). First come, first served.

This module is what the host's answers teach the line: the pauses, the AIMD limit, the
rate told or learned, and how slow that rate may be. Which limiter a request asks is
decided in ``_hosts`` (one per host, shared by every target of the process).

**A rate the host told or we learned never holds the run for long** (issue 24): the
sequential loop sends one request per answer, so pacing a host slower than one request per
latency of its answers only makes the run slower than the loop it replaces. A told or
learned rate is paced at no slower than one request per ``spacing`` times the median
latency of the host's last :data:`LATENCIES` answers (refusals aside), where ``spacing`` is

- :data:`TOLD_SPACING` (1) for a told rate the host has not *enforced*: no answer of 429
  from it in this process, and none kept from a run in which it did (``_state._rates``).
  Its fields alone, however often they say it, cost at most the sequential loop's pace (a
  hostile ``RateLimit-Policy`` of 1 request per 5 s on answers served in 20 ms is paced at
  50 a second);
- :data:`ENFORCED_SPACING` (10) for a told rate the host has enforced, and for a rate
  learned from its refusals: a host that refuses is followed further, but a single 429
  beside a lie still holds the run to at most 10 times the sequential loop's pace.

A declared ``per_second`` is the owner's and is never floored. Before any answer is in (a
rate kept from the last run), there is no floor yet; the first answer sets it.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable

from ._drive import Plan
from ._host_limit import HostLimit
from ._line import PAUSE_SLICE, Line, Ticket
from ._stats import HostLimiterStatistics

__all__ = ["HostLimit", "HostLimiter", "Ticket"]

#: A 429 is taken as the host's overload (halve the concurrency, pause the whole host for its
#: Retry-After, learn its rate) only when refusals are at least 3/4 (and at least 2) of the
#: RECENT requests sent up to the refused one, in the order they were sent: those not yet
#: answered count as not refused. Exceeding a host-wide limit refuses nearly everything at
#: once; a 429 among successes (a per-key limit, a share of requests refused whatever the
#: load) makes only its own request wait. Measured: a host refusing 25% of requests at
#: random, paused and halved on each 429, ran a 0.3 s job in 48 s. In the order answers come
#: in, a refusal (answered in 2 ms) overtakes the successes sent before it (300 ms): the
#: first answers of each wave were all refusals, and that host ran at half its rate.
RECENT = 8
#: Seconds between a request's asks for one of the host's shared places, first and at most
#: (doubling): the backend cannot wake a waiter, so a place freed elsewhere is polled for.
PLACE_POLL = (0.002, 0.025)
#: Seconds of a shared pause beyond what is left of ours that a lift may still end (the
#: backend's clock and the round trip to it are a little off ours).
LIFT_SLACK = 0.05
#: Answers whose latency (their median) sets how slow a told or learned rate may pace.
LATENCIES = 16
#: A told rate the host has not enforced spaces requests at most this many latencies apart.
TOLD_SPACING = 1
#: One it enforced (a 429), or a rate learned from refusals: at most this many.
ENFORCED_SPACING = 10


class HostLimiter(Line):
    """Concurrency bound, token bucket, host-wide pause and AIMD for one host; thread-safe."""

    def __init__(self, host: str, limit: HostLimit, *, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(host, limit, clock=clock)
        self.told: float | None = None
        #: The host answered 429 in this process: a limit it enforces (its told rate is kept).
        self.enforced = False
        #: The told rate was kept by an earlier run in which the host enforced it.
        self.vouched = False
        self._latencies: deque[float] = deque(maxlen=LATENCIES)  # of its last answers, refusals aside
        #: The pauses asked for: (number of the refused request, until when). A refusal is
        #: superseded when a request sent after it is answered without one.
        self._refusals: list[tuple[float, float]] = []
        self._lifted = 0
        self._lowest = limit.concurrency
        self._successes = 0  # since the limit last changed
        self._recent: deque[bool] = deque(maxlen=RECENT)  # the last answers: True for a refusal
        self._refused: deque[int] = deque(maxlen=4 * RECENT)  # the numbers of the last refused requests
        self._overloads = self._rate_limited = 0
        #: Answers by status class (``2xx`` ... ``5xx``, ``error``) and source (``ahead``, ``live``),
        #: counted for the metrics (``_metrics``, through ``Hosts.answers``).
        self._answers: dict[tuple[str, str], int] = {}

    def pause_until(self, deadline: float, refused: int | None = None) -> bool:
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
            if refused is not None and not self._refusing(int(refused)):
                return False
            now = self.clock()
            self._refusals = [r for r in self._refusals if r[1] > now]
            self._refusals.append((math.inf if refused is None else refused, deadline))
            self._paused_until = max(self._paused_until, deadline)
            return True

    def _refusing(self, number: int | None = None) -> bool:
        """Whether refusals dominate the requests sent up to ``number`` (see ``RECENT``);
        without a number, the last answers as they came."""
        if number is None:
            refusals, size = sum(self._recent), len(self._recent)
        else:
            refusals = sum(1 for k in self._refused if number - RECENT < k <= number)
            size = min(RECENT, number)
        return refusals >= 2 and 4 * refusals >= 3 * size

    def pause_for(self, seconds: float, refused: int | None = None) -> bool:
        """``pause_until(clock() + seconds)``, for a ``Retry-After`` of ``seconds``; whether
        the pause was taken (and, with a shared backend, given to every process)."""
        if not 0 <= seconds < math.inf:
            raise ValueError(f"seconds must be a finite number >= 0; got {seconds!r}")
        taken = self.pause_until(self.clock() + seconds, refused)
        if taken and self.shared is not None:
            self.shared.pause(self.host, seconds)
        return taken

    def look_shared(self) -> None:
        """Take a pause another process gave the backend (``_shared``) as if ours, in slices
        of at most :data:`~._line.PAUSE_SLICE` s: looked at again as each ends, so a pause lifted by the
        process that asked for it is lifted here too. (A host whose rate is shared: its
        admission on the backend holds the pause already.)"""
        shared = self.shared
        if shared is None or self.shares or (left := shared.paused(self.host)) <= 0:
            return
        with self._lock:
            deadline = self.clock() + min(left, PAUSE_SLICE)
            if deadline > self._paused_until + 0.01:
                # Numbered after every request sent so far: one sent later, answered, lifts it.
                self._refusals.append((self._requests + 0.5, deadline))
                self._paused_until = deadline

    def place(self, number: int) -> Plan[None]:
        """For request ``number``, holding its place here: one of the host's places shared by
        every process (:attr:`places_shared`), polled for while all are held; while the
        backend cannot answer, the local limit is split instead (:meth:`_places`)."""
        shared = self.shared
        if shared is None or not self.places_shared:
            return
        poll, most = PLACE_POLL
        while (lease := shared.lease(self.host, self._limit or 1)) is not None:
            self._divide = 1
            if lease:
                with self._lock:
                    self._leases[number] = lease
                return
            yield poll
            poll = min(most, poll * 2)
        self._divide = shared.live

    def learn_rate(self, per_second: float) -> None:
        """The host said its rate (its answers' RateLimit fields, or the last run's): pace to
        it, a hair inside, one at a time, never slower than the floor (see the module); a
        declared rate always wins. ``told`` keeps it."""
        with self._lock:
            if self.limit.per_second is None and 0 < per_second < math.inf:
                if self._rate is None:
                    self._tokens, self._refilled_at = 1.0, self.clock()
                self._rate, self._burst, self.told = per_second * 0.98, 1, per_second
                self.learner.stop()
                self._set_floor()

    def start_told(self, per_second: float) -> None:
        """Pace an undeclared host at the rate an earlier run kept: it was told, and enforced
        then (a 429), so it is followed as far as an enforced one (:data:`ENFORCED_SPACING`)."""
        with self._lock:
            self.vouched = True
        self.learn_rate(per_second)

    def took(self, number: int) -> None:
        """Request ``number`` was answered (not refused): its latency, measured from when it
        went out, moves the floor of a told or learned rate (see the module)."""
        with self._lock:
            went = self._out.pop(number, None)
            if went is None:
                return
            self._latencies.append(max(0.0, self.clock() - went))
            if self._rate is None:  # nothing paced, none waits on the floor: worked out when a rate is
                self._floor_stale = True
                return
            was = self._floor
            self._set_floor()
            wake = self._head_wake() if self._floor > was else None
        if wake is not None:
            wake()  # a waiter asleep on the slower rate asks again

    def _set_floor(self) -> None:
        """The slowest rate a told or learned rate is paced at, from the median latency (under the lock)."""
        self._floor_stale = False
        if not self._latencies or self.limit.per_second is not None:
            self._floor = 0.0
            return
        told_only = self.told is not None and not (self.enforced or self.vouched)
        spacing = TOLD_SPACING if told_only else ENFORCED_SPACING
        latencies = sorted(self._latencies)
        median = latencies[len(latencies) // 2]  # the upper one of an even count: the floor a hair lower
        self._floor = 1 / (spacing * max(median, 1e-6))

    def spend(self, remaining: int, number: int) -> None:
        """The host said ``remaining`` requests are left after request ``number`` (its told
        rate's burst): those sent since and not answered count against them, one is kept in hand, and the
        rest, at most a second's worth at the told rate, may go at once instead of one at a
        time (never more: a quota of 5,000 an hour is not spent in a burst and then waited for)."""
        with self._lock:
            if self.told is not None and self.limit.per_second is None:
                others = len(self._sent) - (number in self._sent)
                spare = min(remaining - others - 1, int(self.told))
                if spare > self._tokens:
                    self._tokens = float(spare)

    def start_learned(self, per_second: float) -> None:
        """Pace an undeclared host at the rate an earlier run learned from its refusals."""
        with self._lock:
            if self.limit.per_second is None and self.told is None and 0 < per_second < math.inf:
                now = self.clock()
                self.learner.start_at(per_second, now)
                self._rate, self._burst, self._tokens, self._refilled_at = self.learner.rate(now), 1, 1.0, now

    @property
    def learning(self) -> bool:
        """Whether the host's rate is being learned from its refusals (it tells none)."""
        return self.learner.learning

    @property
    def kept(self) -> tuple[float, str] | None:
        """The rate to keep for the next run, and how it was had (``told`` or ``learned``). A
        told rate is kept only when the host enforced a limit in this process (it answered
        429): a rate its fields said, however often, with every request served, is not (the
        next run would be paced by what may be a lie). A learned one was had from refusals."""
        if self.told is not None:
            return (self.told, "told") if self.enforced else None
        return (self.learner.top, "learned") if self.learner.learning and self.learner.top > 0 else None

    def _learn(self, number: int) -> None:
        """A refusal of request ``number`` from a host that tells no rate (under the lock)."""
        now = self.clock()
        was = self.learner.learning
        # 4 processes learning alone each took the others' refusals for refusals that ignore
        # its rate and stood down: 1,200-1,500 answers of 429 in 20 s from a 20/s host.
        self.learner.crowd = self.shared.live if self.shared is not None else 1
        if not self.learner.refused(
            number,
            now,
            dominant=self._refusing(number),
            admitted=self._requests,
            in_flight=self._in_flight,
            sent=self.sent(number),
        ):
            return
        if not self.learner.learning:
            self._rate = None  # stood down: its refusals do not follow the rate
        else:
            if not was:  # the host's bucket is empty: the first paced request waits its turn
                self._tokens, self._refilled_at, self._burst = 0.0, now, 1
            self._rate = self.learner.rate(now)

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
            lifted = 0.0  # how much of the pause was left, when none is kept
            with self._lock:
                now = self.clock()
                kept = [r for r in self._refusals if r[0] > number and r[1] > now]
                if len(kept) < len(self._refusals):
                    until = max((r[1] for r in kept), default=-math.inf)
                    if until < self._paused_until and self._paused_until > now:
                        self._lifted += 1
                        wake = self._head_wake()
                        if not kept:
                            lifted = self._paused_until - now
                    self._refusals, self._paused_until = kept, until
            if lifted and self.shared is not None:  # for every process, unless a longer one was asked since
                self.shared.lift(self.host, lifted + LIFT_SLACK)
            if wake is not None:
                wake()
                wake = None
        with self._lock:
            self._recent.append(False)
            if number is not None and self._sent:
                self._sent.pop(number, None)
            self.learner.accepted(self.clock())
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

    def on_overload(self, status: int | None = None, number: int | None = None) -> None:
        """Multiplicative decrease (halve, at least 1) on a 503, a timeout (``status=None``), or a
        429 while refusals dominate the recent answers (see ``RECENT``).

        Answers to requests already in flight at a decrease echo the same overload, so the
        limit halves at most once per window of those requests.
        """
        with self._lock:
            self._overloads += 1
            if status in (429, 503):
                self._recent.append(True)
                if number is not None:
                    self._refused.append(number)
            if status == 429:
                self._rate_limited += 1
                if not self.enforced:
                    self.enforced = True
                    self._set_floor()
                if number is not None and self.limit.per_second is None and self.told is None:
                    self._learn(number)
            if self._limit is None or self._stale > 0 or not self.limit.adaptive:
                return
            if status == 429 and not self._refusing(number):
                return  # a refusal among successes: not the host's overload
            self._limit = max(1, self._limit // 2)
            self._lowest = min(self._limit, self._lowest if self._lowest is not None else self._limit)
            self._successes = 0
            self._stale = self._in_flight

    def count_answer(self, kind: str, source: str) -> None:
        """One answer of this host (or a request that failed with no answer, ``kind`` ``error``),
        to a request sent ahead of the loop or by the loop itself (``source``)."""
        with self._lock:
            self._answers[kind, source] = self._answers.get((kind, source), 0) + 1

    def answers(self) -> dict[tuple[str, str], int]:
        """The answers counted so far, by (status class, source)."""
        with self._lock:
            return dict(self._answers)

    @property
    def learned_rate(self) -> float | None:
        """The rate learned from the host's refusals that its requests are paced at now, or None."""
        with self._lock:
            return self.learner.rate(self.clock()) if self.learner.learning else None

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
