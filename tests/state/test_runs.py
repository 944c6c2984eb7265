"""_runs.py: each target's last run on disk, for `sched-accel status`."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from sched_accel._state import _runs, load_runs, runs_folder, save_run


def test_a_saved_run_is_loaded_by_target(tmp_path: Path) -> None:
    """save_run then load_runs gives the fields, the hosts, the pid and the time back, by target."""
    save_run(str(tmp_path), "jobs:update", {"outcome": "ok", "items": 3}, ["api: requests=3"])
    record = load_runs(str(tmp_path))["jobs:update"]
    assert record["run"] == {"outcome": "ok", "items": 3}
    assert record["hosts"] == ["api: requests=3"]
    assert record["pid"] == os.getpid() and record["finished"] > 0


def test_runs_are_owner_only(tmp_path: Path) -> None:
    """The file is 0600 in a 0700 folder, like the rest of our state."""
    save_run(str(tmp_path), "jobs:update", {"outcome": "ok"})
    folder = Path(runs_folder(str(tmp_path)))
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    [file] = folder.iterdir()
    assert stat.S_IMODE(file.stat().st_mode) == 0o600


def test_a_read_only_state_folder_never_breaks_the_app(tmp_path: Path) -> None:
    """Saving into a folder that cannot be written never raises: status then says no run recorded."""
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    save_run(str(blocker), "jobs:update", {"outcome": "ok"})
    assert load_runs(str(blocker)) == {}


def test_files_that_are_not_runs_are_skipped(tmp_path: Path) -> None:
    """Junk, foreign JSON and other files in the runs folder are ignored."""
    save_run(str(tmp_path), "jobs:update", {"outcome": "ok"})
    folder = Path(runs_folder(str(tmp_path)))
    (folder / "junk.json").write_text("{not json")
    (folder / "other.json").write_text(json.dumps({"target": 1}))
    (folder / "notes.txt").write_text("hello")
    assert list(load_runs(str(tmp_path))) == ["jobs:update"]


def test_refused_runs_files_are_listed_or_logged(tmp_path: Path, capture_events: list[str]) -> None:
    """A runs file others can write is skipped: listed for status when asked, else one state_refused line."""
    save_run(str(tmp_path), "jobs:update", {"outcome": "ok"})
    save_run(str(tmp_path), "jobs:other", {"outcome": "ok"})
    other = Path(runs_folder(str(tmp_path))) / "jobs_other.json"
    other.chmod(0o666)
    refused: list[str] = []
    assert list(load_runs(str(tmp_path), refused)) == ["jobs:update"]
    assert refused == [f"{other}: is writable by other users (mode 666); chmod 600 it"]
    assert not capture_events
    assert list(load_runs(str(tmp_path))) == ["jobs:update"]
    assert [line for line in capture_events if line.startswith("sched_accel.state_refused")] == [
        f"sched_accel.state_refused - {refused[0]}"
    ]


def test_a_run_is_not_saved_where_others_could_change_it(tmp_path: Path, capture_events: list[str]) -> None:
    """save_run into a runs folder others can write writes nothing and says so in one line, never raising."""
    folder = Path(runs_folder(str(tmp_path)))
    folder.mkdir(mode=0o700)
    folder.chmod(0o777)
    save_run(str(tmp_path), "jobs:update", {"outcome": "ok"})
    folder.chmod(0o700)
    assert list(folder.iterdir()) == []
    assert any(line.startswith("sched_accel.state_refused") and "chmod go-w" in line for line in capture_events)


def test_runs_that_cannot_be_saved_are_said_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capture_events: list[str]
) -> None:
    """A state folder that cannot be made: the app goes on, one runs_not_saved line for all its runs."""
    monkeypatch.setattr(_runs, "_said_not_saved", set())
    monkeypatch.setenv("SCHED_ACCEL_CONTROL", str(tmp_path / "gone" / "state" / "control.json"))
    folder = str(tmp_path / "gone" / "state" / "apps" / "a")
    for _ in range(3):
        save_run(folder, "m:job", {"outcome": "ok"})
    [line] = [line for line in capture_events if line.startswith("sched_accel.runs_not_saved ")]
    assert f"folder={folder}" in line and "sched-accel doctor" in line
    assert load_runs(folder) == {}
