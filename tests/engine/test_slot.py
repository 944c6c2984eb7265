"""_slot.py: one call and its outcome; claim and cancel race, and exactly one wins."""

from __future__ import annotations

import threading

import pytest

from sched_accel._engine import Slot, check_positive


def test_a_slot_runs_its_call_and_keeps_the_value() -> None:
    """run() keeps the value; outcome() gives it back."""
    slot: Slot[int] = Slot(lambda x, y=0: x + y, (1,), {"y": 2})
    slot.run()
    assert slot.outcome() == 3


def test_a_slot_keeps_the_exception_and_raises_it_at_outcome() -> None:
    """An exception of the call is kept, raised when the outcome is asked for, as the call would."""

    def boom() -> None:
        raise KeyError("x")

    slot: Slot[None] = Slot(boom, (), {})
    slot.run()
    with pytest.raises(KeyError):
        slot.outcome()


def test_claim_and_cancel_race_one_winner() -> None:
    """Of claim() and cancel(), the first wins; a cancel after the claim marks the slot abandoned."""
    slot: Slot[None] = Slot(lambda: None, (), {})
    assert slot.cancel() is True
    assert slot.claim() is False
    started: Slot[None] = Slot(lambda: None, (), {})
    assert started.claim() is True
    assert started.cancel() is False
    assert started.abandoned and not started.rearm()


def test_many_threads_claim_a_slot_exactly_once() -> None:
    """Under contention exactly one claim succeeds."""
    for _ in range(50):
        slot: Slot[None] = Slot(lambda: None, (), {})
        wins: list[bool] = []
        barrier = threading.Barrier(8)

        def claim(barrier: threading.Barrier, wins: list[bool], slot: Slot[None]) -> None:
            barrier.wait()
            wins.append(slot.claim())

        threads = [threading.Thread(target=claim, args=(barrier, wins, slot)) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert wins.count(True) == 1


def test_rearm_makes_a_failed_slot_claimable_again() -> None:
    """A failed slot re-armed for another attempt forgets its error and can be claimed again."""
    slot: Slot[None] = Slot(lambda: None, (), {})
    assert slot.claim()
    slot.error = OSError("reset")
    assert slot.rearm()
    assert slot.error is None and slot.claim()


@pytest.mark.anyio
async def test_arun_keeps_the_value_or_the_exception() -> None:
    """arun() awaits the call; its exception is kept, as run() keeps it."""

    async def double(x: int) -> int:
        return 2 * x

    async def fail() -> None:
        raise ValueError("no")

    ok: Slot[int] = Slot(double, (4,), {})
    await ok.arun()
    assert ok.outcome() == 8
    bad: Slot[None] = Slot(fail, (), {})
    await bad.arun()
    assert isinstance(bad.error, ValueError)


@pytest.mark.parametrize("value", [0, -1, float("nan"), True, "3"])
def test_check_positive_names_the_argument(value: object) -> None:
    """A non-positive limit is a ValueError naming the argument."""
    with pytest.raises(ValueError, match="concurrency must be a positive number"):
        check_positive("concurrency", value, allow_none=False)  # type: ignore[arg-type]
