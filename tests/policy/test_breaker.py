"""_breaker.py: the one circuit breaker, as a host's circuit and as a target's breaker."""

from __future__ import annotations

import pytest

from sched_accel._policy import CircuitBreaker
from sched_accel._policy._hosts import host_circuit
from sched_accel._settings import HostSettings
from sched_accel._switch import target_breaker

from ..conftest import FakeClock


def host(name: str, *, failures: int, clock: FakeClock) -> CircuitBreaker:
    """A host's circuit with a 10 s cool-down on a fake clock."""
    circuit = host_circuit(name, HostSettings(breaker_failures=failures, breaker_cooldown=10))
    circuit.clock = clock
    return circuit


@pytest.fixture
def events(capture_events: list[str]) -> list[str]:
    """The lines logged during the test."""
    return capture_events


@pytest.fixture
def breaker(clock: FakeClock) -> CircuitBreaker:
    """A target's breaker that trips after 3 fallbacks and cools down for 60 s of fake time."""
    return target_breaker("jobs:update", threshold=3, cooldown=60.0, clock=clock)


def lines(captured: list[str], name: str) -> list[str]:
    """The captured lines of one event."""
    return [line for line in captured if line.startswith(f"sched_accel.{name} ")]


def trip(breaker: CircuitBreaker, times: int = 3) -> None:
    """Fallbacks in a row."""
    for _ in range(times):
        assert breaker.admit() != "open"
        breaker.record(False, reason="boom")


# -- as a host's circuit -------------------------------------------------------------------------


def test_circuit_opens_after_failures_in_a_row(clock: FakeClock, events: list[str]) -> None:
    """Three failures in a row open it; a success in between starts the count again."""
    circuit = host("api", failures=3, clock=clock)
    for ok in (False, False, True, False, False):
        assert circuit.admit() == "closed"
        circuit.record(ok)
    assert circuit.state == "closed"
    circuit.record(False)
    assert circuit.state == "open" and circuit.admit() == "open"
    assert any(line.startswith("sched_accel.circuit_open host=api failures=3") for line in events)


def test_circuit_half_opens_with_one_trial_and_closes_on_its_success(clock: FakeClock, events: list[str]) -> None:
    """After the cool-down one trial goes through, one at a time; its success closes the circuit."""
    circuit = host("api", failures=1, clock=clock)
    circuit.record(False)
    clock.now += 9.9
    assert circuit.admit() == "open"
    clock.now += 0.2
    assert circuit.admit() == "trial"
    assert circuit.state == "half-open"
    assert circuit.admit() == "open"  # one trial at a time
    circuit.record(True, trial=True)
    assert circuit.state == "closed" and circuit.admit() == "closed"
    assert [line.split(" ")[0] for line in events] == [
        "sched_accel.circuit_open",
        "sched_accel.circuit_half_open",
        "sched_accel.circuit_closed",
    ]


def test_failed_trial_opens_it_again_and_a_cancelled_one_is_given_back(clock: FakeClock) -> None:
    """A failed trial opens it for another cool-down; a cancelled trial lets the next caller be the trial."""
    circuit = host("api", failures=1, clock=clock)
    circuit.record(False)
    clock.now += 10
    assert circuit.admit() == "trial"
    circuit.record(False, trial=True)
    assert circuit.state == "open"
    assert circuit.admit() == "open"
    clock.now += 10
    assert circuit.admit() == "trial"
    circuit.give_back_trial()
    assert circuit.admit() == "trial"


def test_outcomes_of_requests_sent_while_open_do_not_count(clock: FakeClock) -> None:
    """Late answers of requests admitted before it opened change nothing while it is open."""
    circuit = host("api", failures=1, clock=clock)
    circuit.record(False)
    circuit.record(True)  # a bypassed request's success: the trial decides, not this
    assert circuit.state == "open"


# -- as a target's breaker ----------------------------------------------------------------------


def test_breaker_starts_closed(breaker: CircuitBreaker) -> None:
    """A new breaker lets calls through."""
    assert breaker.admit() == "closed"
    assert not breaker.is_open


