"""Worker tasks: up to ``concurrency`` tasks in an anyio task group (asyncio or trio),
awaiting submitted slots in order, on the caller's own event loop. A task is started only
when a slot finds no idle one: never more tasks than slots in flight.

Tasks are started one after the other: the next once the last has begun its slot (so it
runs once that slot's call first yields to the loop). Started all at once, each task runs
its call's CPU-bound start (a new ``httpx.AsyncClient`` per item: 25 ms of SSL set-up)
before the first one's connected request can go out: 16 of them held the first request
back 0.4 s. One at a time, the first request leaves after about two of them."""

from __future__ import annotations

import contextvars
from collections import deque
from typing import Any, TypeVar

import anyio
from anyio.abc import TaskGroup

from ._slot import AsyncAttempt, Cancelled, Slot, check_positive

__all__ = ["AsyncWorkers"]

R = TypeVar("R")


class AsyncWorkers:
    """``concurrency`` tasks in a task group, awaiting submitted slots in order.

    Slots wait in a deque; idle workers sleep on one shared event, replaced each time it
    wakes them (the event loop runs one task at a time, so no wake-up is lost).
    """

    def __init__(self, task_group: TaskGroup, concurrency: int, *, attempt: AsyncAttempt | None = None) -> None:
        check_positive("concurrency", concurrency, allow_none=False)
        self.concurrency = int(concurrency)
        self._attempt = attempt
        self._group = task_group
        self._queue: deque[Slot[Any]] = deque()
        self._wakeup = anyio.Event()
        self._waiting = 0
        self._started = 0
        self._due = 0  # tasks to start, each once the last started has begun its slot
        self._starting = False  # a task was started and has not begun its slot yet
        self._closed = False
        self._context: contextvars.Context | None = None

    def start(self) -> None:
        """Take the caller's current context for the workers, however late each is started
        (the loop's own context variables, set after this, are not theirs)."""
        self._context = contextvars.copy_context()

    def submit(self, slot: Slot[Any]) -> Slot[Any]:
        """Queue a slot whose ``fn`` returns an awaitable; a worker task awaits it."""
        slot.done = False  # True once run; an event is made only if someone has to wait
        self._queue.append(slot)
        self._wake_one()
        return slot

    def _wake_one(self) -> None:
        """A slot was queued: wake an idle worker, or start one more."""
        if self._waiting:
            self._wakeup.set()
            self._wakeup = anyio.Event()
        elif self._started + self._due < self.concurrency:
            self._due += 1
            if not self._starting:
                self._start_next()

    def _start_next(self) -> None:
        self._due -= 1
        self._started += 1
        self._starting = True
        if self._context is None:
            self._group.start_soon(self._work)
        else:  # a task copies the context it is created in
            self._context.run(self._group.start_soon, self._work)

    def _begun(self) -> None:
        self._starting = False
        if self._due and self._queue:
            self._start_next()
        else:
            self._due = 0

    async def _work(self) -> None:
        queue_ = self._queue
        attempt = self._attempt
        first = True
        while True:
            while queue_:
                slot = queue_.popleft()
                if first:  # begun: the next task starts (and runs once this call yields)
                    first = False
                    self._begun()
                if slot.claim():
                    if attempt is not None:
                        delay = await attempt(slot)
                        if delay is not None and slot.rearm():
                            self._group.start_soon(self._retry_after, delay, slot)
                            continue
                    else:
                        await slot.arun()
                else:
                    slot.error = Cancelled()
                waiter = slot.done
                slot.done = True
                if waiter is not False:
                    waiter.set()
            if first:  # nothing left for it: let the next start when a slot needs one
                first = False
                self._begun()
            if self._closed:
                return
            self._waiting += 1
            try:
                await self._wakeup.wait()
            finally:
                self._waiting -= 1

    async def _retry_after(self, delay: float, slot: Slot[Any]) -> None:
        """Put a retried slot back at the front of the line after ``delay`` (no worker waits)."""
        await anyio.sleep(delay)
        self._queue.appendleft(slot)
        self._wake_one()

    def close(self) -> None:
        """No more slots: the workers stop once the queued ones are done."""
        self._closed = True
        self._wakeup.set()

    @staticmethod
    async def done_within(slot: Slot[Any], seconds: float) -> bool:
        """Whether the slot's call is done within ``seconds`` (it runs on either way)."""
        if slot.done is not True:
            if slot.done is False:
                slot.done = anyio.Event()
            with anyio.move_on_after(seconds):
                await slot.done.wait()
        return slot.done is True

    @staticmethod
    async def wait(slot: Slot[R], timeout: float | None = None) -> R:
        """Wait until the slot ran, then return its value or raise its exception.

        A slot already done answers at once, without a trip through the event loop (as an
        awaited call that completes without suspending would).
        """
        if slot.done is not True:
            if slot.done is False:
                slot.done = anyio.Event()
            waiter = slot.done
            if timeout is None:
                await waiter.wait()
            else:
                with anyio.move_on_after(timeout):
                    await waiter.wait()
                if slot.done is not True:
                    slot.cancel()
                    raise TimeoutError(f"the call did not finish within {timeout:g} s")
        return slot.outcome()
