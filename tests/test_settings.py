"""_settings.py: frozen settings that check themselves, and items parsed once into a typed source."""

from __future__ import annotations

import pytest

from sched_accel import Settings, Target, TargetSpec
from sched_accel._settings import Argument, HostSettings, Learned, ModuleObject, RetrySettings, ReturnedBy, parse_items


def loop() -> TargetSpec:
    """A loop spec."""
    return TargetSpec.parse("jobs:update")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("tokens", Argument("tokens")),
        (0, Argument(0)),
        (2, Argument(2)),
        ("learned", Learned()),
        ("legacy_app.settings:TOKENS", ModuleObject(TargetSpec.parse("legacy_app.settings:TOKENS"))),
        ("returned-by:legacy_app.repo:Repo.active", ReturnedBy(TargetSpec.parse("legacy_app.repo:Repo.active"))),
    ],
)
def test_items_are_parsed_into_their_form(value: object, expected: object) -> None:
    """Each config form of ``items`` becomes one ItemSource, once."""
    assert parse_items(value) == expected


@pytest.mark.parametrize(
    "value", ["", -1, True, "not an identifier", "returned-by:", "returned-by:nocolon", 1.5, ["x"]]
)
def test_items_that_name_nothing_are_refused(value: object) -> None:
    """A value that is none of the forms is a ValueError saying what is allowed."""
    with pytest.raises(ValueError, match="a parameter name or position of the loop"):
        parse_items(value)


def test_item_source_text_is_the_config_form() -> None:
    """Log lines quote the source as it was written."""
    assert parse_items("returned-by:a.b:C.d").text == "'returned-by:a.b:C.d'"
    assert parse_items(0).text == "0"
    assert parse_items("learned").text == "'learned'"


def test_a_target_built_in_code_parses_its_items() -> None:
    """Target(items="tokens") made by a program holds the parsed source, like one from TOML."""
    target = Target(loop=loop(), mode="prefetch", concurrency=4, items="tokens")  # type: ignore[arg-type]
    assert target.items == Argument("tokens")


def test_the_default_window_is_sixteen_times_the_concurrency_at_least_128() -> None:
    """window defaults to max(16 x concurrency, 128), as documented."""
    assert Target(loop=loop(), mode="prefetch", concurrency=4).window_size == 128
    assert Target(loop=loop(), mode="prefetch", concurrency=16).window_size == 256
    assert Target(loop=loop(), mode="prefetch", concurrency=16, window=5).window_size == 5


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (
            lambda: Target(loop=loop(), mode="prefetch", concurrency=0),
            "targets.concurrency must be a whole number from 1 to 10,000",
        ),
        (lambda: Target(loop=loop(), mode="other", concurrency=1), "targets.mode"),  # type: ignore[arg-type]
        (lambda: Target(loop=loop(), mode="prefetch", concurrency=1, timeout=-1), "targets.timeout"),
        (lambda: Target(loop=loop(), mode="prefetch", concurrency=1, items="a b"), "targets.items"),  # type: ignore[arg-type]
        (lambda: RetrySettings(attempts=0), "retry.attempts"),
        (lambda: RetrySettings(deadline=float("inf")), "retry.deadline"),
        (lambda: HostSettings(burst=0), "hosts.burst"),
        (lambda: HostSettings(per_second=0), "hosts.per_second"),
        (lambda: Settings(path=None, concurrency=True), "settings.concurrency"),  # type: ignore[arg-type]
        (lambda: Settings(path=None, log="print"), "settings.log"),  # type: ignore[arg-type]
    ],
)
def test_settings_check_themselves(make: object, message: str) -> None:
    """A value out of range is a ValueError naming the field, whoever builds the settings."""
    with pytest.raises(ValueError, match=message):
        make()  # type: ignore[operator]


def test_settings_are_frozen() -> None:
    """Settings cannot be changed once made."""
    settings = Settings(path=None)
    with pytest.raises(AttributeError):
        settings.concurrency = 3  # type: ignore[misc]
