"""One circuit breaker: closed, open, half-open; for upstream hosts and for targets alike.

``failures`` failures in a row open it. While it is open, :meth:`CircuitBreaker.admit`
answers ``"open"``: the caller goes around whatever the breaker guards (a host's limits
and retries, a target's acceleration) and runs the original code. After ``cooldown``
seconds the next caller is admitted as the ``"trial"`` (half-open), one at a time; the
trial's success closes the breaker, its failure opens it again at once. What the breaker
counts as a failure is the caller's business: a host counts failed requests (a 429 is
neither: the host is up, only busy), a target counts fallbacks of its runs.

The breaker says what happened through a :class:`BreakerEvents` (each user logs its own
lines); it never raises from its reporting.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Literal, Protocol

__all__ = ["Admission", "BreakerEvents", "CircuitBreaker", "State"]

Admission = Literal["closed", "trial", "open"]
State = Literal["closed", "open", "half-open"]


class BreakerEvents(Protocol):
    """What a breaker tells its user (to log it, in the user's own words)."""

    def opened(self, breaker: CircuitBreaker, reason: str) -> None: ...
    def half_open(self, breaker: CircuitBreaker) -> None: ...
    def closed(self, breaker: CircuitBreaker) -> None: ...


class _Silent:
    def opened(self, breaker: CircuitBreaker, reason: str) -> None:
        pass

    def half_open(self, breaker: CircuitBreaker) -> None:
        pass

    def closed(self, breaker: CircuitBreaker) -> None:
        pass


class CircuitBreaker:
    """A closed/open/half-open breaker named ``name``; thread-safe."""

    def __init__(
        self,
        name: str,
        *,
        failures: int,
        cooldown: float,
        events: BreakerEvents | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if isinstance(failures, bool) or not isinstance(failures, int) or failures < 1:
            raise ValueError(f"failures must be a whole number >= 1, got {failures!r}")
        if isinstance(cooldown, bool) or not isinstance(cooldown, int | float) or not cooldown > 0:
            raise ValueError(f"cooldown must be a number > 0, got {cooldown!r}")
        self.name = name
        self.failures = failures
        self.cooldown = float(cooldown)
        self.clock = clock
        self.events: BreakerEvents = events if events is not None else _Silent()
        self._lock = threading.Lock()
        self.failed = 0  # failures in a row now
        self._opened_at: float | None = None
        self._trial_out = False
        self.opened = 0  # how often it opened

    @property
    def state(self) -> State:
        """``closed``, ``open`` (cooling down, or waiting for the trial's caller), or
        ``half-open`` (a trial is out)."""
        if self._opened_at is None:
            return "closed"
        return "half-open" if self._trial_out else "open"

    @property
    def is_open(self) -> bool:
        """Whether callers are sent around right now (open, or a trial is out)."""
        opened = self._opened_at
        return opened is not None and (self._trial_out or self.clock() - opened < self.cooldown)

    def admit(self) -> Admission:
        """How the next caller goes: normally, as the half-open trial, or around."""
        if self._opened_at is None:
            return "closed"
        with self._lock:
            if self._opened_at is None:
                return "closed"
            if self._trial_out or self.clock() - self._opened_at < self.cooldown:
                return "open"
            self._trial_out = True
        self.events.half_open(self)
        return "trial"

    def give_back_trial(self) -> None:
        """The trial ended without an outcome (cancelled): the next caller is the trial."""
        with self._lock:
            self._trial_out = False

    def record(self, ok: bool, trial: bool = False, reason: str = "") -> None:
        """The outcome of a caller admitted as ``closed`` (or as the ``trial``). Outcomes of
        callers admitted before the breaker opened change nothing while it is open."""
        if ok and not trial and not self.failed and self._opened_at is None:
            return  # closed and healthy: nothing changes (the common case, without the lock)
        opened = closed = False
        with self._lock:
            if trial:
                self._trial_out = False
                if ok:
                    self._opened_at, self.failed, closed = None, 0, True
                else:
                    self.failed += 1
                    self._opened_at, opened = self.clock(), True
            elif self._opened_at is None:
                if ok:
                    self.failed = 0
                else:
                    self.failed += 1
                    if self.failed >= self.failures:
                        self._opened_at, opened = self.clock(), True
            if opened:
                self.opened += 1
        if opened:
            self.events.opened(self, reason)
        elif closed:
            self.events.closed(self)

    def reset(self) -> None:
        """Close the breaker at once (``sched-accel on`` does this in a running process)."""
        with self._lock:
            self.failed, self._opened_at, self._trial_out = 0, None, False
