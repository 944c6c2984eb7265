"""Every upstream host's state, for the whole process: its limiter and its circuit.

All targets of the process share one :class:`Hosts`. A host named in the config
(``"api.example.com"`` or ``"api.example.com:8443"``, the latter first) gets its limits;
any other host gets AIMD within the default concurrency, no rate limit, and a circuit with
the default thresholds.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from .._log import event
from .._settings import HostSettings
from ._breaker import CircuitBreaker
from ._limits import HostLimit, HostLimiter
from ._stats import HostLimiterStatistics

__all__ = ["HostState", "Hosts", "paced", "statistics_lines"]


class _CircuitEvents:
    """How a host's circuit speaks: ``sched_accel.circuit_*`` lines."""

    def opened(self, breaker: CircuitBreaker, reason: str) -> None:
        event(
            "ERROR",
            "circuit_open",
            f"{breaker.failed} failed request(s) in a row; calls to this host run as the original code (no "
            f"limits, no retries) for {breaker.cooldown:g} s, then one trial request; check the host",
            host=breaker.name,
            failures=breaker.failed,
            cooldown=breaker.cooldown,
        )

    def half_open(self, breaker: CircuitBreaker) -> None:
        event("WARNING", "circuit_half_open", "cool-down over: one trial request goes through", host=breaker.name)

    def closed(self, breaker: CircuitBreaker) -> None:
        event("INFO", "circuit_closed", "the trial request succeeded: limits and retries apply again", host=breaker.name)


CIRCUIT_EVENTS = _CircuitEvents()


@dataclass(slots=True)
class HostState:
    """An upstream host's limiter and circuit."""

    name: str
    limiter: HostLimiter
    circuit: CircuitBreaker


def host_circuit(name: str, settings: HostSettings) -> CircuitBreaker:
    """The circuit of one host, as its settings say."""
    return CircuitBreaker(
        name, failures=settings.breaker_failures, cooldown=settings.breaker_cooldown, events=CIRCUIT_EVENTS
    )


class Hosts:
    """Every upstream host's state, for the whole process (shared by all targets); by
    default no host bound is tighter than ``default_concurrency``."""

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
                state = self._by_name[name] = HostState(name, HostLimiter(name, limit), host_circuit(name, conf))
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
