"""_base.py: the GCRA arithmetic, the claim rule and the argument checks every backend shares."""

from __future__ import annotations

import math

import pytest

from sched_accel._coord._base import (
    check_host,
    check_limit,
    check_rate,
    check_seconds,
    check_tick,
    claim_wins,
    cut_pause,
    gcra,
    in_force,
    lived_again,
    new_lease_id,
    usable_rate,
)


def test_gcra_lets_the_burst_through_then_one_per_interval() -> None:
    """Rate 10/s, burst 3, all at t=0: three admitted, the fourth waits 0.1 s, the fifth the same."""
    tat, waits = 0.0, []
    for _ in range(3):
        wait, tat = gcra(tat, 0.0, 10, 3)
        waits.append(wait)
    assert waits == [0.0, 0.0, 0.0] and tat == pytest.approx(0.3)
    wait, same = gcra(tat, 0.0, 10, 3)
    assert wait == pytest.approx(0.1) and same == tat
    wait, tat = gcra(tat, 0.1, 10, 3)
    assert wait == 0.0 and tat == pytest.approx(0.4)


def test_gcra_forgets_an_idle_past() -> None:
    """An arrival time long past counts as now: idleness earns no more than the burst."""
    assert gcra(5.0, 100.0, 2, 1) == (0.0, 100.5)
    assert gcra(100.5, 100.0, 2, 1)[0] == pytest.approx(0.5)


def test_claim_rule() -> None:
    """Nothing held, an expired claim, or a later tick wins; the same or an earlier tick loses."""
    assert claim_wins(None, 0.0, 5, 10.0)
    assert claim_wins(7, 10.0, 5, 10.0)
    assert claim_wins(4, 20.0, 5, 10.0)
    assert not claim_wins(5, 20.0, 5, 10.0)
    assert not claim_wins(6, 20.0, 5, 10.0)


def test_a_claim_made_before_the_wall_clock_stepped_back_is_read_on_the_present_clock() -> None:
    """Hourly ticks: a claim of tick 5 made at wall 5.5 h. An hour later (on the backend's clock,
    which does not step) the wall clock, stepped back an hour, reads 5.5 h again: that claim fell
    in tick 4 of the present clock, so tick 5 is a window lived again. Without the step, or with
    a step under the drift NTP's slewing could cause, the same tick is the one claimed."""
    hour = 3600.0
    claimed_at = 5.5 * hour
    assert lived_again(claimed_at, hour, claimed_at, 5, hour)  # stepped back an hour: tick 5 again
    assert not lived_again(claimed_at, 600.0, claimed_at + 600.0, 5, hour)  # no step: a late caller
    assert not lived_again(claimed_at, 600.0, claimed_at + 598.5, 5, hour)  # 1.5 s: within drift
    assert not lived_again(claimed_at, 3 * hour, claimed_at + 3 * hour - 9.0, 8, hour)  # 9 s in 3 h: drift
    assert not lived_again(claimed_at, hour, claimed_at, 4, hour)  # the claim's own tick on the present clock
    assert lived_again(
        5.0 * hour + 10, hour, 5.0 * hour + 10 + hour - 20, 5, hour
    )  # 20 s back, claimed early in tick 5
    assert not lived_again(math.nan, hour, claimed_at, 5, hour)  # the claimant's clock unknown (an older record)


def test_gcra_cuts_an_arrival_time_no_admission_could_have_set() -> None:
    """An arrival time a day ahead (another client of the store wrote it) is cut to one burst
    of intervals: a wait of one interval, and the cut time to store; NaN counts as none."""
    assert gcra(86_400.0, 0.0, 10, 3) == (pytest.approx(0.1), pytest.approx(0.3))
    assert gcra(float("inf"), 0.0, 10, 1) == (pytest.approx(0.1), pytest.approx(0.1))
    assert gcra(float("nan"), 5.0, 10, 1) == (0.0, pytest.approx(5.1))


def test_claims_and_places_no_process_of_the_app_made_are_not_in_force() -> None:
    """A claim ending further ahead than its ttl (or at NaN), or of a tick past ``latest``, is
    not in force; places and heartbeats likewise, and a pause is cut to the longest followed."""
    assert claim_wins(9, 10.0 + 86_400, 5, 10.0, ttl=60)
    assert claim_wins(9, float("nan"), 5, 10.0, ttl=60)
    assert not claim_wins(9, 70.0, 5, 10.0, ttl=60)  # within the ttl: in force
    assert claim_wins(2**53 - 1, 20.0, 5, 10.0, ttl=60, latest=100)
    assert not claim_wins(100, 20.0, 5, 10.0, ttl=60, latest=100)
    assert in_force(15.0, 10.0, 5.0) and not in_force(15.1, 10.0, 5.0) and not in_force(10.0, 10.0, 5.0)
    assert not in_force(float("inf"), 10.0, 5.0) and not in_force(float("nan"), 10.0, 5.0)
    assert cut_pause(10.0 + 86_400, 10.0, 120.0) == 130.0 and cut_pause(12.0, 10.0, 120.0) == 12.0


def test_lease_ids_are_random_hex() -> None:
    """128 random bits, hex: unguessable, and bytes.fromhex takes them."""
    ids = {new_lease_id() for _ in range(100)}
    assert len(ids) == 100 and all(len(bytes.fromhex(i)) == 16 for i in ids)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (b"12.5", 12.5),
        ("3", 3.0),
        (7, 7.0),
        (b"nan", None),
        (b"inf", None),
        (b"-1", None),
        (b"x", None),
        (True, None),
        (None, None),
        (0, None),
        (2e6, None),
    ],
)
def test_usable_rate(value: object, expected: float | None) -> None:
    """Only a finite rate in (0, 1e6] is one we would pace to."""
    assert usable_rate(value) == expected


def test_checks_name_what_is_wrong() -> None:
    """Each check names the argument, the value and what is allowed."""
    with pytest.raises(ValueError, match=r"per_second must be a number > 0 and <= 1e6; got True"):
        check_rate(True, 1)
    with pytest.raises(ValueError, match=r"burst must be an int >= 1; got 2.0"):
        check_rate(1, 2.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="host must be a non-empty string"):
        check_host(b"api")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="limit must be an int >= 1"):
        check_limit(False)
    with pytest.raises(ValueError, match=r"ttl must be a finite number of seconds > 0; got 0"):
        check_seconds(0, "ttl")
    check_seconds(0, "seconds", zero=True)
    with pytest.raises(ValueError, match=r"seconds >= 0"):
        check_seconds(float("inf"), "seconds", zero=True)
    with pytest.raises(ValueError, match="tick must be an int"):
        check_tick(True)
    check_tick(-(2**53) + 1)
