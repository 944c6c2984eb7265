"""_process.py: the in-memory backend, on a fake clock (exact figures), alone in its process."""

from __future__ import annotations

import pytest

from sched_accel._coord import ProcessBackend
from sched_accel._coord._base import MAX_AGE

from ..conftest import FakeClock


def test_exact_waits_on_a_fake_clock(clock: FakeClock) -> None:
    """4/s burst 2: two at once, then 0.25 s; waiting 0.1 s leaves 0.15 s; then one per 0.25 s."""
    backend = ProcessBackend(clock=clock)
    assert [backend.admit("api", per_second=4, burst=2) for _ in range(2)] == [0.0, 0.0]
    assert backend.admit("api", per_second=4, burst=2) == pytest.approx(0.25)
    clock.advance(0.1)
    assert backend.admit("api", per_second=4, burst=2) == pytest.approx(0.15)
    clock.advance(0.15)
    assert backend.admit("api", per_second=4, burst=2) == 0.0
    assert backend.admit("api", per_second=4, burst=2) == pytest.approx(0.25)


def test_the_pause_and_the_rate_wait_the_longer(clock: FakeClock) -> None:
    """Paused for 0.1 s with the next slot 1 s away: the wait is the slot's."""
    backend = ProcessBackend(clock=clock)
    backend.admit("api", per_second=1, burst=1)
    backend.pause("api", 0.1)
    assert backend.admit("api", per_second=1, burst=1) == pytest.approx(1.0)
    backend.pause("api", 3)
    assert backend.admit("api", per_second=1, burst=1) == pytest.approx(3.0)


def test_a_learned_rate_ages_out(clock: FakeClock) -> None:
    """A rate told longer ago than MAX_AGE is not used: the host may have changed it."""
    backend = ProcessBackend(clock=clock)
    backend.learn_rate("api", 5)
    clock.advance(MAX_AGE)
    assert backend.learned_rate("api") == 5
    clock.advance(1)
    assert backend.learned_rate("api") is None


def test_instances_share_nothing() -> None:
    """Today's behaviour: each process backend is its own world."""
    one, two = ProcessBackend(), ProcessBackend()
    one.pause("api", 5)
    assert one.claim("job", 1, ttl=5) == 1
    assert two.paused_for("api") == 0.0 and two.claim("job", 1, ttl=5) == 1
