"""_drive.py: one plan, driven by a thread or by an anyio task, with the same outcome."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from typing import Any

import anyio
import pytest

from sched_accel._policy import GO, Plan, run_async, run_sync


class Place:
    """A ticket as a plan yields it: something to wake."""

    def __init__(self) -> None:
        self.wake: Callable[[], None] = lambda: None


def plan(log: list[object], *, wait: float = 0.0, ticket: Place | None = None) -> Plan[str]:
    """Yield a ticket and a wait if asked, then GO; return what the action gave, and log each step."""
    if ticket is not None:
        yield ticket
        log.append("ticket given a wake")
    if wait:
        yield wait
        log.append("waited")
    try:
        result = yield GO
    except ValueError as exc:
        log.append(f"saw {exc}")
        raise
    finally:
        log.append("cleaned up")
    return f"plan got {result}"


def test_run_sync_sends_the_action_s_result_and_returns_the_plan_s_value() -> None:
    """GO runs the action; its result goes into the plan; the plan's return value is the driver's."""
    log: list[object] = []
    assert run_sync(plan(log), lambda x: x * 2, 21) == "plan got 42"
    assert log == ["cleaned up"]


def test_run_sync_throws_the_action_s_exception_into_the_plan() -> None:
    """An action that raises: the plan sees the exception where it yielded GO, and it propagates."""
    log: list[object] = []

    def boom() -> None:
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        run_sync(plan(log), boom)
    assert log == ["saw boom", "cleaned up"]


def test_run_sync_waits_the_seconds_a_plan_yields() -> None:
    """A number yielded is a wait of that long (nobody wakes it)."""
    log: list[object] = []
    started = time.perf_counter()
    run_sync(plan(log, wait=0.05), lambda: "x")
    assert time.perf_counter() - started >= 0.045
    assert log == ["waited", "cleaned up"]


def test_a_woken_thread_stops_waiting_at_once() -> None:
    """A ticket's wake ends the wait early, from another thread; a wake before the wait is kept."""
    ticket = Place()
    log: list[object] = []

    def forever() -> Plan[str]:
        yield ticket
        yield math.inf
        log.append("woken")
        return "done"

    timer = threading.Timer(0.05, lambda: ticket.wake())
    timer.start()
    assert run_sync(forever()) == "done"
    timer.join()
    assert log == ["woken"]

    early = Place()

    def woken_before() -> Plan[str]:
        yield early
        early.wake()  # freed before this plan waits: the wait must end at once
        early.wake()  # twice is harmless
        yield math.inf
        return "kept"

    assert run_sync(woken_before()) == "kept"


def test_a_plan_is_closed_when_its_wait_is_interrupted() -> None:
    """An exception out of the driver (a wait cut short) closes the plan: its cleanup runs."""
    log: list[object] = []

    def cleanup_only() -> Plan[None]:
        try:
            yield GO
        finally:
            log.append("closed")

    def interrupt() -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_sync(cleanup_only(), interrupt)
    assert log == ["closed"]


@pytest.mark.anyio
async def test_run_async_drives_the_same_plan() -> None:
    """The task driver: the same steps, the same outcome, exceptions thrown in the same place."""
    log: list[object] = []

    async def double(x: int) -> int:
        await anyio.sleep(0)
        return x * 2

    assert await run_async(plan(log, wait=0.01, ticket=Place()), double, 21) == "plan got 42"
    assert log == ["ticket given a wake", "waited", "cleaned up"]

    async def boom() -> Any:
        raise ValueError("boom")

    log.clear()
    with pytest.raises(ValueError, match="boom"):
        await run_async(plan(log), boom)
    assert log == ["saw boom", "cleaned up"]


@pytest.mark.anyio
async def test_a_task_is_woken_from_another_thread() -> None:
    """A ticket's wake from a thread reaches a task waiting on the event loop."""
    ticket = Place()

    def forever() -> Plan[str]:
        yield ticket
        yield math.inf
        return "woken"

    async def act() -> None:
        pass

    timer = threading.Timer(0.05, lambda: ticket.wake())
    timer.start()
    with anyio.fail_after(5):
        assert await run_async(forever(), act) == "woken"
    timer.join()


@pytest.mark.anyio
async def test_a_cancelled_task_closes_its_plan() -> None:
    """Cancelled while waiting, the plan's cleanup runs (a limiter's place in line is given up)."""
    log: list[object] = []

    def waits() -> Plan[None]:
        try:
            yield math.inf
        finally:
            log.append("closed")

    async def act() -> None:
        pass

    with anyio.move_on_after(0.05):
        await run_async(waits(), act)
    assert log == ["closed"]
