"""_switch.py: the breaker that switches a failing target off, and the switch asked per call."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from sched_accel._control import ALL, ControlFile
from sched_accel._switch import Breaker, Switch


class FakeClock:
    """A monotonic clock that only moves when told to."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    """A fake clock for the breaker: tests never sleep."""
    return FakeClock()


@pytest.fixture
def breaker(clock: FakeClock) -> Breaker:
    """A breaker that trips after 3 fallbacks and cools down for 60 s of fake time."""
    return Breaker("jobs:update", threshold=3, cooldown=60.0, clock=clock)


def lines(captured: list[str], name: str) -> list[str]:
    """The captured lines of one event."""
    return [line for line in captured if line.startswith(f"sched_accel.{name} ")]


# -- Breaker ----------------------------------------------------------------------------


def test_breaker_starts_closed(breaker: Breaker) -> None:
    """A new breaker lets calls through."""
    assert breaker.allows()
    assert not breaker.is_open


def test_breaker_trips_after_threshold_fallbacks(breaker: Breaker, capture_events: list[str]) -> None:
    """threshold-1 fallbacks in a row leave it closed; the threshold-th opens it, said once."""
    breaker.record_fallback("RuntimeError: one")
    breaker.record_fallback("RuntimeError: two")
    assert breaker.allows()
    assert lines(capture_events, "breaker_open") == []
    breaker.record_fallback("RuntimeError: three")
    assert breaker.is_open
    assert not breaker.allows()
    [line] = lines(capture_events, "breaker_open")
    assert "target=jobs:update" in line
    assert "fallbacks=3" in line
    assert "cooldown=60.0" in line
    assert 'last_reason="RuntimeError: three"' in line


def test_success_resets_the_count(breaker: Breaker) -> None:
    """Fallbacks must be in a row: a success in between starts counting again."""
    breaker.record_fallback("a")
    breaker.record_fallback("b")
    breaker.record_success()
    breaker.record_fallback("c")
    breaker.record_fallback("d")
    assert breaker.allows()


def test_breaker_stays_open_for_the_cooldown(breaker: Breaker, clock: FakeClock) -> None:
    """An open breaker refuses every call until the cool-down has passed."""
    for _ in range(3):
        breaker.record_fallback("boom")
    clock.advance(59.9)
    assert breaker.is_open
    assert not breaker.allows()
    assert not breaker.allows()


def test_half_open_after_cooldown(breaker: Breaker, clock: FakeClock, capture_events: list[str]) -> None:
    """After the cool-down one call is let through again (half-open), and that is said."""
    for _ in range(3):
        breaker.record_fallback("boom")
    clock.advance(60.0)
    assert not breaker.is_open
    assert breaker.allows()
    assert len(lines(capture_events, "breaker_half_open")) == 1
    assert breaker.allows()
    assert len(lines(capture_events, "breaker_half_open")) == 1


def test_half_open_fallback_reopens_at_once(breaker: Breaker, clock: FakeClock, capture_events: list[str]) -> None:
    """In half-open state a single fallback opens the breaker again for a full cool-down."""
    for _ in range(3):
        breaker.record_fallback("boom")
    clock.advance(61.0)
    assert breaker.allows()
    breaker.record_fallback("still broken")
    assert not breaker.allows()
    clock.advance(59.0)
    assert not breaker.allows()
    clock.advance(1.0)
    assert breaker.allows()
    second = lines(capture_events, "breaker_open")[1]
    assert "fallbacks=1" in second
    assert 'last_reason="still broken"' in second


def test_half_open_success_closes(breaker: Breaker, clock: FakeClock, capture_events: list[str]) -> None:
    """A success in half-open state closes the breaker: it takes threshold fallbacks to trip again."""
    for _ in range(3):
        breaker.record_fallback("boom")
    clock.advance(60.0)
    assert breaker.allows()
    breaker.record_success()
    assert len(lines(capture_events, "breaker_closed")) == 1
    breaker.record_fallback("a")
    breaker.record_fallback("b")
    assert breaker.allows()
    breaker.record_fallback("c")
    assert not breaker.allows()


def test_success_when_closed_says_nothing(breaker: Breaker, capture_events: list[str]) -> None:
    """A success while closed logs nothing."""
    breaker.record_success()
    assert lines(capture_events, "breaker_closed") == []


def test_threshold_one_trips_on_first_fallback(clock: FakeClock) -> None:
    """With threshold=1 the first fallback opens the breaker."""
    breaker = Breaker("t", threshold=1, cooldown=1.0, clock=clock)
    breaker.record_fallback("boom")
    assert not breaker.allows()


def test_reset_closes_an_open_breaker(breaker: Breaker) -> None:
    """reset() closes the breaker and forgets the count."""
    for _ in range(3):
        breaker.record_fallback("boom")
    breaker.reset()
    assert breaker.allows()
    breaker.record_fallback("a")
    breaker.record_fallback("b")
    assert breaker.allows()


@pytest.mark.parametrize(
    ("threshold", "cooldown", "message"), [(0, 1.0, "threshold must be >= 1"), (1, 0.0, "cooldown must be > 0")]
)
def test_breaker_limits_are_checked(threshold: int, cooldown: float, message: str) -> None:
    """A non-positive threshold or cool-down is a ValueError naming the argument."""
    with pytest.raises(ValueError, match=message):
        Breaker("t", threshold=threshold, cooldown=cooldown)


# -- Switch -----------------------------------------------------------------------------


@pytest.fixture
def control(tmp_path: Path) -> ControlFile:
    """A control file that does not exist yet."""
    return ControlFile(str(tmp_path / "state" / "control.json"))


class Active:
    """A settable stand-in for sched_accel.is_active."""

    def __init__(self) -> None:
        self.value = True

    def __call__(self) -> bool:
        return self.value


def make_switch(control: ControlFile, breaker: Breaker, active: Active | None = None) -> Switch:
    """A switch for jobs:update."""
    return Switch("jobs:update", control, breaker, active or Active())


def test_switch_on_when_everything_says_yes(control: ControlFile, breaker: Breaker) -> None:
    """Installed, not switched off, breaker closed: the switch says yes."""
    assert make_switch(control, breaker)() is True


def test_switch_off_when_inactive(control: ControlFile, breaker: Breaker) -> None:
    """When sched_accel is not installed the switch says no, and says yes again once it is."""
    active = Active()
    switch = make_switch(control, breaker, active)
    active.value = False
    assert switch() is False
    active.value = True
    assert switch() is True


@pytest.mark.parametrize("off", [{"jobs:update"}, {ALL}, {"jobs:update", "jobs:other"}])
def test_switch_off_by_control_file(control: ControlFile, breaker: Breaker, off: set[str]) -> None:
    """The control file naming the target (or ``*``) switches it off."""
    switch = make_switch(control, breaker)
    control.write(frozenset(off))
    assert switch() is False


def test_switch_ignores_other_targets(control: ControlFile, breaker: Breaker) -> None:
    """Switching another target off leaves this one on."""
    control.write(frozenset({"jobs:other"}))
    assert make_switch(control, breaker)() is True


def test_switch_off_when_unsafe_control_file(control: ControlFile, breaker: Breaker) -> None:
    """A refused control file switches the target off."""
    control.write(frozenset())
    os.chmod(control.path, 0o666)
    assert make_switch(control, breaker)() is False


def test_switch_off_while_breaker_open(control: ControlFile, breaker: Breaker, clock: FakeClock) -> None:
    """A tripped breaker switches the target off until its cool-down is over."""
    switch = make_switch(control, breaker)
    assert switch() is True
    for _ in range(3):
        breaker.record_fallback("boom")
    assert switch() is False
    clock.advance(60.0)
    assert switch() is True


def test_control_file_change_rearms_a_tripped_breaker(control: ControlFile, breaker: Breaker) -> None:
    """`sched-accel on` (any change of the control file) closes a tripped breaker at the next call."""
    switch = make_switch(control, breaker)
    assert switch() is True
    for _ in range(3):
        breaker.record_fallback("boom")
    assert switch() is False
    assert switch() is False
    control.write(frozenset())
    assert switch() is True
    assert not breaker.is_open


def test_off_then_on_rearms_a_tripped_breaker(control: ControlFile, breaker: Breaker) -> None:
    """off then on for the target re-arms its breaker too."""
    switch = make_switch(control, breaker)
    assert switch() is True
    for _ in range(3):
        breaker.record_fallback("boom")
    control.write(frozenset({"jobs:update"}))
    assert switch() is False
    control.write(frozenset())
    assert switch() is True


def test_unchanged_control_file_does_not_rearm(control: ControlFile, breaker: Breaker) -> None:
    """Without a change of the control file, a tripped breaker stays open."""
    control.write(frozenset())
    switch = make_switch(control, breaker)
    assert switch() is True
    for _ in range(3):
        breaker.record_fallback("boom")
    for _ in range(3):
        assert switch() is False
    assert breaker.is_open