def test_breaker_trips_after_threshold_fallbacks(breaker: CircuitBreaker, events: list[str]) -> None:
    """threshold-1 fallbacks in a row leave it closed; the threshold-th opens it, said once."""
    trip(breaker, 2)
    assert breaker.admit() == "closed"
    assert lines(events, "breaker_open") == []
    breaker.record(False, reason="RuntimeError: three")
    assert breaker.is_open
    assert breaker.admit() == "open"
    [line] = lines(events, "breaker_open")
    assert "target=jobs:update" in line
    assert "fallbacks=3" in line
    assert "cooldown=60.0" in line
    assert 'last_reason="RuntimeError: three"' in line


def test_success_resets_the_count(breaker: CircuitBreaker) -> None:
    """Fallbacks must be in a row: a success in between starts counting again."""
    trip(breaker, 2)
    breaker.record(True)
    trip(breaker, 2)
    assert breaker.admit() == "closed"


def test_breaker_stays_open_for_the_cooldown(breaker: CircuitBreaker, clock: FakeClock) -> None:
    """An open breaker refuses every call until the cool-down has passed."""
    trip(breaker)
    clock.advance(59.9)
    assert breaker.is_open
    assert breaker.admit() == "open"
    assert breaker.admit() == "open"


def test_half_open_after_cooldown(breaker: CircuitBreaker, clock: FakeClock, events: list[str]) -> None:
    """After the cool-down one run is let through as the trial, said once; others go around meanwhile."""
    trip(breaker)
    clock.advance(60.0)
    assert breaker.admit() == "trial"
    assert breaker.state == "half-open"
    assert len(lines(events, "breaker_half_open")) == 1
    assert breaker.admit() == "open"  # one trial at a time
    assert len(lines(events, "breaker_half_open")) == 1


def test_half_open_fallback_reopens_at_once(breaker: CircuitBreaker, clock: FakeClock, events: list[str]) -> None:
    """A fallback of the trial opens the breaker again for a full cool-down."""
    trip(breaker)
    clock.advance(61.0)
    assert breaker.admit() == "trial"
    breaker.record(False, trial=True, reason="still broken")
    assert breaker.admit() == "open"
    clock.advance(59.0)
    assert breaker.admit() == "open"
    clock.advance(1.0)
    assert breaker.admit() == "trial"
    second = lines(events, "breaker_open")[1]
    assert "fallbacks=4" in second  # in a row: the three, then the trial's
    assert 'last_reason="still broken"' in second


def test_half_open_success_closes(breaker: CircuitBreaker, clock: FakeClock, events: list[str]) -> None:
    """The trial's success closes the breaker: it takes threshold fallbacks to trip again."""
    trip(breaker)
    clock.advance(60.0)
    assert breaker.admit() == "trial"
    breaker.record(True, trial=True)
    assert len(lines(events, "breaker_closed")) == 1
    trip(breaker, 2)
    assert breaker.admit() == "closed"
    breaker.record(False)
    assert breaker.admit() == "open"


def test_success_when_closed_says_nothing(breaker: CircuitBreaker, events: list[str]) -> None:
    """A success while closed logs nothing."""
    breaker.record(True)
    assert lines(events, "breaker_closed") == []


def test_threshold_one_trips_on_first_fallback(clock: FakeClock) -> None:
    """With threshold=1 the first fallback opens the breaker."""
    breaker = target_breaker("t", threshold=1, cooldown=1.0, clock=clock)
    breaker.record(False, reason="boom")
    assert breaker.admit() == "open"


def test_reset_closes_an_open_breaker(breaker: CircuitBreaker) -> None:
    """reset() closes the breaker and forgets the count."""
    trip(breaker)
    breaker.reset()
    assert breaker.admit() == "closed"
    trip(breaker, 2)
    assert breaker.admit() == "closed"


@pytest.mark.parametrize(
    ("failures", "cooldown", "message"),
    [(0, 1.0, "failures must be a whole number >= 1"), (1, 0.0, "cooldown must be a number > 0")],
)
def test_breaker_limits_are_checked(failures: int, cooldown: float, message: str) -> None:
    """A non-positive threshold or cool-down is a ValueError naming the argument."""
    with pytest.raises(ValueError, match=message):
        CircuitBreaker("t", failures=failures, cooldown=cooldown)
