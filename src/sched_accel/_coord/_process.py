"""The process backend: every fact in this process's memory, behind one lock.

Today's behaviour (nothing shared with other processes), with the interface of the shared
backends, so the limiter is written once against :class:`~._base.Backend`. It is also the
reference the shared backends are tested against: the same suite runs on all three. Nothing
outside the process can write its facts; the bounds on what is read back (``_base``) apply
here all the same, so the three backends keep one contract.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable

from .._exceptions import CoordinationUnavailable
from ._base import (
    LONGEST_PAUSE,
    MAX_AGE,
    check_host,
    check_latest,
    check_limit,
    check_rate,
    check_seconds,
    check_tick,
    claim_wins,
    cut_pause,
    gcra,
    in_force,
    new_lease_id,
)

__all__ = ["ProcessBackend"]


class ProcessBackend:
    """In memory, thread-safe; ``clock`` is injectable for tests (monotonic seconds)."""

    kind = "process"

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._closed = False
        self._tat: dict[str, float] = {}
        self._paused: dict[str, float] = {}
        self._leases: dict[str, dict[str, float]] = {}
        self._rates: dict[str, tuple[float, float]] = {}  # host -> (per_second, learned at)
        self._beats: dict[str, float] = {}
        self._claims: dict[str, tuple[int, float, float, float]] = {}  # key -> (tick, held until, made, wall then)
        self._fences: dict[str, int] = {}

    def _now(self) -> float:
        """The clock, under the lock, once the backend is known to be open."""
        if self._closed:
            raise CoordinationUnavailable("the process backend is closed")
        return self._clock()

    def admit(self, host: str, *, per_second: float, burst: int, longest: float = LONGEST_PAUSE) -> float:
        check_host(host)
        check_rate(per_second, burst)
        check_seconds(longest, "longest")
        with self._lock:
            now = self._now()
            wait, tat = gcra(self._tat.get(host, now), now, per_second, burst)
            paused = self._cut(host, now, longest) - now
            if wait > 0 or paused <= 0:  # refused by the rate (its arrival time as cut), or admitted
                self._tat[host] = tat
            return max(paused, wait, 0.0)

    def _cut(self, host: str, now: float, longest: float) -> float:
        """The host's pause's end, cut to ``longest`` from now (under the lock)."""
        until = self._paused.get(host, now)
        if until - now > longest:
            until = self._paused[host] = cut_pause(until, now, longest)
        return until

    def lease(self, host: str, *, limit: int, ttl: float) -> str | None:
        check_host(host)
        check_limit(limit)
        check_seconds(ttl, "ttl")
        with self._lock:
            now = self._now()
            held = {k: until for k, until in self._leases.get(host, {}).items() if in_force(until, now, ttl)}
            self._leases[host] = held
            if len(held) >= limit:
                return None
            lease_id = new_lease_id()
            held[lease_id] = now + ttl
            return lease_id

    def release(self, host: str, lease_id: str) -> None:
        with self._lock:
            self._now()
            self._leases.get(host, {}).pop(lease_id, None)

    def renew(self, host: str, lease_ids: list[str], *, ttl: float) -> None:
        check_seconds(ttl, "ttl")
        with self._lock:
            now = self._now()
            held = {k: until for k, until in self._leases.get(host, {}).items() if in_force(until, now, ttl)}
            for lease_id in lease_ids:
                if lease_id in held:
                    held[lease_id] = now + ttl
            if held or host in self._leases:
                self._leases[host] = held

    def lift(self, host: str, *, at_most: float) -> None:
        check_seconds(at_most, "at_most", zero=True)
        with self._lock:
            now = self._now()
            if self._paused.get(host, now) - now <= at_most:
                self._paused.pop(host, None)

    def pause(self, host: str, seconds: float) -> None:
        check_host(host)
        check_seconds(seconds, "seconds", zero=True)
        with self._lock:
            until = self._now() + seconds
            if until > self._paused.get(host, until - 1):
                self._paused[host] = until

    def paused_for(self, host: str, *, longest: float = LONGEST_PAUSE) -> float:
        check_seconds(longest, "longest")
        with self._lock:
            now = self._now()
            return max(0.0, self._cut(host, now, longest) - now)

    def learn_rate(self, host: str, per_second: float) -> None:
        check_host(host)
        check_rate(per_second, 1)
        with self._lock:
            self._rates[host] = (float(per_second), self._now())

    def learned_rate(self, host: str) -> float | None:
        with self._lock:
            now = self._now()
            rate, at = self._rates.get(host, (0.0, -MAX_AGE))
            return rate if rate > 0 and now - at <= MAX_AGE else None

    def heartbeat(self, process_id: str, *, ttl: float) -> None:
        check_seconds(ttl, "ttl")
        with self._lock:
            now = self._now()
            self._beats = {p: until for p, until in self._beats.items() if in_force(until, now, ttl)}
            self._beats[process_id] = now + ttl

    def live_processes(self) -> int:
        with self._lock:
            now = self._now()
            self._beats = {p: until for p, until in self._beats.items() if until > now}
            return len(self._beats)

    def claim(
        self,
        key: str,
        tick: int,
        *,
        ttl: float,
        latest: int | None = None,
        at: float | None = None,
        period: float | None = None,
    ) -> int | None:
        check_tick(tick)
        check_seconds(ttl, "ttl")
        check_latest(latest)
        with self._lock:
            now = self._now()
            held_tick, held_until, made, held_at = self._claims.get(key, (None, now, now, math.nan))
            if not claim_wins(
                held_tick,
                held_until,
                tick,
                now,
                ttl=ttl,
                latest=latest,
                made=made,
                held_at=held_at,
                at=at,
                period=period,
            ):
                return None
            token = self._fences.get(key, 0) + 1
            self._fences[key] = token
            self._claims[key] = (tick, now + ttl, now, math.nan if at is None else at)
            return token

    def held(self, key: str) -> tuple[int, int] | None:
        with self._lock:
            now = self._now()
            tick, until, _, _ = self._claims.get(key, (0, now, now, math.nan))
            return (tick, self._fences[key]) if until > now else None

    def close(self) -> None:
        with self._lock:
            self._closed = True
