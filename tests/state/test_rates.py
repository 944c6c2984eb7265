"""_rates.py: the rates hosts told us, kept owner-only for the next run."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

from sched_accel._state import LearnedRates
from sched_accel._state._rates import MAX_AGE


def test_rates_round_trip_owner_only_and_merge(tmp_path: Path) -> None:
    rates = LearnedRates(str(tmp_path / "state"))
    rates.save({"api.example.com": 20.0}, now=1000.0)
    rates.save({"other.example": 5.0}, now=1000.0)
    assert rates.load(now=1010.0) == {"api.example.com": 20.0, "other.example": 5.0}
    assert stat.S_IMODE(os.stat(rates.path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(tmp_path / "state").st_mode) == 0o700
    rates.save({}, now=1000.0)  # nothing learned: the file is left as it is
    assert len(rates.load(now=1010.0)) == 2


def test_an_old_or_impossible_rate_is_not_used(tmp_path: Path) -> None:
    rates = LearnedRates(str(tmp_path))
    rates.save({"a": 20.0}, now=0.0)
    assert rates.load(now=MAX_AGE + 1) == {}
    body = {
        "version": 1,
        "hosts": {
            "b": {"per_second": 1e300, "at": 5.0},
            "c": {"per_second": "x", "at": 5.0},
            "d": {"per_second": float("nan"), "at": 5.0},
            "e": [1],
            "f": {"per_second": 3, "at": 5},
        },
    }
    Path(rates.path).write_text(json.dumps(body))
    assert rates.load(now=10.0) == {"f": 3.0}
    Path(rates.path).write_text("{not json")
    assert rates.load(now=10.0) == {}


def test_a_rates_file_through_a_symlink_or_writable_by_others_is_refused(
    tmp_path: Path, capture_events: list[str]
) -> None:
    real = LearnedRates(str(tmp_path / "real"))
    real.save({"a": 20.0}, now=1.0)
    (tmp_path / "link").mkdir(mode=0o700)
    os.symlink(real.path, tmp_path / "link" / "hosts.json")
    assert LearnedRates(str(tmp_path / "link")).load(now=2.0) == {}
    os.chmod(real.path, 0o666)
    assert real.load(now=2.0) == {}
    assert sum("state_refused" in line for line in capture_events) == 2


def test_how_a_rate_was_had_is_kept(tmp_path: Path) -> None:
    """A rate learned from refusals is kept as such; an entry without ``how`` (or a strange
    one) was told, the only kind an older version wrote."""
    rates = LearnedRates(str(tmp_path))
    rates.save({"told.example": 20.0, "learned.example": (19.5, "learned")}, now=100.0)
    assert rates.kept(now=101.0) == {"told.example": (20.0, "told"), "learned.example": (19.5, "learned")}
    body = json.loads(Path(rates.path).read_text())
    body["hosts"]["old.example"] = {"per_second": 3.0, "at": 100.0}
    body["hosts"]["odd.example"] = {"per_second": 4.0, "at": 100.0, "how": ["learned"]}
    Path(rates.path).write_text(json.dumps(body))
    kept = rates.kept(now=101.0)
    assert kept["old.example"] == (3.0, "told") and kept["odd.example"] == (4.0, "told")
    assert rates.load(now=101.0)["learned.example"] == 19.5
