"""``sched-accel status`` (in _cli.py): only this app's runs, only the user's own runs files, everything
from them escaped; ``--json`` and ``--all-apps``."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from sched_accel import _cli
from sched_accel._config import load_config
from sched_accel._state import LearnedRates, runs_folder, save_run

from .conftest import App

CONFIG = """
    [[targets]]
    loop = "legacy:update"
    replacement = "accel:update"
"""
RED = "\x1b[31m"


@pytest.fixture
def state(app: App) -> Path:
    """The app's state folder status reads (in the control file's folder), with a config of one target."""
    app.config(CONFIG)
    return Path(load_config().app_dir)


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


def status_json(capsys: pytest.CaptureFixture[str], *more: str) -> tuple[int, dict[str, Any]]:
    """`sched-accel status --json` in this process: (exit status, the parsed object)."""
    code = _cli.main(["status", "--json", *more])
    out = capsys.readouterr().out
    return code, json.loads(out)


def test_status_json_gives_the_figures_as_numbers(state: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--json: one object; a run's figures are numbers (the run line's "0.512" seconds too), "-" is null,
    each host's figures parsed from its line, the switches and where they are."""
    save_run(
        str(state),
        "legacy:update",
        {
            "target": "legacy:update",
            "mode": "replace",
            "outcome": "ok",
            "items": 3,
            "ok": 3,
            "failed": 0,
            "seconds": "0.512",
            "limit_wait": "0.0",
        },
        ["api.example.com:8443: requests=3 http_429=1 limit_now=unbounded waited=0.250s circuit=closed"],
    )
    save_run(str(state), "gone:job", {"outcome": "ok", "items": "-", "seconds": "1.000"})
    code, report = status_json(capsys)
    assert code == 0
    assert report["flag"] == {"name": "ENABLE_SCHEDULER_OPTIMIZATION", "value": None, "on": False}
    assert report["app"]["folder"] == str(state)
    assert report["control"]["app"] == {"path": str(state / "control.json"), "off": [], "problem": None}
    assert report["control"]["env"] == {"name": "SCHED_ACCEL_DISABLED_TARGETS", "off": []}
    [target] = report["targets"]
    assert (target["name"], target["on"], target["off_by"], target["concurrency"]) == ("legacy:update", True, None, 8)
    run = target["last_run"]
    assert (run["outcome"], run["items"], run["ok"], run["seconds"], run["limit_wait"]) == ("ok", 3, 3, 0.512, 0.0)
    assert isinstance(run["finished"], float) and run["pid"] == os.getpid()
    [host] = run["hosts"]
    assert host["host"] == "api.example.com:8443"
    assert (host["requests"], host["http_429"], host["limit_now"], host["waited"], host["circuit"]) == (
        3,
        1,
        "unbounded",
        0.25,
        "closed",
    )
    [other] = report["other_runs"]
    assert other["name"] == "gone:job" and other["last_run"]["items"] is None and other["last_run"]["seconds"] == 1.0


def test_status_json_escapes_nothing_json_does_not_and_redacts_secrets(
    state: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Strings from a runs file reach --json as JSON strings (ASCII, escaped by JSON), a secret in them masked."""
    save_run(str(state), "legacy:update", {"outcome": f"ok{RED}", "reason": "http://u:hunter2@api/x?api_key=s3cr3t"})
    capsys.readouterr()
    _cli.main(["status", "--json"])
    out = capsys.readouterr().out
    assert out.isascii() and "\x1b" not in out and "hunter2" not in out and "s3cr3t" not in out
    assert json.loads(out)["targets"][0]["last_run"]["outcome"] == f"ok{RED}"


def test_status_shows_this_apps_runs_only(app: App, state: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Another app's runs of a target of the same name, in its own folder, are not this app's last run."""
    other = Path(load_config(app.config(CONFIG, name="other/sched_accel.toml")).app_dir)
    save_run(str(other), "legacy:update", {"outcome": "ok", "items": 99})
    save_run(str(other), "theirs:job", {"outcome": "ok"})
    app.monkeypatch.setenv("SCHED_ACCEL_CONFIG", str(app.root / "sched_accel.toml"))
    code, out = status(capsys)
    assert code == 0
    assert "items=99" not in out and "theirs:job" not in out and "none recorded yet" in out
    code, report = status_json(capsys, "--all-apps")
    assert code == 0
    apps = {entry["id"]: entry for entry in report["apps"]}
    assert [run["name"] for run in apps[other.name]["runs"]] == ["legacy:update", "theirs:job"]
    assert apps[other.name]["this"] is False and apps[other.name]["config"] is None  # no app.json written yet


def test_status_all_apps_lists_each_app_with_its_config(
    app: App, state: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--all-apps: every app folder, its config (from app.json), what it has off, its runs; this one marked."""
    other = app.config(CONFIG, name="other/sched_accel.toml")
    for config in (app.root / "sched_accel.toml", other):
        settings = load_config(config)
        settings.app.describe()
        save_run(settings.app_dir, "legacy:update", {"outcome": "ok", "items": 1})
    app.monkeypatch.setenv("SCHED_ACCEL_CONFIG", str(app.root / "sched_accel.toml"))
    code = _cli.main(["status", "--all-apps"])
    out = capsys.readouterr().out
    assert code == 0
    assert f"{state.name} (this one): {app.root / 'sched_accel.toml'}" in out
    assert f": {other}" in out and out.count("legacy:update: last run:") == 2


def test_status_names_old_flat_state_once(state: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Runs and rates left directly in the state folder by a version before per-app state are not
    shown as this app's: one note names them."""
    save_run(str(state.parent.parent), "legacy:update", {"outcome": "ok", "items": 42})
    LearnedRates(str(state.parent.parent)).save({"old.example": 1.0})
    code, out = status(capsys)
    assert code == 0
    assert "items=42" not in out and "old.example" not in out
    assert out.count("from before state was kept per app") == 1 and "runs, hosts.json" in out
