"""The engine: a bounded, ordered, streaming concurrent map, for threads and for anyio.

Work is a stream of :class:`Slot` objects, each one call. ``concurrency`` workers (threads,
or tasks on the running event loop) take slots in the order they were submitted and run
them; whoever submitted a slot waits for it alone. Nothing is created per item but the
slot itself, and the submitter never runs more than ``window`` slots ahead of what it has
consumed, so memory is O(window), never O(N).

``map`` and ``amap`` are the public face, for replace-mode authors; prefetch mode drives
the same workers from inside the patched loop.
"""

from __future__ import annotations

import heapq
import itertools
import math
import queue
import threading
import time
from collections import deque
from collections.abc import (
    AsyncGenerator,
    AsyncIterator,
    Awaitable,
    Callable,
    Generator,
    Iterable,
    Iterator,
)
from contextlib import asynccontextmanager, closing
from typing import Any, Generic, TypeVar

import anyio
from anyio.abc import TaskGroup

__all__ = ["AsyncAttempt", "AsyncWorkers", "Attempt", "Slot", "ThreadWorkers", "amap", "check_positive", "map"]

T = TypeVar("T")
R = TypeVar("R")

_PENDING: Any = object()


class _Cancelled(Exception):
    """Stands for the outcome of a call that was cancelled before it started."""


def check_positive(name: str, value: float | None, *, allow_none: bool = True) -> None:
    """Raise ValueError naming the argument unless ``value`` is a positive number."""
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0 or value != value:
        raise ValueError(f"{name} must be a positive number, got {value!r}")


class Slot(Generic[R]):
    """One call and, once run, its value or its exception.

    A slot may be attempted more than once (a retry policy re-queues it after a failure);
    ``attempts``, ``first_started``, ``host`` and ``bypassed`` are that policy's notes.
    """

    __slots__ = (
        "_unclaimed",
        "abandoned",
        "args",
        "attempts",
        "bypassed",
        "done",
        "error",
        "first_started",
        "fn",
        "host",
        "item",
        "kwargs",
        "value",
    )

    def __init__(self, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any], item: Any = None) -> None:
        self.fn = fn
        self.args = args
        self.kwargs = kwargs
        self.item = item
        self.value: Any = _PENDING
        self.error: BaseException | None = None
        self._unclaimed = [True]  # popped once: by the worker that runs it, or by cancel()
        self.done: Any = None  # a held lock (threads) or an anyio.Event (async)
        self.abandoned = False  # cancel() came after the call had started: never retry it
        self.attempts = 0
        self.first_started = 0.0
        self.host: str | None = None  # the upstream host of its last HTTP request, if any
        self.bypassed = False  # that host's circuit was open: no retry

    def claim(self) -> bool:
        """For a worker: True if the call is to run now (it was not cancelled)."""
        try:
            self._unclaimed.pop()  # atomic: only one of claim() and cancel() wins
        except IndexError:
            return False
        return True

    def cancel(self) -> bool:
        """Make sure the call never starts; False if it had already started (it is then
        not attempted again)."""
        try:
            self._unclaimed.pop()
        except IndexError:
            self.abandoned = True
            return False
        return True

    def rearm(self) -> bool:
        """Make a failed slot claimable again, for another attempt; False if abandoned."""
        if self.abandoned:
            return False
        self.error = None
        self._unclaimed = [True]
        return True

    def run(self) -> None:
        """Run the call, keeping its value or exception (for a worker)."""
        try:
            self.value = self.fn(*self.args, **self.kwargs)
        except BaseException as exc:  # kept, re-raised where the call is consumed
            self.error = exc

    def outcome(self) -> R:
        """The value, or raise the exception, exactly as the call itself would have."""
        if self.error is not None:
            raise self.error
        return self.value  # type: ignore[no-any-return]


#: One attempt of a slot's call, run by a worker: None when the slot is done (its value or
#: error is final), else the seconds after which to attempt it again. The worker does not
#: wait those seconds: the slot is put back in line when they have passed.
Attempt = Callable[[Slot[Any]], float | None]
AsyncAttempt = Callable[[Slot[Any]], Awaitable[float | None]]

_WAKE: Any = object()  # queued when a retried slot is due, so that an idle worker looks


