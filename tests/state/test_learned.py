"""Learned items: the per-item calls of the last run, persisted, prefetched by the next run."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from sched_accel._state import MAX_RECORDED, LearnedCalls, Recorder

from ..conftest import App

#: Their child pythons must run as in production, without a tracer (see conftest).
pytestmark = pytest.mark.usefixtures("unmeasured_children")

JOB = """
    import json, sys, time

    CALLS = []

    def fetch(chain, address):
        time.sleep(0.01)
        CALLS.append((chain, address))
        return f"{chain}/{address}"

    def wallets():
        return [{"chain": "eth", "address": a} for a in "abcabcxd"]

    def job():
        seen, out = set(), []
        for w in wallets():
            if w["address"] in seen or w["address"] == "x":
                continue
            seen.add(w["address"])
            out.append(fetch(w["chain"], w["address"]))
        return out

    if __name__ == "__main__":
        print(json.dumps({"result": job(), "calls": CALLS}))
"""
CONFIG = """
    [[targets]]
    loop = "job:job"
    fetch = "job:fetch"
    pure = true  # the fakes record their calls: a write, known to be harmless
    items = "learned"
    concurrency = 4
"""


def run_lines(stderr: str) -> list[str]:
    return [line[line.index("sched_accel.run") :] for line in stderr.splitlines() if "sched_accel.run " in line]


def test_second_process_prefetches_what_the_first_one_learned(app: App) -> None:
    """Run 1 (a cron start) records its calls; run 2, a new process, prefetches them all."""
    app.write("job.py", JOB)
    config = app.config(CONFIG)
    env = {"ENABLE_SCHEDULER_OPTIMIZATION": "1", "SCHED_ACCEL_CONFIG": str(config)}
    plain = app.run("-m", "job")
    first = app.run("-m", "job", env=env)
    second = app.run("-m", "job", env=env)
    assert first.returncode == second.returncode == 0, first.stderr + second.stderr
    outputs = [json.loads(done.stdout) for done in (plain, first, second)]
    assert outputs[0]["result"] == outputs[1]["result"] == outputs[2]["result"]
    # the calls are the same, each once; prefetched ones finish in any order
    assert sorted(outputs[0]["calls"]) == sorted(outputs[1]["calls"]) == sorted(outputs[2]["calls"])
    assert len(outputs[2]["calls"]) == 4
    [line1] = run_lines(first.stderr)
    [line2] = run_lines(second.stderr)
    assert "prefetched=0 missed=4" in line1 and "learned=4" in line1
    assert "prefetched=4 missed=0 wasted=0" in line2
    saved = app.state() / "learned" / "job_job.json"
    assert stat.S_IMODE(saved.stat().st_mode) == 0o600
    assert stat.S_IMODE(saved.parent.stat().st_mode) == 0o700
    body = json.loads(saved.read_text())
    assert body["version"] == 2 and body["target"] == "job:job"
    assert [entry["args"] for entry in body["calls"]] == [["eth", "a"], ["eth", "b"], ["eth", "c"], ["eth", "d"]]
    assert stat.S_IMODE((saved.parent / "secret").stat().st_mode) == 0o600


@pytest.mark.slow
def test_one_apps_learned_calls_are_never_replayed_by_another(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two apps of one user (staging and production: two configs, one loop of the same name): what
    staging learned is kept in its own folder, signed with its own secret; production's first run
    prefetches nothing of it."""
    control = str(tmp_path / "user-state" / "control.json")
    staging, production = (App(tmp_path / name, monkeypatch) for name in ("staging", "production"))
    for made in (staging, production):
        made.root.mkdir()
        made.write("job.py", JOB)
        made.write("sched_accel.toml", CONFIG)
    env = {"ENABLE_SCHEDULER_OPTIMIZATION": "1", "SCHED_ACCEL_CONTROL": control}
    for _ in range(2):
        done = staging.run("-m", "job", env=env)
        assert done.returncode == 0, done.stderr
    assert "prefetched=4 missed=0" in run_lines(done.stderr)[0]
    first = production.run("-m", "job", env=env)
    assert first.returncode == 0, first.stderr
    [line] = run_lines(first.stderr)
    assert "prefetched=0 missed=4" in line
    state = Path(control).parent
    folders = {made: state / "apps" / Path(made.state()).name for made in (staging, production)}
    assert all((folder / "learned" / "job_job.json").exists() for folder in folders.values())
    assert (folders[staging] / "learned" / "secret").read_bytes() != (
        folders[production] / "learned" / "secret"
    ).read_bytes()
    assert not (state / "learned").exists()


