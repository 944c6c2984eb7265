"""_tasks.py: worker tasks in a task group, retries re-queued at the front without a worker waiting."""

from __future__ import annotations

import anyio
import pytest

from sched_accel._engine import AsyncWorkers, Slot

from .helpers import Flaky


@pytest.mark.anyio
async def test_async_workers_retry_without_holding_a_worker() -> None:
    """A retried slot goes back to the front of the line after its delay; no worker task waits for it."""
    flaky = Flaky(bad=0, fails=2, delay=0.05)
    async with anyio.create_task_group() as group:
        workers = AsyncWorkers(group, 1, attempt=flaky.adecide)
        slots = [workers.submit(Slot(lambda x: x, (i,), {})) for i in range(4)]
        with anyio.fail_after(5):
            assert [await AsyncWorkers.wait(slot) for slot in slots] == [0, 10, 20, 30]
        workers.close()
    order = [item for item, _ in flaky.started]
    assert order[:4] == [0, 1, 2, 3] and order[4:] == [0, 0]


@pytest.mark.anyio
async def test_no_more_tasks_than_slots_in_flight() -> None:
    """A huge concurrency starts a task per slot waiting, not per unit of concurrency, and
    an idle task takes the next slot instead of a new one being started."""

    held = anyio.Event()

    async def echo(x: int, hold: bool = False) -> int:
        if hold:  # not a sleep: under a slow tracer one could end before the twelfth starts
            await held.wait()
        return x

    async with anyio.create_task_group() as group:
        workers = AsyncWorkers(group, 10_000)
        workers.start()
        slots = [workers.submit(Slot(echo, (i, True), {})) for i in range(12)]
        with anyio.fail_after(10):
            while workers._started < 12:
                await anyio.sleep(0.001)
        held.set()
        assert [await AsyncWorkers.wait(slot) for slot in slots] == list(range(12))
        assert workers._started == 12
        for i in range(5):  # one at a time: the idle workers take them
            assert await AsyncWorkers.wait(workers.submit(Slot(echo, (i,), {}))) == i
        assert workers._started == 12
        workers.close()


@pytest.mark.anyio
async def test_tasks_start_one_after_the_other() -> None:
    """The next task starts once the last has begun its slot: a call that spends its start on
    the CPU does not hold back the one before it (its first await resumes before the rest)."""
    order: list[str] = []

    async def heavy(x: int) -> int:
        order.append(f"start {x}")
        await anyio.sleep(0)
        order.append(f"sent {x}")
        await anyio.sleep(0.01)
        return x

    async with anyio.create_task_group() as group:
        workers = AsyncWorkers(group, 8)
        workers.start()
        slots = [workers.submit(Slot(heavy, (i,), {})) for i in range(8)]
        assert [await AsyncWorkers.wait(slot) for slot in slots] == list(range(8))
        workers.close()
    assert order.index("sent 0") < order.index("start 2")  # not after all 8 started
    assert workers._started == 8


@pytest.mark.anyio
async def test_workers_started_late_run_in_the_context_of_start() -> None:
    """The loop's context variables, set after start(), are not seen by a worker started later."""
    import contextvars

    seen: contextvars.ContextVar[str] = contextvars.ContextVar("seen", default="unset")

    async def read() -> str:
        return seen.get()

    async with anyio.create_task_group() as group:
        workers = AsyncWorkers(group, 4)
        workers.start()
        token = seen.set("the loop's")
        try:
            assert await AsyncWorkers.wait(workers.submit(Slot(read, (), {}))) == "unset"
        finally:
            seen.reset(token)
        workers.close()
