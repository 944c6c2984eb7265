"""Counters: what one run of a target went through (from the workers and the HTTP layer),
and a snapshot of one host's limiter."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

__all__ = ["HostLimiterStatistics", "RunStats"]

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
    """Counters of one run (thread-safe).

    ``retried``: items tried more than once; ``retries``: the extra attempts; ``gave_up``:
    items whose retry deadline passed (their last exception reached the loop); ``lost``: of
    those, and of items refused while a circuit was open, the rate-limited ones (must stay
    0); ``requests``, ``http_429``, ``http_503``, ``timeouts``: HTTP requests and the
    overload answers among them; ``peak_requests``: most requests of the run in flight at
    once (the concurrency reached); ``limit_wait``: seconds requests and calls waited for
    host and target limits. ``peak_calls``: most attempts of per-item calls at once (not in
    the run's line: with ``peak_requests``, it tells whether the run was ever more than
    sequential, see :meth:`crowded`).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.retried = self.retries = self.gave_up = self.lost = 0
        self.requests = self.http_429 = self.http_503 = self.timeouts = 0
        self.in_flight = self.peak_requests = 0
        self.calls = self.peak_calls = 0
        self.limit_wait = 0.0

    def add(self, name: str, amount: int = 1) -> None:
        with self._lock:
            setattr(self, name, getattr(self, name) + amount)

    def waited(self, seconds: float) -> None:
        if seconds > 0.0005:
            with self._lock:
                self.limit_wait += seconds

    def sent(self, waited: float = 0.0) -> int:
        """A request is sent, after ``waited`` seconds for its turn; how many of the run's are
        in flight with it (1: it went alone, as the plain loop's would)."""
        with self._lock:
            if waited > 0.0005:
                self.limit_wait += waited
            self.requests += 1
            self.in_flight += 1
            self.peak_requests = max(self.peak_requests, self.in_flight)
            return self.in_flight

    def answered(self) -> None:
        with self._lock:
            self.in_flight -= 1

    def began(self) -> None:
        """An attempt of a per-item call begins (ahead of the loop or the loop's own)."""
        with self._lock:
            self.calls += 1
            self.peak_calls = max(self.peak_calls, self.calls)

    def ended(self) -> None:
        with self._lock:
            self.calls -= 1

    def crowded(self) -> bool:
        """Whether the run ever had more than one request, or more than one call, in flight at
        once: more than the sequential loop, so a refusal may be ours to cause."""
        return self.peak_requests > 1 or self.peak_calls > 1

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            counts: dict[str, Any] = {name: getattr(self, name) for name in _COUNTERS}
            counts["limit_wait"] = round(self.limit_wait, 3)
            return counts


@dataclass(frozen=True, slots=True)
class HostLimiterStatistics:
    """A snapshot of one host's limiter."""

    host: str
    requests: int  # admitted
    waits: int  # admitted after waiting (in line, for a place, a token or a pause)
    wait_seconds: float  # total time admitted requests spent waiting
    overloads: int  # on_overload() calls: 429, 503, timeouts
    rate_limited: int  # of which answers of 429
    in_flight: int
    peak_in_flight: int  # the concurrency reached
    queued: int  # waiting in line now
    current_limit: int | None  # the adaptive concurrency limit now (None: unbounded)
    lowest_limit: int | None  # the lowest it fell to
    pauses_lifted: int  # host-wide pauses lifted because a later request was answered
