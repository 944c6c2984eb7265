"""Every upstream host's state, for the whole process: its limiter and its circuit.

All targets of the process share one :class:`Hosts`. A host named in the config
(``"api.example.com"`` or ``"api.example.com:8443"``, the latter first) gets its limits;
any other host gets AIMD within the default concurrency, no rate limit, and a circuit with
the default thresholds.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass

from .._events import CIRCUIT_CLOSED, CIRCUIT_HALF_OPEN, CIRCUIT_OPEN, HOST_LIMIT_UNDECLARED
from .._log import event
from .._settings import HostSettings, Reads
from ._breaker import CircuitBreaker
from ._headers import budget
from ._host_limit import HostLimit, paced
from ._limiter import HostLimiter
from ._retry import classify, is_timeout, refusal_wait, status_of
from ._shared import SharedRates
from ._stats import HostLimiterStatistics, RunStats

__all__ = ["HostState", "Hosts", "paced", "statistics_lines", "status_class"]


class _CircuitEvents:
    """How a host's circuit speaks: ``sched_accel.circuit_*`` lines."""

    def opened(self, breaker: CircuitBreaker, reason: str) -> None:
        event(
            CIRCUIT_OPEN,
            f"{breaker.failed} failed request(s) in a row; calls to this host run as the original code (no "
            f"limits, no retries) for {breaker.cooldown:g} s, then one trial request; check the host",
            host=breaker.name,
            failures=breaker.failed,
            cooldown=breaker.cooldown,
        )

    def half_open(self, breaker: CircuitBreaker) -> None:
        event(CIRCUIT_HALF_OPEN, "cool-down over: one trial request goes through", host=breaker.name)

    def closed(self, breaker: CircuitBreaker) -> None:
        event(CIRCUIT_CLOSED, "the trial request succeeded: limits and retries apply again", host=breaker.name)


CIRCUIT_EVENTS = _CircuitEvents()


#: Answers of a host read for rate-limit fields before it is taken to send none.
LISTEN = 4
SPEAKS = 1 << 62  # a host that sends them: every answer is read
#: A told rate slower than one request per 5 minutes (the longest Retry-After followed) is
#: not paced to: a misread or broken field must not stretch a job to days. (A faster one is
#: still paced no slower than the sequential loop's own pace until the host enforces it:
#: ``_limiter``, "A rate the host told ... never holds the run for long".)
SLOWEST_TOLD = 1 / 300