class ThreadWorkers:
    """``concurrency`` daemon threads running submitted slots in order; started lazily.

    With an ``attempt`` function, a slot it asks to retry is handed to one timer thread
    and, when due, served before any fresh slot: the loop is usually waiting for it.
    """

    def __init__(self, concurrency: int, *, name: str = "sched_accel", attempt: Attempt | None = None) -> None:
        check_positive("concurrency", concurrency, allow_none=False)
        self.concurrency = int(concurrency)
        self.name = name
        self._queue: queue.SimpleQueue[Slot[Any] | None] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._closed = False
        self._attempt = attempt
        self._due: deque[Slot[Any]] = deque()  # retried slots whose wait is over
        self._timer: _Timer | None = None

    def submit(self, slot: Slot[Any]) -> Slot[Any]:
        """Queue a slot; a worker thread runs it. Wait with :meth:`wait`."""
        done = threading.Lock()
        done.acquire()
        slot.done = done
        if len(self._threads) < self.concurrency:
            thread = threading.Thread(target=self._work, name=f"{self.name}-{len(self._threads)}", daemon=True)
            self._threads.append(thread)
            thread.start()
        self._queue.put(slot)
        return slot

    def _work(self) -> None:
        get = self._queue.get
        due = self._due
        attempt = self._attempt
        while True:
            slot = get()
            if slot is None:
                return
            while due:
                try:
                    self._run(due.popleft())
                except IndexError:  # another worker took it
                    break
            if slot is _WAKE:
                continue
            if attempt is not None:
                self._run(slot)
            elif slot.claim():
                slot.run()
                slot.done.release()
            else:
                slot.error = _Cancelled()
                slot.done.release()

    def _run(self, slot: Slot[Any]) -> None:
        """One attempt through the ``attempt`` function; a retry goes to the timer."""
        if slot.claim():
            assert self._attempt is not None
            delay = self._attempt(slot)
            error = slot.error
            if delay is not None and slot.rearm():
                if self._timer is None:
                    with _TIMER_LOCK:
                        if self._timer is None:
                            self._timer = _Timer(self._when_due, f"{self.name}-retries")
                if self._timer.add(delay, slot):
                    return
                slot.error = error  # closing: the last failure stands
        else:
            slot.error = _Cancelled()
        slot.done.release()

    def _when_due(self, slot: Slot[Any]) -> None:
        self._due.append(slot)
        self._queue.put(_WAKE)

    @staticmethod
    def done_within(slot: Slot[Any], seconds: float) -> bool:
        """Whether the slot's call is done within ``seconds`` (it runs on either way)."""
        if slot.done.acquire(timeout=seconds):
            slot.done.release()
            return True
        return False

    @staticmethod
    def wait(slot: Slot[R], timeout: float | None = None) -> R:
        """Block until the slot ran, then return its value or raise its exception.

        Raises :class:`TimeoutError` after ``timeout`` seconds (the call itself runs on).
        """
        if not slot.done.acquire(timeout=-1 if timeout is None else timeout):
            slot.cancel()
            raise TimeoutError(f"the call did not finish within {timeout:g} s")
        slot.done.release()
        return slot.outcome()

    def close(self) -> None:
        """Let the workers finish what they hold and stop; queued slots are skipped, and so
        are retries still waiting (their slots end as cancelled)."""
        if self._closed:
            return
        self._closed = True
        if self._timer is not None:
            for slot in self._timer.stop():
                if slot.cancel():
                    slot.error = _Cancelled()
                slot.done.release()
        while self._due:
            slot = self._due.popleft()
            if slot.cancel():
                slot.error = _Cancelled()
            slot.done.release()
        for _ in self._threads:
            self._queue.put(None)


_TIMER_LOCK = threading.Lock()


class _Timer:
    """One daemon thread handing each slot to ``due`` once its delay has passed."""

    def __init__(self, due: Callable[[Slot[Any]], None], name: str) -> None:
        self._due = due
        self._heap: list[tuple[float, int, Slot[Any]]] = []
        self._order = itertools.count()
        self._condition = threading.Condition()
        self._stopped = False
        threading.Thread(target=self._run, name=name, daemon=True).start()

    def add(self, delay: float, slot: Slot[Any]) -> bool:
        """Hand ``slot`` to ``due`` after ``delay`` seconds; False once stopped."""
        with self._condition:
            if self._stopped:
                return False
            heapq.heappush(self._heap, (time.monotonic() + delay, next(self._order), slot))
            self._condition.notify()
            return True

    def stop(self) -> list[Slot[Any]]:
        """Stop; the slots still waiting are returned, never handed over."""
        with self._condition:
            self._stopped = True
            waiting = [entry[2] for entry in self._heap]
            self._heap.clear()
            self._condition.notify()
            return waiting

    def _run(self) -> None:
        with self._condition:
            while not self._stopped:
                if not self._heap:
                    self._condition.wait()
                    continue
                wait = self._heap[0][0] - time.monotonic()
                if wait > 0:
                    self._condition.wait(wait)
                    continue
                slot = heapq.heappop(self._heap)[2]
                self._due(slot)


