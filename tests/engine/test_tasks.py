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