@dataclass(slots=True)
class HostState:
    """An upstream host's limiter and circuit, and the requests it declares reads."""

    name: str
    limiter: HostLimiter
    circuit: CircuitBreaker
    #: Answers still read for rate-limit fields before concluding that the host sends none
    #: (a refusal reads them again); a host that sends them has every answer read.
    listen: int = LISTEN
    #: Its ``reads`` (``[hosts."..."] reads``), for ``_prefetch._reads.is_read``.
    reads: Reads = Reads()

    def answered(
        self,
        response: object,
        trial: bool,
        number: int,
        stats: RunStats,
        longest: float = math.inf,
        *,
        live: bool = False,
    ) -> None:
        """What an answer to a request admitted as ``number`` (or as the trial) teaches the host.
        A pause is never longer than ``longest`` (the retry deadline): no item waits longer than
        that for its next attempt (it gives up, with the answer the sequential loop would have
        had), so a longer ``Retry-After`` (a day, from a hostile or broken upstream) would only
        hold the loop's own requests and the other items' first attempts. It is counted by its
        status class and by who sent the request: the loop itself (``live``) or a worker ahead of it."""
        status = status_of(response)
        self.counted(status, stats, live=live)
        if not isinstance(status, int):
            return
        if status not in (429, 503):
            self.limiter.took(number)  # its latency: how slow a told rate may pace (``_limiter``)
        if self.listen > 0 or status in (429, 503):
            self._told(getattr(response, "headers", None), number)
        if status in (429, 503):
            self.limiter.on_overload(status, number)
            headers = getattr(response, "headers", None)
            wait = refusal_wait(headers) if callable(getattr(headers, "get", None)) else None
            if wait and self.limiter.learning:
                wait = rounded_down(wait)
            if wait and stats.crowded():
                # The whole host backs off together, until a later request is answered. (Not
                # while the run was no more than sequential: the plain loop would not wait.)
                self.limiter.pause_for(min(wait, longest), refused=number)
            if status == 503:
                self.circuit.record(False, trial)
            elif trial:
                self.circuit.record(True, trial)
        elif status >= 500:
            self.circuit.record(False, trial)
        else:
            self.limiter.on_success(number)
            self.circuit.record(True, trial)

    def counted(self, status: object, stats: RunStats, *, live: bool) -> None:
        """An answer with ``status``, counted: by its status class and who sent it (the metrics),
        and a 429 or 503 in the run's figures (what :meth:`answered` counts, and the plain path's)."""
        self.limiter.count_answer(status_class(status), "live" if live else "ahead")
        if status in (429, 503):
            stats.add("http_429" if status == 429 else "http_503")

    def counted_error(self, exc: Exception, stats: RunStats, *, live: bool) -> bool:
        """A request that raised, counted: an ``error`` answer, and a timeout in the run's
        figures (:meth:`raised`'s counts, and the plain path's). Whether it timed out."""
        self.limiter.count_answer("error", "live" if live else "ahead")
        timed_out = is_timeout(exc)
        if timed_out:
            stats.add("timeouts")
        return timed_out

    def _told(self, headers: object, number: int = 0) -> None:
        """What the answer's rate-limit fields say: the host's rate (``limit`` per ``window``)
        paces its requests when none is declared, never slower than one request per latency
        of its answers until it enforces it with a 429 (``_limiter``). (A spent quota's reset is waited for only
        by a refused request, ``refusal_wait``: resets come in whole seconds, and holding the
        host a whole second each time its bucket is empty made a 20/s job 4 times slower.)"""
        try:
            told = budget(headers) if callable(getattr(headers, "get", None)) else None  # type: ignore[arg-type]
        except Exception:  # noqa: BLE001 - headers of an unknown kind say nothing
            told = None
        if told is None or told.source == "retry-after":
            self.listen -= 1
            return
        self.listen = SPEAKS
        if told.limit is not None and told.window and told.limit / told.window >= SLOWEST_TOLD:
            self.limiter.learn_rate(told.limit / told.window)
            if told.remaining and number:
                self.limiter.spend(told.remaining, number)

    def raised(self, exc: BaseException, trial: bool, stats: RunStats, *, live: bool = False) -> None:
        """What a request that raised teaches the host (a cancelled one: nothing). It is
        counted as an ``error`` answer (as :meth:`answered` counts answers)."""
        if not isinstance(exc, Exception):  # cancelled: no answer either way
            if trial:
                self.circuit.give_back_trial()
            return
        if self.counted_error(exc, stats, live=live):
            self.limiter.on_overload(None)
        failure = classify(exc)
        if failure is not None:
            self.circuit.record(False, trial)
        elif trial:
            self.circuit.record(True, trial)  # answered, the error is ours or the app's


def status_class(status: object) -> str:
    """An answer's status class for the metrics: ``"2xx"`` for 200 to 299, and so on; ``"error"``
    for an answer whose status cannot be read (and, in :meth:`HostState.raised`, for no answer)."""
    if isinstance(status, int) and not isinstance(status, bool) and 100 <= status <= 599:
        return f"{status // 100}xx"
    return "error"


def rounded_down(wait: float) -> float:
    """A whole-second Retry-After from a host whose rate is being learned is taken as the
    rounded hint it is: the refused request's token comes some time within its last second
    (a 20/s host says "1" when it means 0.05), and the learned rate paces the waiters one
    by one from there. Fractional waits are taken as said."""
    return wait - 1 if wait >= 1 and wait == int(wait) else wait


