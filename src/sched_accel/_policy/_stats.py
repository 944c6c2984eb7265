"""Counters: what one run of a target went through (from the workers and the HTTP layer),
and a snapshot of one host's limiter."""

from __future__ import annotations

import statistics
import threading
import time
from dataclasses import dataclass
from typing import Any

__all__ = ["MAX_SPANS", "HostLimiterStatistics", "RunStats"]

#: Request spans kept per run for its timeline (about 60 bytes each in the runs file).
MAX_SPANS = 2000

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

    Each answered request's time (sent to answered) is summed, and kept apart for requests
    that went alone: :meth:`request_work` is the run's requests at the time one takes alone
    (the report divides it by the run's wall time: its effective concurrency) and
    :meth:`slowdown` how much longer requests took when sent together (an upstream that
    serves one at a time makes 8 sent at once each take 8 times as long).

    And each request's span, for ``sched-accel timeline``: when it was sent (seconds from the
    run's start), how long it took, its host, who sent it (the loop itself, or a worker ahead
    of it) and its status or the name of its exception; the first :data:`MAX_SPANS` of a run
    (the rest only counted: memory does not grow with the run).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.retried = self.retries = self.gave_up = self.lost = 0
        self.requests = self.http_429 = self.http_503 = self.timeouts = 0
        self.in_flight = self.peak_requests = 0
        self.calls = self.peak_calls = 0
        self.limit_wait = 0.0
        self.answers = self.alone = 0
        self.answer_seconds = self.alone_seconds = 0.0
        self.quickest: float | None = None
        self.started_at = time.perf_counter()
        self.spans: list[tuple[float, float, str, bool, object]] = []
        self.spans_dropped = 0

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

    def answered(
        self,
        seconds: float | None = None,
        alone: bool = False,
        *,
        sent_at: float | None = None,
        host: str = "-",
        live: bool = False,
        status: object = None,
    ) -> None:
        """A request sent (at ``sent_at``, by :func:`time.perf_counter`) is answered with
        ``status`` (or raised: its exception's name) after ``seconds``; ``alone``: none other
        of the run's was in flight when it was sent; ``live``: the loop's own."""
        with self._lock:
            self.in_flight -= 1
            if sent_at is not None and seconds is not None:
                if len(self.spans) < MAX_SPANS:
                    self.spans.append((sent_at - self.started_at, seconds, host, live, status))  # rounded when kept
                else:
                    self.spans_dropped += 1
            if seconds is not None:
                self.answers += 1
                self.answer_seconds += seconds
                if self.quickest is None or seconds < self.quickest:
                    self.quickest = seconds
                if alone:
                    self.alone += 1
                    self.alone_seconds += seconds

    def timeline(self) -> dict[str, Any]:
        """The run's request spans, as kept in its runs file (JSON values only)."""
        with self._lock:
            spans = [
                [
                    round(start, 4),
                    round(took, 4),
                    host,
                    "live" if live else "ahead",
                    status if isinstance(status, int | str) else None,
                ]
                for start, took, host, live, status in self.spans
            ]
            return {"spans": spans, "dropped": self.spans_dropped}

    def _one_alone(self) -> float | None:
        """The time a request takes alone: the mean of those that went alone, else the quickest."""
        return self.alone_seconds / self.alone if self.alone else self.quickest

    def typical(self) -> float | None:
        """The median time the run's requests took (of the first :data:`MAX_SPANS`), in
        seconds; None before two answers."""
        with self._lock:
            took = sorted(span[1] for span in self.spans)
        return statistics.median(took) if len(took) >= 2 else None

    def request_work(self) -> float | None:
        """The run's answered requests at the time one takes alone, in seconds: what a
        sequential loop would have waited. None before two answers."""
        with self._lock:
            one = self._one_alone()
            return self.answers * one if one and self.answers >= 2 else None

    def slowdown(self) -> float | None:
        """How many times longer the run's requests took, on average, than one alone."""
        with self._lock:
            one = self._one_alone()
            return self.answer_seconds / self.answers / one if one and self.answers >= 2 else None

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
