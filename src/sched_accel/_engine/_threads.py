"""Worker threads: ``concurrency`` daemon threads running submitted slots in order.

Whoever submitted a slot waits for it alone (its ``done`` lock). A slot that the
``attempt`` function asks to retry goes to one timer thread, and when due is served
before any fresh slot: the loop is usually waiting for it.
"""

from __future__ import annotations

import heapq
import itertools
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any, TypeVar

from ._slot import Attempt, Cancelled, Slot, check_positive

__all__ = ["ThreadWorkers"]

R = TypeVar("R")

_WAKE: Any = object()  # queued when a retried slot is due, so that an idle worker looks


class ThreadWorkers:
    """Up to ``concurrency`` daemon threads running submitted slots in order; a thread is
    started only when a slot finds none idle (never more threads than slots in flight).

    With an ``attempt`` function, a slot it asks to retry is handed to one timer thread
    and, when due, served before any fresh slot: the loop is usually waiting for it.
    """

    def __init__(self, concurrency: int, *, name: str = "sched_accel", attempt: Attempt | None = None) -> None:
        check_positive("concurrency", concurrency, allow_none=False)
        self.concurrency = int(concurrency)
        self.name = name
        self._queue: queue.SimpleQueue[Slot[Any] | None] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._idle = 0  # threads waiting for a slot (under _lock)
        self._lock = threading.Lock()
        self._closed = False
        self._attempt = attempt
        self._due: deque[Slot[Any]] = deque()  # retried slots whose wait is over
        self._timer: _Timer | None = None

    def submit(self, slot: Slot[Any]) -> Slot[Any]:
        """Queue a slot; a worker thread runs it. Wait with :meth:`wait`."""
        done = threading.Lock()
        done.acquire()
        slot.done = done
        with self._lock:
            start = self._idle <= 0 and len(self._threads) < self.concurrency
            if start:
                thread = threading.Thread(target=self._work, name=f"{self.name}-{len(self._threads)}", daemon=True)
                self._threads.append(thread)
            else:
                self._idle -= 1  # an idle thread takes it (below 0: slots queued for busy threads)
        if start:
            thread.start()
        self._queue.put(slot)
        return slot

    def _work(self) -> None:
        get = self._queue.get
        due = self._due
        attempt = self._attempt
        lock = self._lock
        waited = False  # a new thread's first slot is the one it was started for
        while True:
            if waited:
                with lock:
                    self._idle += 1
            waited = True
            slot = get()
            if slot is None or slot is _WAKE:
                with lock:  # not a slot that counted on this thread: it is not idle now
                    self._idle -= 1
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
                slot.error = Cancelled()
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
            slot.error = Cancelled()
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
                    slot.error = Cancelled()
                slot.done.release()
        while self._due:
            slot = self._due.popleft()
            if slot.cancel():
                slot.error = Cancelled()
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