def host_circuit(name: str, settings: HostSettings) -> CircuitBreaker:
    """The circuit of one host, as its settings say."""
    return CircuitBreaker(
        name, failures=settings.breaker_failures, cooldown=settings.breaker_cooldown, events=CIRCUIT_EVENTS
    )


class Hosts:
    """Every upstream host's state, for the whole process (shared by all targets); by
    default no host bound is tighter than ``default_concurrency``."""

    def __init__(
        self,
        settings: dict[str, HostSettings] | None = None,
        default_concurrency: int | None = None,
        learned: dict[str, tuple[float, str]] | None = None,
        shared: SharedRates | None = None,
    ) -> None:
        self.settings = dict(settings or {})
        #: The rates hosts told the last run and enforced, or that it learned from their
        #: refusals (``_state.LearnedRates``): an undeclared host starts at its own.
        self.learned = dict(learned or {})
        self.default_concurrency = default_concurrency
        #: The host rates shared with the app's other processes (``_shared``), or None.
        self.shared = shared
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
                state = self._by_name[name] = HostState(
                    name, HostLimiter(name, limit), host_circuit(name, conf), reads=conf.reads
                )
                state.limiter.shared = self.shared
                state.limiter.places_shared = self.shared is not None and conf.concurrency is not None
                if name in self.learned:
                    rate, how = self.learned[name]
                    if how == "learned":
                        state.limiter.start_learned(rate)
                    else:
                        state.limiter.start_told(rate)
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
                    HOST_LIMIT_UNDECLARED,
                    f'this host answered 429 and its limit is not declared; add [hosts."{state.name}"] with its '
                    "per_second and burst (from its API docs) so requests are paced instead of refused; while it "
                    "refuses, each Retry-After pauses every request to it",
                    host=state.name,
                    http_429=refused,
                )

    def told_rates(self) -> dict[str, float]:
        """The rates undeclared hosts told us (their answers' fields), by host."""
        with self._lock:
            states = list(self._by_name.values())
        return {s.name: s.limiter.told for s in states if s.limiter.told is not None}

    def kept_rates(self) -> dict[str, float | tuple[float, str]]:
        """The rates undeclared hosts told us and enforced (a 429 in this process), or we
        learned from their refusals, by host, with how: to keep for the next run."""
        with self._lock:
            states = list(self._by_name.values())
        return {s.name: kept for s in states if (kept := s.limiter.kept) is not None}

    def answers(self) -> dict[str, dict[tuple[str, str], int]]:
        """Every host's answers so far, by (status class, source): ``"2xx"`` ... ``"5xx"`` or
        ``"error"`` (no answer: a timeout, a reset), and ``"ahead"`` (sent ahead of the loop)
        or ``"live"`` (sent by the loop itself); hosts not answered yet are left out."""
        with self._lock:
            states = list(self._by_name.values())
        return {s.name: counts for s in states if (counts := s.limiter.answers())}

    def rates(self) -> dict[str, tuple[float, str]]:
        """The rate in requests per second that each host's requests are paced to now, and
        where it comes from: ``"declared"`` (its ``per_second``, whether or not it was called
        yet), ``"told"`` (its answers' rate-limit fields, or a told rate an earlier run kept)
        or ``"learned"`` (from its refusals). Hosts paced at no rate are left out."""
        with self._lock:
            states = list(self._by_name.values())
        rates = {
            name: (conf.per_second, "declared") for name, conf in self.settings.items() if conf.per_second is not None
        }
        for state in states:
            if state.name in rates:
                continue
            if (told := state.limiter.told) is not None:
                rates[state.name] = (told, "told")
            elif (learned := state.limiter.learned_rate) is not None:
                rates[state.name] = (learned, "learned")
        return rates

    def statistics(self) -> dict[str, tuple[HostLimiterStatistics, str]]:
        """Every host seen so far: its limiter's counters and its circuit's state."""
        with self._lock:
            states = list(self._by_name.values())
        return {s.name: (s.limiter.statistics(), s.circuit.state) for s in states}


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
