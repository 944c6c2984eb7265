"""A run that steps aside still serves the calls it already sent ahead (function level).

The property test (``test_prefetch_properties``) once made a per-item call three times where
the loop made it twice: with a record of the run before (some predictions held, never sent) and
an item the loop skipped, the probe was decided late, after a reanchor had filled the window;
the run then stepped aside, and the loop called itself an item whose call was already running
ahead. Seen 190 times in 960 runs beside CPU hogs before the fix, 0 after.
"""

from __future__ import annotations

from typing import Any

from sched_accel._engine import Slot
from sched_accel._prefetch import PrefetchRun
from sched_accel._report import RunReport
from sched_accel._settings import Target
from sched_accel._targets import TargetSpec


def fetch(item: int) -> int:  # pragma: no cover - never run: the slots are only submitted
    return item * 2


def started_run(items: list[int]) -> tuple[PrefetchRun, list[Slot[Any]]]:
    """A run whose first call was served, with the next calls sent ahead (submitted, not run)."""
    submitted: list[Slot[Any]] = []

    def submit(slot: Slot[Any]) -> Slot[Any]:
        submitted.append(slot)
        return slot

    target = Target(TargetSpec.parse("job:loop"), "prefetch", concurrency=1)
    run = PrefetchRun(RunReport(target), iter(items), submit, window=3, probe=False)
    assert run.serve(fetch, None, (items[0],), {}) is submitted[0]
    return run, submitted


def test_stepped_aside_a_call_already_sent_ahead_answers_its_item() -> None:
    run, submitted = started_run([1, 2, 3, 4])
    run.step.aside = True  # decided now: calls go directly from here on, but not these
    assert run.serve(fetch, None, (2,), {}) is submitted[1]
    assert run.serve(fetch, None, (3,), {}) is submitted[2]
    assert len(submitted) == 3  # nothing more is sent ahead
    assert run.serve(fetch, None, (4,), {}) is None  # never sent: the loop calls it itself
    assert run.hits == 3 and run.direct == 1


def test_stepped_aside_a_call_not_sent_ahead_goes_directly() -> None:
    run, submitted = started_run([1, 2, 3, 4])
    run.step.aside = True
    assert run.serve(fetch, None, (9,), {}) is None  # no prediction answers it: no reanchor either
    assert run.direct == 1 and len(submitted) == 3
