"""The switch asked on every call of a patched loop, and the breaker behind it.

A target runs accelerated only while all of these say yes: sched_accel is installed (the
flag was on at start, or :func:`sched_accel.install` ran), nothing switches it off (this app's
control file, the user-wide one, ``$SCHED_ACCEL_DISABLED_TARGETS``: ``_state.Controls``, which
says each target it finds off in one ``switched_off`` line), and its breaker admits the run
(closed, or this run is the trial after the cool-down; the breaker is ``_policy``'s one
:class:`CircuitBreaker`). The switch never raises: a question it cannot answer is a no, and the
original runs.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from ._events import BREAKER_CLOSED, BREAKER_HALF_OPEN, BREAKER_OPEN
from ._log import event, internal_error
from ._policy import CircuitBreaker
from ._state import Controls

__all__ = ["Switch", "target_breaker"]


class _TargetEvents:
    """How a target's breaker speaks: ``sched_accel.breaker_*`` lines."""

    def opened(self, breaker: CircuitBreaker, reason: str) -> None:
        event(
            BREAKER_OPEN,
            f"switched off for {breaker.cooldown:g}s after {breaker.failed} fallback(s) in a row; the original "
            "loop runs meanwhile; fix the cause, then `sched-accel on` or wait",
            target=breaker.name,
            fallbacks=breaker.failed,
            cooldown=breaker.cooldown,
            last_reason=reason,
        )

    def half_open(self, breaker: CircuitBreaker) -> None:
        event(BREAKER_HALF_OPEN, "cool-down over: the next run is accelerated again", target=breaker.name)

    def closed(self, breaker: CircuitBreaker) -> None:
        event(BREAKER_CLOSED, "accelerated again", target=breaker.name)


_EVENTS = _TargetEvents()


def target_breaker(
    name: str, *, threshold: int, cooldown: float, clock: Callable[[], float] = time.monotonic
) -> CircuitBreaker:
    """The breaker of one target: ``threshold`` fallbacks in a row switch it off for
    ``cooldown`` seconds; then one run goes through accelerated, as the trial."""
    return CircuitBreaker(name, failures=threshold, cooldown=cooldown, events=_EVENTS, clock=clock)


class Switch:
    """The ``enabled`` callable given to the wrapper: asked before every call of the loop."""

    def __init__(self, name: str, control: Controls, breaker: CircuitBreaker, active: Callable[[], bool]) -> None:
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
            return self.breaker.admit() != "open"
        except Exception as exc:  # pragma: no cover - defensive: a no is always safe
            if not self._failed:
                self._failed = True
                internal_error(f"switch of {self.name}", exc)
            return False

    def off_by(self) -> str:
        """Who says no now, for the run line of a run made unaccelerated: the variable's name
        or a control file's path, ``breaker`` (open after fallbacks), or ``-``."""
        try:
            by = self.control.state().switched_by(self.name)
            if by is not None:
                return by
            return "breaker" if self.breaker.state != "closed" else "-"
        except Exception:  # pragma: no cover - defensive
            return "-"
