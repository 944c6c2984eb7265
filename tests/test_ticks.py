"""_ticks.py: a call's schedule tick, from the scheduled run time APScheduler 3.x or schedule
pass down the stack (their real code calling the job), else from the clock."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import schedule
from apscheduler.executors.base import run_coroutine_job, run_job
from apscheduler.schedulers.background import BackgroundScheduler

from sched_accel._ticks import Tick, caller, tick_of

UTC = dt.UTC
AT = dt.datetime(2026, 3, 1, 12, 0, 7, 250_000, tzinfo=UTC)  # 7.25 s past a whole minute


def probe(declared: float | None = None) -> Any:
    """A job that returns the tick of its own call, as the single_run wrapper reads it."""

    def job() -> Tick | None:
        return tick_of(declared, caller(0))

    return job


def run_by_apscheduler(job: Any, trigger: str, run_time: dt.datetime, **trigger_args: Any) -> Any:
    """What APScheduler's executor gets back from ``job`` run for ``run_time`` (its real run_job)."""
    scheduler = BackgroundScheduler(timezone=UTC)
    added = scheduler.add_job(job, trigger, misfire_grace_time=None, **trigger_args)
    [executed] = run_job(added, "default", [run_time], "apscheduler.executors.default")
    return executed.retval


def test_an_interval_job_is_ticked_by_its_interval_from_the_scheduled_time() -> None:
    """floor(scheduled time / interval): 12:00:07.25 with a 5 s interval is the window at 12:00:05."""
    tick = run_by_apscheduler(probe(), "interval", AT, seconds=5)
    assert tick == Tick(int(AT.timestamp() // 5), 5.0, "apscheduler")


def test_the_scheduled_time_is_used_not_the_clock() -> None:
    """A job started late (here: years late) still belongs to the tick it was scheduled for."""
    old = dt.datetime(2020, 1, 1, tzinfo=UTC)
    assert run_by_apscheduler(probe(), "interval", old, seconds=60).number == int(old.timestamp() // 60)


def test_a_cron_job_is_ticked_by_its_scheduled_second() -> None:
    """A cron trigger fires at the same instants everywhere: the scheduled second is the tick."""
    tick = run_by_apscheduler(probe(), "cron", AT, minute="*")
    assert tick == Tick(int(AT.timestamp()), 1.0, "apscheduler")


def test_a_declared_tick_wins_over_the_trigger() -> None:
    """tick = 60 on the target: the scheduled time in minutes, whatever the interval."""
    tick = run_by_apscheduler(probe(60), "interval", AT, seconds=5)
    assert tick == Tick(int(AT.timestamp() // 60), 60.0, "apscheduler")


def test_a_coroutine_job_run_by_apscheduler_is_ticked_too() -> None:
    """run_coroutine_job (the asyncio executor's) calls the job in its own frame; inside the
    running coroutine the awaiting frames are above it too."""
    scheduler = BackgroundScheduler(timezone=UTC)
    wrapper = probe()

    async def job() -> Tick | None:
        found: Tick | None = wrapper()
        return found

    added = scheduler.add_job(job, "interval", seconds=2, misfire_grace_time=None)
    [executed] = asyncio.run(run_coroutine_job(added, "default", [AT], "apscheduler.executors.default"))
    assert executed.retval == Tick(int(AT.timestamp() // 2), 2.0, "apscheduler")


def test_a_schedule_job_is_ticked_by_its_next_run_and_period() -> None:
    """schedule's Job.run calls the job before moving next_run on: its time and period are the tick's."""
    scheduler = schedule.Scheduler()
    job = scheduler.every(10).seconds.do(probe())
    job.next_run = dt.datetime(2026, 3, 1, 12, 0, 7)  # naive local time, as schedule keeps it
    ticks: list[Any] = []
    job.job_func = _recording(job.job_func, ticks)
    job.run()
    assert ticks == [Tick(int(dt.datetime(2026, 3, 1, 12, 0, 7).timestamp() // 10), 10.0, "schedule")]
    daily = scheduler.every().day.at("10:30").do(_recording(probe(), ticks))
    daily.run()
    assert ticks[-1].seconds == 1.0 and ticks[-1].source == "schedule"  # at a time: its second is the tick


def _recording(function: Any, into: list[Any]) -> Any:
    def record() -> None:
        into.append(function())

    return record


def test_without_a_scheduler_the_clock_and_the_declared_tick() -> None:
    """Called directly: floor(clock / tick) with a declared tick; None without one."""
    assert tick_of(30, caller(0), clock=lambda: 1_000_000.5) == Tick(33_333, 30.0, "clock")
    assert tick_of(None, caller(0)) is None


def test_what_cannot_be_a_tick_is_none() -> None:
    """A tick number a double cannot hold exactly is no tick (the call then runs)."""
    assert tick_of(0.01, None, clock=lambda: 1e300) is None
    assert caller(10_000) is None
