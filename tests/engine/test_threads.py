"""_threads.py: worker threads, and the timer that hands retried slots back without a worker waiting."""

from __future__ import annotations

import time

import pytest

from sched_accel._engine import Slot, ThreadWorkers

from .helpers import Flaky


def test_thread_workers_retry_without_holding_a_worker() -> None:
    """A retried slot waits in the timer, not in a worker: the other items go on meanwhile."""
    """One worker: while item 0 waits 0.2 s for its retry, the worker runs items 1-3; item 0 comes
    back first in line when due, and its consumer gets the value."""
    flaky = Flaky(bad=0, fails=2, delay=0.1)
    workers = ThreadWorkers(1, attempt=flaky.decide)
    try:
        slots = [workers.submit(Slot(lambda x: x, (i,), {})) for i in range(4)]
        assert [ThreadWorkers.wait(slot, 5) for slot in slots] == [0, 10, 20, 30]
    finally:
        workers.close()
    order = [item for item, _ in flaky.started]
    assert order[:4] == [0, 1, 2, 3] and order[4:] == [0, 0]


def test_thread_workers_close_ends_waiting_retries_as_cancelled() -> None:
    """Closing the workers ends a slot still waiting for its retry: it is cancelled, not left hanging."""
    flaky = Flaky(bad=0, fails=1, delay=30)
    workers = ThreadWorkers(2, attempt=flaky.decide)
    slot = workers.submit(Slot(lambda x: x, (0,), {}))
    assert not ThreadWorkers.done_within(slot, 0.1)
    workers.close()
    assert ThreadWorkers.done_within(slot, 1)
    assert type(slot.error).__name__ == "Cancelled"


def test_a_cancelled_slot_is_not_retried() -> None:
    """A slot its waiter gave up on (a timeout) is never attempted again."""
    """The consumer gave up on the slot (its timeout): the failed attempt is not repeated."""
    flaky = Flaky(bad=0, fails=5, delay=0.05)
    workers = ThreadWorkers(1, attempt=flaky.decide)
    try:
        slot = workers.submit(Slot(lambda x: x, (0,), {}))
        with pytest.raises(TimeoutError):
            ThreadWorkers.wait(slot, 0.01)
        time.sleep(0.3)
    finally:
        workers.close()
    assert len(flaky.started) <= 2


def test_no_more_threads_than_slots_in_flight() -> None:
    """A huge concurrency starts a thread per slot in flight; an idle thread takes the next."""
    import threading

    gate = threading.Event()
    workers = ThreadWorkers(10_000, name="bounded")
    slots = [workers.submit(Slot(lambda i: gate.wait(5) and i, (i,), {})) for i in range(12)]
    gate.set()
    assert [ThreadWorkers.wait(slot, 5) for slot in slots] == list(range(12))
    assert len(workers._threads) == 12
    for i in range(20):  # one at a time: an idle thread takes each
        assert ThreadWorkers.wait(workers.submit(Slot(lambda x: x, (i,), {})), 5) == i
    assert len(workers._threads) == 12
    workers.close()
