"""_sleeps: a shadow's sleeps return at once; everyone else's, and our own reads', wait."""

from __future__ import annotations

import asyncio
import time

import anyio
import pytest
import trio
import wrapt

from sched_accel._patching import Patch, apply, existing
from sched_accel._prefetch import SleepSkipper
from sched_accel._shadow import Shadow, reading, shadowed
from sched_accel._shadow._wrapping import is_ours

from .helpers import in_thread

pytestmark = pytest.mark.usefixtures("active")


def test_time_sleep_in_a_shadow_thread_returns_at_once_while_the_main_thread_waits() -> None:
    """A shadow's time.sleep(5) is skipped; the main thread's sleep at the same time is real."""

    def job() -> None:
        for _ in range(3):
            time.sleep(5)

    started = time.monotonic()
    outcome = in_thread(job)
    assert time.monotonic() - started < 2 and outcome.shadow.skipped_sleeps == 3
    started = time.monotonic()
    time.sleep(0.05)
    assert time.monotonic() - started >= 0.05


def test_sleeps_inside_reading_are_real() -> None:
    """The policy's own waits, inside reading(), really wait."""

    def job() -> float:
        with reading():
            started = time.monotonic()
            time.sleep(0.05)
            return time.monotonic() - started

    outcome = in_thread(job)
    assert outcome.value >= 0.05 and outcome.shadow.skipped_sleeps == 0


@pytest.mark.anyio
async def test_a_shadow_tasks_sleeps_return_at_once_beside_a_normal_task_that_waits(
    anyio_backend: tuple[str, object],
) -> None:
    """On one event loop, the shadow task's anyio/asyncio/trio sleeps are skipped (still
    yielding), the normal task's are real."""
    shadow = Shadow()
    order: list[str] = []

    async def shadow_task() -> None:
        with shadowed(shadow):
            await anyio.sleep(30)
            order.append("shadow slept")
            if anyio_backend[0] == "trio":
                await trio.sleep(30)
            else:
                assert await asyncio.sleep(30, result="kept") == "kept"
            order.append("shadow done")

    async def normal_task() -> None:
        started = time.monotonic()
        await anyio.sleep(0.05)
        assert time.monotonic() - started >= 0.05
        order.append("normal done")

    started = time.monotonic()
    async with anyio.create_task_group() as group:
        group.start_soon(shadow_task)
        group.start_soon(normal_task)
    assert time.monotonic() - started < 5
    assert order == ["shadow slept", "shadow done", "normal done"]
    assert shadow.skipped_sleeps >= 2


def test_skip_sleeps_wrapper_and_ours_live_side_by_side() -> None:
    """SleepSkipper (skip_sleeps) goes on time.sleep above ours, is found, and comes off alone."""
    patch = Patch("test")
    skipper = SleepSkipper(False)
    assert apply(patch, time, "sleep", skipper, skipper.enabled) is not None
    try:
        assert existing(time, "sleep") is skipper
    finally:
        patch.remove()
    assert existing(time, "sleep") is None
    assert wrapt.find_wrapper(time.sleep, predicate=is_ours) is not None
    outcome = in_thread(lambda: time.sleep(5))
    assert outcome.shadow.skipped_sleeps == 1
