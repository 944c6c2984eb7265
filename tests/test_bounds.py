"""_bounds.py: every number a config may hold has a range, checked where it is validated."""

from __future__ import annotations

from pathlib import Path

import pytest

from sched_accel import Settings, load_config
from sched_accel._bounds import BOUNDS, DAY, bounded, describe, within
from sched_accel._settings import HostSettings, RetrySettings

from .test_config import config_error, write

TARGET = '[[targets]]\nloop = "jobs:update"\nitems = "tokens"\n'


@pytest.mark.parametrize(
    ("line", "shown"),
    [
        ("concurrency = 10001", "targets.concurrency = 10001 is not allowed: a whole number from 1 to 10,000"),
        ("concurrency = 1000000", "a whole number from 1 to 10,000"),
        ("window = 1000000", "targets.window = 1000000 is not allowed: a whole number from 1 to 100,000"),
        ("timeout = 1e300", "targets.timeout = 1e+300 is not allowed"),
        ("timeout = 86401", "at most 86,400 (1 day)"),
        ("timeout = inf", "targets.timeout = inf is not allowed"),
        ("timeout = nan", "targets.timeout = nan is not allowed"),
        ("per_second = 1e-300", "targets.per_second = 1e-300 is not allowed"),
        ("per_second = 1e12", "to 1,000,000"),
        ("burst = 1000001", "a whole number from 1 to 100,000"),
        ("max_age = 1e300", "targets.max_age = 1e+300 is not allowed"),
    ],
)
def test_a_target_number_out_of_range_is_a_config_error_naming_key_and_range(
    tmp_path: Path, line: str, shown: str
) -> None:
    assert shown in config_error(tmp_path, TARGET + line + "\n")


@pytest.mark.parametrize(
    "source",
    [
        "concurrency = 20000\n" + TARGET,
        "[retry]\ndeadline = 1e300\n" + TARGET,
        "[retry]\nattempts = 100000\n" + TARGET,
        "[retry]\ninitial = 7200\n" + TARGET,
        '[hosts."api.example.com"]\nper_second = 1e-9\n' + TARGET,
        '[hosts."api.example.com"]\nbreaker_cooldown = 1e300\n' + TARGET,
        "breaker_cooldown = 1e300\n" + TARGET,
    ],
)
def test_every_section_bounds_its_numbers(tmp_path: Path, source: str) -> None:
    assert "is not allowed" in config_error(tmp_path, source)


def test_the_largest_values_are_accepted(tmp_path: Path) -> None:
    path = write(
        tmp_path / "sched_accel.toml",
        TARGET + "concurrency = 10000\nwindow = 100000\ntimeout = 86400\nper_second = 1000000\n",
    )
    [target] = load_config(str(path)).targets
    assert (target.concurrency, target.window, target.timeout, target.per_second) == (10_000, 100_000, DAY, 1e6)


def test_settings_built_in_code_are_bounded_too() -> None:
    with pytest.raises(ValueError, match="settings.concurrency must be a whole number from 1 to 10,000"):
        Settings(path=None, concurrency=10_001)
    with pytest.raises(ValueError, match="retry.deadline must be a number above 0, at most 604,800"):
        RetrySettings(deadline=1e300)
    with pytest.raises(ValueError, match="hosts.per_second"):
        HostSettings(per_second=float("nan"))


def test_within_each_range() -> None:
    for name, (low, high, whole) in BOUNDS.items():
        assert within(name, high) and not within(name, high * 2 + 1), name
        assert not within(name, True) and not within(name, "1") and not within(name, None), name
        assert within(name, low) == (whole or low > 0), name
        assert describe(name)
    bounded("targets", "window", None, optional=True)
    with pytest.raises(ValueError, match="or unset"):
        bounded("targets", "window", 0, optional=True)
