"""_switch.py: the switch asked on every call of a patched loop (the breaker itself: policy/test_breaker.py)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from sched_accel._policy import CircuitBreaker
from sched_accel._state import ALL, DISABLED_ENV, ControlFile, Controls
from sched_accel._switch import Switch, target_breaker

from .conftest import FakeClock

Breaker = CircuitBreaker


@pytest.fixture
def breaker(clock: FakeClock) -> Breaker:
    """A breaker that trips after 3 fallbacks and cools down for 60 s of fake time."""
    return target_breaker("jobs:update", threshold=3, cooldown=60.0, clock=clock)


def trip(breaker: Breaker) -> None:
    """Three fallbacks in a row."""
    for _ in range(3):
        breaker.record(False, reason="boom")


def lines(captured: list[str], name: str) -> list[str]:
    """The captured lines of one event."""
    return [line for line in captured if line.startswith(f"sched_accel.{name} ")]


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
    """A switch for jobs:update, reading ``control`` as its app's control file."""
    user = ControlFile(os.path.join(os.path.dirname(os.path.dirname(control.path)), "user", "control.json"))
    return Switch("jobs:update", Controls(control, user), breaker, active or Active())


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
    trip(breaker)
    assert switch() is False
    clock.advance(60.0)
    assert switch() is True


def test_control_file_change_rearms_a_tripped_breaker(control: ControlFile, breaker: Breaker) -> None:
    """`sched-accel on` (any change of the control file) closes a tripped breaker at the next call."""
    switch = make_switch(control, breaker)
    assert switch() is True
    trip(breaker)
    assert switch() is False
    assert switch() is False
    control.write(frozenset())
    assert switch() is True
    assert not breaker.is_open


def test_off_then_on_rearms_a_tripped_breaker(control: ControlFile, breaker: Breaker) -> None:
    """off then on for the target re-arms its breaker too."""
    switch = make_switch(control, breaker)
    assert switch() is True
    trip(breaker)
    control.write(frozenset({"jobs:update"}))
    assert switch() is False
    control.write(frozenset())
    assert switch() is True


def test_unchanged_control_file_does_not_rearm(control: ControlFile, breaker: Breaker) -> None:
    """Without a change of the control file, a tripped breaker stays open."""
    control.write(frozenset())
    switch = make_switch(control, breaker)
    assert switch() is True
    trip(breaker)
    for _ in range(3):
        assert switch() is False
    assert breaker.is_open


# -- what else switches a target off ---------------------------------------------------------
def test_the_user_wide_control_file_switches_every_app_off(tmp_path: Path, breaker: Breaker) -> None:
    """`sched-accel off --all-apps` (the user-wide file) reaches an app whose own file says nothing."""
    user = ControlFile(str(tmp_path / "state" / "control.json"))
    switch = Switch(
        "jobs:update",
        Controls(ControlFile(str(tmp_path / "state" / "apps" / "a" / "control.json")), user),
        breaker,
        Active(),
    )
    assert switch() is True
    user.write(frozenset({ALL}))
    assert switch() is False
    user.write(frozenset())
    assert switch() is True


def test_another_apps_off_leaves_this_one_on(tmp_path: Path, breaker: Breaker) -> None:
    """App B's control file (`sched-accel off` in B's folder) does not switch app A's target."""
    state = tmp_path / "state"
    user = ControlFile(str(state / "control.json"))
    mine = Switch(
        "jobs:update", Controls(ControlFile(str(state / "apps" / "a" / "control.json")), user), breaker, Active()
    )
    ControlFile(str(state / "apps" / "b" / "control.json")).write(frozenset({ALL, "jobs:update"}))
    assert mine() is True


def test_disabled_by_environment_is_off_and_said_once(
    tmp_path: Path, breaker: Breaker, monkeypatch: pytest.MonkeyPatch, capture_events: list[str]
) -> None:
    """$SCHED_ACCEL_DISABLED_TARGETS switches the target off (the original runs), said in one
    switched_off line naming the variable, however often the loop is called."""
    monkeypatch.setenv(DISABLED_ENV, "jobs:other, jobs:update")
    controls = Controls.open(
        str(tmp_path / "state" / "apps" / "a" / "control.json"), str(tmp_path / "state" / "control.json"), announce=True
    )
    switch = Switch("jobs:update", controls, breaker, Active())
    for _ in range(3):
        assert switch() is False
    [line] = lines(capture_events, "switched_off")
    assert "target=jobs:update" in line and f"by={DISABLED_ENV}" in line
