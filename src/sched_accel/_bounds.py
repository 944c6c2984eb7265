"""The range of every number a config may hold, checked where it is validated.

A value outside its range is a config error naming the key and the range, never a failure
later inside the host's loop (a timeout of ``1e300`` once overflowed the platform's
``time_t`` mid-run; a concurrency of a million once meant a million tasks). The ranges are
generous for any real job and small enough that no arithmetic on them overflows.
"""

from __future__ import annotations

__all__ = ["BOUNDS", "DAY", "bounded", "describe", "within"]

DAY = 86_400.0

#: (lowest, highest, whole number) per key; a number (not whole) must be above 0 when its
#: lowest is 0, else at least its lowest.
BOUNDS: dict[str, tuple[float, float, bool]] = {
    "concurrency": (1, 10_000, True),
    "window": (1, 100_000, True),
    "burst": (1, 100_000, True),
    "attempts": (1, 1_000, True),
    "breaker_failures": (1, 10_000, True),
    "breaker_threshold": (1, 10_000, True),
    "per_second": (1 / DAY, 1_000_000, False),  # from one a day to a million a second
    "timeout": (0, DAY, False),
    "deadline": (0, 7 * DAY, False),
    "initial": (0, 3_600, False),
    "maximum": (0, DAY, False),
    "breaker_cooldown": (0, DAY, False),
    "max_age": (0, DAY, False),
    "tick": (0.01, 7 * DAY, False),  # single_run's schedule tick: a hundredth of a second to a week
    "port": (1, 65_535, True),  # [metrics] prometheus = "host:port": where the endpoint listens
}


def _number(value: float) -> str:
    return f"{value:,.0f}" if value == int(value) else f"{value:g}"


def describe(name: str) -> str:
    """The range of key ``name``, in words: "a whole number from 1 to 10,000"."""
    low, high, whole = BOUNDS[name]
    if whole:
        return f"a whole number from {_number(low)} to {_number(high)}"
    if name == "per_second":
        return f"a number from {low:.3g} (one a day) to {_number(high)}"
    days = f" ({_number(high / DAY)} day{'s' if high > DAY else ''})" if high >= DAY else ""
    if low > 0:
        return f"a number from {low:g} to {_number(high)}{days}"
    return f"a number above 0, at most {_number(high)}{days}"


def within(name: str, value: object) -> bool:
    """Whether ``value`` is a number (whole, where it must be) in the range of key ``name``."""
    low, high, whole = BOUNDS[name]
    if isinstance(value, bool) or not isinstance(value, int if whole else int | float):
        return False
    assert isinstance(value, int | float)
    return (low <= value <= high) if (whole or low > 0) else (0 < value <= high)


def bounded(owner: str, name: str, value: object, *, optional: bool = False) -> None:
    """Raise ValueError naming ``owner.name`` and its range unless ``value`` is within it."""
    if value is None and optional:
        return
    if not within(name, value):
        raise ValueError(f"{owner}.{name} must be {describe(name)}{' or unset' if optional else ''}, got {value!r}")
