"""``sched-accel status`` (in _cli.py): only the user's own runs files, everything from them escaped."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from sched_accel import _cli
from sched_accel._state import runs_folder, save_run

from .conftest import App

CONFIG = """
    [[targets]]
    loop = "legacy:update"
    replacement = "accel:update"
"""
RED = "\x1b[31m"


@pytest.fixture
def state(app: App) -> Path:
    """The state folder status reads (the control file's), with a config of one target."""
    app.config(CONFIG)
    return Path(os.environ["SCHED_ACCEL_CONTROL"]).parent


def status(capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """Run `sched-accel status` in this process: (exit status, stdout)."""
    code = _cli.main(["status"])
    return code, capsys.readouterr().out


def test_status_escapes_what_a_runs_file_says(state: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Target names, outcomes and hosts from a runs file are printed with their escape sequences escaped."""
    save_run(str(state), "legacy:update", {"outcome": f"ok{RED}", "items": 3}, [f"api{RED}: requests=3"])
    save_run(str(state), f"gone{RED}:job\x07\x9b\u202e", {"outcome": "ok"}, ["h\nfake line"])
    code, out = status(capsys)
    assert code == 0
    assert "\x1b" not in out and "\x07" not in out and "\x9b" not in out and "\u202e" not in out
    assert "outcome=ok\\x1b[31m" in out
    assert "host api\\x1b[31m: requests=3" in out
    assert "gone\\x1b[31m:job\\x07\\x9b\\u202e (not in the config)" in out
    assert "host h\\x0afake line" in out  # one line per host, always


def test_normal_text_is_shown_unchanged() -> None:
    """Printable text, accents and all, is left as it is; only control characters become escapes."""
    assert _cli._shown("api.example.com: requests=3 café ünïcode") == "api.example.com: requests=3 café ünïcode"
    assert _cli._shown("a\tb\x00c\x7fd\x85e") == "a\\x09b\\x00c\\x7fd\\x85e"


def test_status_survives_a_runs_file_with_odd_values(state: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A finish time or host list of the wrong type is shown as unknown, not a crash."""
    save_run(str(state), "legacy:update", {"outcome": "ok"})
    [path] = Path(runs_folder(str(state))).iterdir()
    record = json.loads(path.read_text())
    path.write_text(json.dumps({**record, "finished": 1e300, "hosts": "not a list"}))
    code, out = status(capsys)
    assert code == 0
    assert "last run: unknown time" in out


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a file away needs root")
def test_status_skips_a_runs_file_of_another_user(state: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A runs file owned by uid 65534 is not read: status says it skipped it, and shows no run from it."""
    save_run(str(state), "legacy:update", {"outcome": "ok", "items": 7})
    save_run(str(state), "theirs:job", {"outcome": "ok"})
    theirs = Path(runs_folder(str(state))) / "theirs_job.json"
    os.chown(theirs, 65534, 65534)
    code, out = status(capsys)
    assert code == 0
    assert f"skipped: {theirs}: is owned by uid 65534, not by this process's user (uid 0); delete it" in out
    assert "theirs:job" not in out.replace(str(theirs), "")
    assert "items=7" in out


def test_status_skips_a_symlinked_runs_file(state: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A runs file that is a symlink is not followed, even to a run of ours."""
    save_run(str(tmp_path / "other"), "legacy:update", {"outcome": "ok", "items": 9})
    folder = Path(runs_folder(str(state)))
    folder.mkdir(parents=True, mode=0o700)
    (folder / "legacy_update.json").symlink_to(Path(runs_folder(str(tmp_path / "other"))) / "legacy_update.json")
    code, out = status(capsys)
    assert code == 0
    assert "skipped:" in out and "symbolic link" in out
    assert "items=9" not in out and "none recorded yet" in out


def test_status_skips_a_runs_folder_others_can_write(state: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A runs folder others can write is refused once, for all its files."""
    save_run(str(state), "legacy:update", {"outcome": "ok", "items": 7})
    save_run(str(state), "other:job", {"outcome": "ok"})
    folder = Path(runs_folder(str(state)))
    folder.chmod(0o777)
    code, out = status(capsys)
    folder.chmod(0o700)
    assert code == 0
    assert out.count("skipped:") == 1 and "chmod go-w" in out
    assert "items=7" not in out


def test_status_shows_the_rates_hosts_told(state: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The rates kept for the next run are shown, one line per host, escaped."""
    from sched_accel._state import LearnedRates

    LearnedRates(str(state)).save({"api.example.com": 20.0, f"odd{RED}": 2.5})
    code, out = status(capsys)
    assert code == 0
    assert "host api.example.com: told 20 requests/s in its answers (the next run starts at it)" in out
    assert "host odd\\x1b[31m: told 2.5 requests/s" in out


def test_status_shows_a_rate_learned_from_refusals(state: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from sched_accel._state import LearnedRates

    LearnedRates(str(state)).save({"quiet.example": (19.76, "learned")})
    code, out = status(capsys)
    assert code == 0
    assert "host quiet.example: learned 19.8 requests/s from its refusals (the next run starts at it)" in out
