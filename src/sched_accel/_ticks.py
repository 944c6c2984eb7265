"""Which schedule tick a call of a single_run loop belongs to.

A tick is a window of the schedule, ``floor(time / seconds)``: every process that runs the job
for the same window computes the same number, so a claim on (target, tick) lets one of them run
it. Its time and its length come from, in this order:

- **APScheduler 3.x**: the job's *scheduled* run time, read from the frame of the executor's
  ``run_job`` (or ``run_coroutine_job``) that called the loop; APScheduler passes it nowhere
  else (``job.next_run_time`` is already advanced when the job runs; the events carry it only
  after the run). The length: the declared ``tick``, else an ``IntervalTrigger``'s interval
  (each worker's interval job has its own phase, and each window of the interval holds exactly
  one of its runs), else 1 s (a cron or date trigger fires at the same instants in every
  process, so the scheduled second itself is the tick);
- **schedule**: the job's ``next_run`` while ``Job.run`` calls it (moved on only after), with
  the declared ``tick``, else 1 s for a job ``.at()`` a time, else its period (``every(10).seconds``);
- **anything else** (cron starting a process, a plain loop, a web request): the wall clock,
  with the declared ``tick``; without one there is no tick, and the call runs.

The scheduled time is better than the clock: a job started late (a busy executor) still
belongs to the tick it was scheduled for. Frames are only read, a few levels up, and any
surprise in them means "no scheduler found", never an error.
"""

from __future__ import annotations

import datetime as dt
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import FrameType
from typing import Any

from ._coord._base import MAX_TICK

__all__ = ["Tick", "tick_of"]

#: How many frames above the wrapper are looked at for a scheduler's (wrapt adds none).
_DEPTH = 12
_APSCHEDULER = {
    ("apscheduler.executors.base", "run_job"),
    ("apscheduler.executors.base", "run_coroutine_job"),
    ("apscheduler.executors.base_py3", "run_coroutine_job"),
}
_SHORTEST = 0.01  # the shortest tick (``_bounds``'s "tick"): a finer schedule is ticked at this


@dataclass(frozen=True, slots=True)
class Tick:
    """One window of a schedule: its number, its length in seconds, and where its time came from."""

    number: int
    seconds: float
    source: str  # "apscheduler", "schedule" or "clock"


def tick_of(declared: float | None, frame: FrameType | None, *, clock: Callable[[], float] = time.time) -> Tick | None:
    """The tick of the call whose wrapper's caller is ``frame``; None when there is none (no
    scheduler above it and no declared ``tick``), or when its number is out of range."""
    found = _scheduled(frame)
    if found is None:
        if declared is None:
            return None
        at, seconds, source = clock(), declared, "clock"
    else:
        at, period, source = found
        seconds = declared or max(period or 1.0, _SHORTEST)
    number = math.floor(at / seconds)
    if not -MAX_TICK < number < MAX_TICK:
        return None
    return Tick(number, seconds, source)


def caller(depth: int) -> FrameType | None:
    """The frame ``depth`` levels above the caller of this function (None at the stack's top)."""
    try:
        return sys._getframe(depth + 1)
    except ValueError:
        return None


def _scheduled(frame: FrameType | None) -> tuple[float, float | None, str] | None:
    """(scheduled epoch seconds, the schedule's period or None, scheduler) from the first
    scheduler frame at most ``_DEPTH`` levels up, or None."""
    for _ in range(_DEPTH):
        if frame is None:
            return None
        where = (frame.f_globals.get("__name__"), frame.f_code.co_name)
        try:
            if where in _APSCHEDULER:
                return _from_apscheduler(frame.f_locals)
            if where == ("schedule", "run"):
                return _from_schedule(frame.f_locals)
        except Exception:  # noqa: BLE001 - another version's frames: no scheduler found
            return None
        frame = frame.f_back
    return None


def _from_apscheduler(names: dict[str, Any]) -> tuple[float, float | None, str] | None:
    run_time, job = names.get("run_time"), names.get("job")
    if run_time is None or not hasattr(run_time, "timestamp"):
        return None
    interval: Any = getattr(getattr(job, "trigger", None), "interval", None)
    period = float(interval.total_seconds()) if hasattr(interval, "total_seconds") else None
    return float(run_time.timestamp()), period, "apscheduler"


def _from_schedule(names: dict[str, Any]) -> tuple[float, float | None, str] | None:
    job: Any = names.get("self")
    next_run = getattr(job, "next_run", None)
    if next_run is None or not hasattr(next_run, "timestamp") or not hasattr(job, "job_func"):
        return None
    # Its period, as Job._schedule_next_run makes it (the shortest, for a random interval).
    period = (
        None if getattr(job, "at_time", None) is not None else dt.timedelta(**{job.unit: job.interval}).total_seconds()
    )
    return float(next_run.timestamp()), period, "schedule"