def map(  # noqa: A001 - the name says what it does, like the builtin
    fn: Callable[[T], R],
    items: Iterable[T],
    *,
    concurrency: int,
    window: int | None = None,
    timeout: float | None = None,
) -> Iterator[R]:
    """``fn(item)`` for each item, ``concurrency`` at a time in threads, yielded in input order.

    Items are pulled lazily, at most ``window`` (default ``2 * concurrency``) ahead of the
    consumer. An item whose call raised raises at its place in the output; the items after
    it are not started once the iterator is closed. ``timeout`` bounds each call
    (:class:`TimeoutError`).
    """
    check_positive("concurrency", concurrency, allow_none=False)
    check_positive("window", window)
    check_positive("timeout", timeout)
    return _map(fn, items, int(concurrency), int(window or 2 * concurrency), timeout)


def _ordered(
    fn: Callable[[T], Any], items: Iterable[T], submit: Callable[[Slot[Any]], Slot[Any]], window: int
) -> Generator[Slot[Any], None, None]:
    """Slots for ``fn(item)``, in input order, with at most ``window`` submitted ahead of the
    one handed out; the ones still pending are cancelled when the generator is closed."""
    pending: deque[Slot[Any]] = deque()
    source = iter(items)
    empty: dict[str, Any] = {}
    try:
        for item in source:
            pending.append(submit(Slot(fn, (item,), empty)))
            if len(pending) >= window:
                break
        while pending:
            slot = pending.popleft()
            for item in source:
                pending.append(submit(Slot(fn, (item,), empty)))
                break
            yield slot
    finally:
        for slot in pending:
            slot.cancel()


def _map(fn: Callable[[T], R], items: Iterable[T], concurrency: int, window: int, timeout: float | None) -> Iterator[R]:
    workers = ThreadWorkers(concurrency, name="sched_accel-map")
    try:
        with closing(_ordered(fn, items, workers.submit, window)) as slots:
            for slot in slots:
                yield workers.wait(slot, timeout)
    finally:
        workers.close()


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
        self._closed = False

    def start(self) -> None:
        """Start every worker now (in the caller's current context), not at first submit."""
        while self._started < self.concurrency:
            self._started += 1
            self._group.start_soon(self._work)

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
        elif self._started < self.concurrency:
            self._started += 1
            self._group.start_soon(self._work)

    async def _work(self) -> None:
        queue_ = self._queue
        attempt = self._attempt
        while True:
            while queue_:
                slot = queue_.popleft()
                if slot.claim():
                    if attempt is not None:
                        delay = await attempt(slot)
                        if delay is not None and slot.rearm():
                            self._group.start_soon(self._retry_after, delay, slot)
                            continue
                    else:
                        try:
                            slot.value = await slot.fn(*slot.args, **slot.kwargs)
                        except Exception as exc:
                            slot.error = exc
                else:
                    slot.error = _Cancelled()
                waiter = slot.done
                slot.done = True
                if waiter is not False:
                    waiter.set()
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


@asynccontextmanager
async def amap(
    fn: Callable[[T], Awaitable[R]],
    items: Iterable[T],
    *,
    concurrency: int,
    window: int | None = None,
    timeout: float | None = None,
) -> AsyncIterator[AsyncIterator[R]]:
    """``async with amap(fn, items, concurrency=8) as results: async for r in results``.

    ``await fn(item)`` for each item, ``concurrency`` at a time on the running event loop
    (asyncio or trio), yielded in input order, at most ``window`` ahead of the consumer.
    """
    check_positive("concurrency", concurrency, allow_none=False)
    check_positive("window", window)
    check_positive("timeout", timeout)
    limit = int(window or 2 * concurrency)
    error: Exception | None = None
    async with anyio.create_task_group() as group:
        workers = AsyncWorkers(group, concurrency)

        async def results() -> AsyncGenerator[R, None]:
            with closing(_ordered(fn, items, workers.submit, limit)) as slots:
                for slot in slots:
                    yield await workers.wait(slot, timeout)

        stream = results()
        try:
            yield stream
        except Exception as exc:
            # Re-raised outside the task group: an item's exception, or the consumer's own,
            # leaves amap as itself, never wrapped in an ExceptionGroup.
            error = exc
        finally:
            await stream.aclose()
            workers.close()
            group.cancel_scope.cancel()
    if error is not None:
        try:
            raise error
        finally:
            error = None


def ideal_seconds(items: int, latency: float, concurrency: int) -> float:
    """ceil(N / C) * L: the time N calls of latency L take at concurrency C."""
    return math.ceil(items / concurrency) * latency
