"""_probe.py: stepping aside when calls are cheaper than fanning out, and coming back when they wait."""

from __future__ import annotations

import time

from sched_accel._prefetch import _probe
from sched_accel._prefetch._probe import RESUME_AFTER, StepAside, waited


def test_a_quick_probe_steps_aside() -> None:
    """A probe done within the probe time: the run calls directly."""
    step = StepAside()
    assert step.probing is None
    assert step.probed(quick=True) is False
    assert (step.aside, step.said_slow, step.probing) == (True, False, False)
    assert step.timing


def test_a_slow_probe_prefetches_on() -> None:
    """A probe still running after the probe time: the run fans out, and says the calls are slow."""
    step = StepAside()
    assert step.probed(quick=False) is True
    assert (step.aside, step.said_slow) == (False, True)
    assert not step.timing


def test_a_zero_probe_time_never_steps_aside(monkeypatch: object) -> None:
    """PROBE_SECONDS = 0 (the benchmarks' 'no step-aside'): even a quick probe prefetches on."""
    step = StepAside()
    step.seconds = 0
    assert step.probed(quick=True) is True


def test_direct_calls_that_wait_resume_prefetching() -> None:
    """RESUME_AFTER direct calls waiting RESUME_SECONDS or more on average: prefetching resumes."""
    step = StepAside()
    step.probed(quick=True)
    verdicts = [step.timed(0.01) for _ in range(RESUME_AFTER)]
    assert verdicts == [None] * (RESUME_AFTER - 1) + [True]
    assert (step.aside, step.resumed, step.said_slow) == (False, True, True)


def test_direct_calls_that_only_compute_stay_aside() -> None:
    """Direct calls that hardly wait: the run stays aside, and stops timing them."""
    step = StepAside()
    step.probed(quick=True)
    verdicts = [step.timed(0.0) for _ in range(RESUME_AFTER)]
    assert verdicts[-1] is False
    assert step.aside and not step.timing


def test_a_run_that_skips_the_probe() -> None:
    """After a slow probe, the next runs of the process fan out at once (no probe, and say so)."""
    step = StepAside(probe=False)
    assert (step.probing, step.skipped) == (False, True)


def test_waited_is_wall_time_minus_cpu_time() -> None:
    """Sleeping counts as waiting; computing does not."""
    started, cpu = time.perf_counter(), time.thread_time()
    time.sleep(0.02)
    assert waited(started, cpu) >= 0.015
    started, cpu = time.perf_counter(), time.thread_time()
    sum(range(200_000))
    assert waited(started, cpu) < 0.01
    assert _probe.PROBE_SECONDS > 0


def test_stopping_calls_directly_without_timing() -> None:
    """After a failure of ours the run calls directly and never times (or resumes) again."""
    step = StepAside()
    step.stop()
    assert step.aside and not step.timing and step.probing is False