def test_a_changed_item_set_counts_misses_and_waste(app: App) -> None:
    """Learned calls the loop no longer makes are wasted; new ones are missed and run directly."""
    app.write("job.py", JOB)
    config = app.config(CONFIG)
    env = {"ENABLE_SCHEDULER_OPTIMIZATION": "1", "SCHED_ACCEL_CONFIG": str(config)}
    calls: list[list[Any]] = [["eth", "a"], ["eth", "zzz"], ["eth", "b"], ["eth", "c"]]
    LearnedCalls(str(app.state() / "learned"), "job:job").save(calls)  # as a run of ours would
    done = app.run("-m", "job", env=env)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["result"] == ["eth/a", "eth/b", "eth/c", "eth/d"]
    [line] = run_lines(done.stderr)
    assert "prefetched=3 missed=1" in line
    assert "wasted=1" in line  # eth/zzz was fetched, the loop never asked for it


def test_a_learned_call_unlike_this_runs_calls_is_never_sent(app: App) -> None:
    """Learned calls whose argument types differ from the run's first call (another version of
    the app saved them, or an edited file) are not sent ahead: the loop makes its own calls."""
    app.write("job.py", JOB)
    config = app.config(CONFIG)
    env = {"ENABLE_SCHEDULER_OPTIMIZATION": "1", "SCHED_ACCEL_CONFIG": str(config)}
    calls: list[list[Any]] = [["eth", "a"], ["eth", 10**30], [1, "../../admin?delete=1"], ["eth", "b"]]
    LearnedCalls(str(app.state() / "learned"), "job:job").save(calls)
    done = app.run("-m", "job", env=env)
    assert done.returncode == 0, done.stderr
    output = json.loads(done.stdout)
    assert output["result"] == ["eth/a", "eth/b", "eth/c", "eth/d"]
    assert sorted(map(tuple, output["calls"])) == [("eth", a) for a in "abcd"]  # nothing else was fetched
    [line] = run_lines(done.stderr)
    assert "wasted=0" in line


def test_a_file_others_can_write_is_refused(app: App) -> None:
    """A learned-calls file writable by others is refused loudly; the loop runs, unprefetched."""
    app.write("job.py", JOB)
    config = app.config(CONFIG)
    folder = app.state() / "learned"
    folder.mkdir(parents=True)
    target = folder / "job_job.json"
    target.write_text(json.dumps({"version": 1, "calls": [["eth", "a"]]}))
    target.chmod(0o666)
    done = app.run("-m", "job", env={"ENABLE_SCHEDULER_OPTIMIZATION": "1", "SCHED_ACCEL_CONFIG": str(config)})
    assert done.returncode == 0, done.stderr
    assert "sched_accel.state_refused" in done.stderr and "writable by other users" in done.stderr
    [line] = run_lines(done.stderr)
    assert "prefetched=0" in line


def refusals(lines: list[str]) -> list[str]:
    """The state_refused lines among the captured ones."""
    return [line for line in lines if line.startswith("sched_accel.state_refused")]


@pytest.fixture
def learned(tmp_path: Path) -> LearnedCalls:
    """A target's learned calls, saved once (signed, as by a run of ours)."""
    calls = LearnedCalls(str(tmp_path / "learned"), "m:job")
    calls.save([["a", 1], [1, {"a": 1}], ["c", None]])
    return calls


def rewrite(learned: LearnedCalls, change: Callable[[dict[str, Any]], object]) -> None:
    """Edit the saved file as its owner would (the mode stays 0600)."""
    body = json.loads(Path(learned.path).read_text())
    change(body)
    Path(learned.path).write_text(json.dumps(body))


def test_a_tampered_entry_is_dropped_and_counted(learned: LearnedCalls, capture_events: list[str]) -> None:
    """An entry edited after it was signed (``../../admin?delete=1``) fails its digest: dropped, said in one line."""
    rewrite(learned, lambda body: body["calls"][1].update(args=["../../admin?delete=1"]))
    assert learned.load() == [["a", 1], ["c", None]]
    [line] = [line for line in capture_events if "learned_dropped" in line]
    assert "1 of 3 learned calls failed their digest" in line and learned.path in line


def test_an_added_entry_without_its_digest_is_dropped(learned: LearnedCalls) -> None:
    """An entry added by hand, or with a made-up digest, is never replayed."""
    rewrite(learned, lambda body: body["calls"].extend([{"args": [10**30]}, {"args": [1], "digest": "0" * 64}]))
    assert learned.load() == [["a", 1], [1, {"a": 1}], ["c", None]]


def test_entries_of_another_target_do_not_count(learned: LearnedCalls, capture_events: list[str]) -> None:
    """The digest binds the target: entries copied into another target's file all fail, and it is not used."""
    other = LearnedCalls(os.path.dirname(learned.path), "m:other")
    body = json.loads(Path(learned.path).read_text())
    body["target"] = "m:other"
    Path(other.path).write_text(json.dumps(body))
    os.chmod(other.path, 0o600)
    assert other.load() == []
    [line] = refusals(capture_events)
    assert "has no entry with a valid digest" in line and "is not used" in line


