"""The switch asked on every call of a patched loop, and the breaker behind it.

A target runs accelerated only while all of these say yes: sched_accel is installed (the
flag was on at start, or :func:`sched_accel.install` ran), the control file does not name
it (or ``*``), and its breaker is closed. The switch never raises: a question it cannot
answer is a no, and the original runs.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from ._control import ControlFile
from ._log import event, internal_error

__all__ = ["Breaker", "Switch"]


class Breaker:
    """Turns a target off for ``cooldown`` seconds after ``threshold`` fallbacks in a row.

    After the cool-down one call is let through (half-open): success closes the breaker,
    another fallback opens it again at once.
    """

    def __init__(
        self,
        name: str,
        *,
        threshold: int,
        cooldown: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if threshold < 1:
            raise ValueError(f"threshold must be >= 1, got {threshold!r}")
        if cooldown <= 0:
            raise ValueError(f"cooldown must be > 0, got {cooldown!r}")
        self.name = name
        self.threshold = threshold
        self.cooldown = cooldown
        self._clock = clock
        self._lock = threading.Lock()
        self._fallbacks = 0
        self._opened_at: float | None = None
        self._half_open = False

    @property
    def is_open(self) -> bool:
        """Whether the target is switched off by the breaker right now."""
        opened = self._opened_at
        return opened is not None and self._clock() - opened < self.cooldown

    def allows(self) -> bool:
        """Whether the next call may be accelerated."""
        opened = self._opened_at
        if opened is None:
            return True
        if self._clock() - opened < self.cooldown:
            return False
        with self._lock:
            if self._opened_at is not None:
                self._opened_at = None
                self._half_open = True
                event("WARNING", "breaker_half_open", "cool-down over: the next run is accelerated again", target=self.name)
        return True

    def record_fallback(self, reason: str) -> None:
        """A run fell back to the original; maybe trip."""
        with self._lock:
            self._fallbacks += 1
            if not self._half_open and self._fallbacks < self.threshold:
                return
            self._opened_at = self._clock()
            self._half_open = False
            fallbacks, self._fallbacks = self._fallbacks, 0
        event(
            "ERROR",
            "breaker_open",
            f"switched off for {self.cooldown:g}s after {fallbacks} fallback(s) in a row; the original "
            "loop runs meanwhile; fix the cause, then `sched-accel on` or wait",
            target=self.name,
            fallbacks=fallbacks,
            cooldown=self.cooldown,
            last_reason=reason,
        )

    def record_success(self) -> None:
        """A run went through accelerated."""
        with self._lock:
            self._fallbacks = 0
            closed, self._half_open = self._half_open, False
        if closed:
            event("INFO", "breaker_closed", "accelerated again", target=self.name)

    def reset(self) -> None:
        """Close the breaker (``sched-accel on`` does this in a running process's next call)."""
        with self._lock:
            self._fallbacks, self._opened_at, self._half_open = 0, None, False


class Switch:
    """The ``enabled`` callable given to the wrapper: asked before every call of the loop."""

    def __init__(self, name: str, control: ControlFile, breaker: Breaker, active: Callable[[], bool]) -> None:
        self.name = name
        self.control = control
        self.breaker = breaker
        self._active = active
        self._failed = False
        self._seen: object = None

    def __call__(self) -> bool:
        try:
            if not self._active():
                return False
            state = self.control.state()
            if state.is_off(self.name):
                return False
            if state is not self._seen:
                # The control file changed (a `sched-accel on`): re-arm a tripped breaker.
                if self._seen is not None:
                    self.breaker.reset()
                self._seen = state
            return self.breaker.allows()
        except Exception as exc:  # pragma: no cover - defensive: a no is always safe
            if not self._failed:
                self._failed = True
                internal_error(f"switch of {self.name}", exc)
            return False
