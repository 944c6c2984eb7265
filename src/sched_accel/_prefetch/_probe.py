"""Stepping aside: when the per-item calls are cheaper than fanning them out.

The first predicted call is submitted alone; if it is done within ``PROBE_SECONDS``, calls
are cheaper than fanning out (our hand-offs, and an HTTP client's pool of C connections,
would cost more than they save), so the loop calls directly. If the next ``RESUME_AFTER``
direct calls then spend ``RESUME_SECONDS`` or more on average *waiting* (wall time minus
CPU time: the part concurrency overlaps; the first call was a cache hit), prefetching
starts after all. Slow calls lose ``PROBE_SECONDS`` once per run, against a whole round
of latency for a sequential probe.
"""

from __future__ import annotations

import time

__all__ = ["PROBE_SECONDS", "RESUME_AFTER", "RESUME_SECONDS", "StepAside", "waited"]

PROBE_SECONDS = 0.005
RESUME_AFTER = 8
RESUME_SECONDS = 0.001


def waited(started: float, cpu: float) -> float:
    """Seconds a call spent waiting (wall time minus this thread's CPU time) since
    ``time.perf_counter()`` and ``time.thread_time()`` read ``started`` and ``cpu``."""
    return max(0.0, (time.perf_counter() - started) - (time.thread_time() - cpu))


class StepAside:
    """One run's probe and its verdict. ``probing`` is None until the first predicted call
    was submitted, True while it is the probe being waited for, then False (decided)."""

    __slots__ = ("_sum", "_timed", "aside", "failed", "probing", "resumed", "said_slow", "seconds", "skipped", "timing")

    def __init__(self, probe: bool = True) -> None:
        self.probing: bool | None = None if probe else False
        self.skipped = not probe  # an earlier run of this process found the calls slow
        self.said_slow = False  # the probe (or the resumed direct calls) found them slow
        #: 0 or less: never step aside (the benchmarks measure the engine so).
        self.seconds = PROBE_SECONDS
        self.aside = False
        self.failed = False  # stopped by a failure of ours, not by the probe
        self.resumed = False
        #: Whether the direct calls made now are timed (stepped aside, not yet decided).
        self.timing = False
        self._timed = 0
        self._sum = 0.0

    @property
    def stepped_aside(self) -> bool:
        """Whether the probe made the run step aside for good (not a failure of ours)."""
        return self.aside and not self.timing and not self.failed

    def probed(self, quick: bool) -> bool:
        """The probe was (``quick``) or was not done within ``seconds``; True if the run
        prefetches on, False if it steps aside."""
        self.probing = False
        if quick and self.seconds > 0:
            self.aside = self.timing = True
            return False
        self.said_slow = True
        return True

    def stop(self) -> None:
        """Call directly for the rest of the run, without timing the calls (a failure of ours)."""
        self.probing = False
        self.aside = self.failed = True
        self.timing = False

    def timed(self, seconds: float) -> bool | None:
        """A direct call waited ``seconds``: True to resume prefetching now, False to stay
        aside for the rest of the run, None while still timing."""
        self._timed += 1
        self._sum += seconds
        if self._timed < RESUME_AFTER:
            return None
        self.timing = False
        if self._sum / RESUME_AFTER >= RESUME_SECONDS:
            self.aside = False
            self.resumed = True
            self.said_slow = True
            return True
        return False