def test_a_file_without_a_secret_is_not_used(learned: LearnedCalls, capture_events: list[str]) -> None:
    """Without the secret nothing can be checked: the file is ignored, and the next save starts afresh."""
    os.unlink(learned.secret)
    assert learned.load() == []
    assert "no entry with a valid digest" in refusals(capture_events)[0]
    learned.save([["new"]])
    assert learned.load() == [["new"]]


@pytest.mark.parametrize(
    "body",
    [
        '{"version": 1, "calls": [[1, {"a": 1}]]}',
        '{"version": 2, "target": "m:job", "calls": [[1]]}',
        '{"version": 2, "target": "m:job", "calls": [{"args": {"__import__": "os"}, "digest": "0"}]}',
        '{"version": 2, "target": "m:elsewhere", "calls": []}',
        "not json",
        "[" * 100_000,
    ],
    ids=["format-1", "bare-lists", "args-not-a-list", "other-target", "not-json", "deep"],
)
def test_a_file_not_of_ours_is_not_used(learned: LearnedCalls, body: str, capture_events: list[str]) -> None:
    """Only {"version": 2, "target": this one, "calls": [{"args", "digest"}]} is read; anything else is refused."""
    Path(learned.path).write_text(body)
    assert learned.load() == []
    [line] = refusals(capture_events)
    assert "is not a learned-calls file of ours" in line


def test_a_learned_file_through_a_symlink_is_refused(
    learned: LearnedCalls, tmp_path: Path, capture_events: list[str]
) -> None:
    """A learned file that is a symlink (here to a validly signed file) is not followed: no prefetch from it."""
    moved = tmp_path / "moved.json"
    os.replace(learned.path, moved)
    os.symlink(moved, learned.path)
    assert learned.load() == []
    [line] = refusals(capture_events)
    assert "symbolic link" in line and learned.path in line


def test_a_secret_that_fails_the_trust_rule_is_refused(learned: LearnedCalls, capture_events: list[str]) -> None:
    """A secret others could read or write signs nothing: it is refused like any state file."""
    os.chmod(learned.secret, 0o666)
    assert learned.load() == []
    assert "secret: is writable by other users" in refusals(capture_events)[0]
    os.chmod(learned.secret, 0o600)
    Path(learned.secret).write_bytes(b"short")
    assert learned.load() == []
    assert "holds 5 bytes, not 32" in refusals(capture_events)[1]


def test_saving_into_a_folder_others_can_write_is_refused(tmp_path: Path, capture_events: list[str]) -> None:
    """No secret and no calls are written where others could swap them; one state_refused line."""
    folder = tmp_path / "learned"
    folder.mkdir()
    folder.chmod(0o777)
    LearnedCalls(str(folder), "m:job").save([["a"]])
    assert os.listdir(folder) == []
    assert "writable by other users" in refusals(capture_events)[0]
    folder.chmod(0o700)


def test_recorder_keeps_json_values_only_and_is_bounded() -> None:
    """Arguments that are not plain JSON values are not recorded, and at most MAX_RECORDED are."""
    recorder = Recorder()
    recorder.record(("a", 1, ("t", None)))
    recorder.record((object(),))
    assert recorder.calls == [["a", 1, ["t", None]]]
    assert recorder.skipped == 1
    deep: list[Any] = []
    deep.append(deep)  # a list holding itself is no JSON value
    recorder.record((deep,))
    assert recorder.skipped == 2
    recorder.calls.extend([["x"]] * (MAX_RECORDED - 1))
    recorder.record(("late",))
    assert len(recorder.calls) == MAX_RECORDED


def test_save_then_load_round_trips(tmp_path: Path) -> None:
    """What a run saved is what the next run loads, the file owner-only."""
    learned = LearnedCalls(str(tmp_path / "learned"), "pkg.mod:Class.run")
    learned.save([["a", 1], ["b", 2]])
    assert Path(learned.path).name == "pkg.mod_Class.run.json"
    assert stat.S_IMODE(os.stat(learned.path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(learned.secret).st_mode) == 0o600
    assert len(Path(learned.secret).read_bytes()) == 32
    assert learned.load() == [["a", 1], ["b", 2]]


def test_calls_that_cannot_be_saved_are_said_once_and_kept_in_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capture_events: list[str]
) -> None:
    """A state folder that cannot be made: one learned_not_saved line for any number of runs,
    and this process's next runs still get the last run's calls."""
    monkeypatch.setenv("SCHED_ACCEL_CONTROL", str(tmp_path / "gone" / "state" / "control.json"))
    calls = LearnedCalls(str(tmp_path / "gone" / "state" / "apps" / "a" / "learned"), "m:job")
    calls.save([["a", 1]])
    assert calls.load() == [["a", 1]]
    calls.save([["b", 2], ["c", 3]])
    assert calls.load() == [["b", 2], ["c", 3]]
    [line] = [line for line in capture_events if line.startswith("sched_accel.learned_not_saved ")]
    assert "keeps them in memory" in line and "sched-accel doctor" in line
    assert not (tmp_path / "gone").exists()
