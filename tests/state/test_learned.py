"""Learned items: the per-item calls of the last run, persisted, prefetched by the next run."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

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
    return [line[line.index("sched_accel.run"):] for line in stderr.splitlines() if "sched_accel.run " in line]


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
    saved = app.root / "state" / "learned" / "job_job.json"
    assert stat.S_IMODE(saved.stat().st_mode) == 0o600
    assert stat.S_IMODE(saved.parent.stat().st_mode) == 0o700
    assert json.loads(saved.read_text())["calls"] == [["eth", "a"], ["eth", "b"], ["eth", "c"], ["eth", "d"]]


def test_a_changed_item_set_counts_misses_and_waste(app: App) -> None:
    """Learned calls the loop no longer makes are wasted; new ones are missed and run directly."""
    app.write("job.py", JOB)
    config = app.config(CONFIG)
    env = {"ENABLE_SCHEDULER_OPTIMIZATION": "1", "SCHED_ACCEL_CONFIG": str(config)}
    folder = app.root / "state" / "learned"
    folder.mkdir(parents=True, mode=0o700)
    calls = [["eth", "a"], ["eth", "zzz"], ["eth", "b"], ["eth", "c"]]
    (folder / "job_job.json").write_text(json.dumps({"version": 1, "calls": calls}))
    (folder / "job_job.json").chmod(0o600)
    done = app.run("-m", "job", env=env)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["result"] == ["eth/a", "eth/b", "eth/c", "eth/d"]
    [line] = run_lines(done.stderr)
    assert "prefetched=3 missed=1" in line
    assert "wasted=1" in line  # eth/zzz was fetched, the loop never asked for it


def test_a_file_others_can_write_is_refused(app: App) -> None:
    """A learned-calls file writable by others is refused loudly; the loop runs, unprefetched."""
    app.write("job.py", JOB)
    config = app.config(CONFIG)
    folder = app.root / "state" / "learned"
    folder.mkdir(parents=True)
    target = folder / "job_job.json"
    target.write_text(json.dumps({"version": 1, "calls": [["eth", "a"]]}))
    target.chmod(0o666)
    done = app.run("-m", "job", env={"ENABLE_SCHEDULER_OPTIMIZATION": "1", "SCHED_ACCEL_CONFIG": str(config)})
    assert done.returncode == 0, done.stderr
    assert "sched_accel.learned_refused" in done.stderr and "writable by other users" in done.stderr
    [line] = run_lines(done.stderr)
    assert "prefetched=0" in line


@pytest.mark.parametrize(
    "body",
    ['{"version": 2, "calls": []}', "not json", '{"version": 1, "calls": [{"__import__": "os"}]}', '{"version": 1, "calls": [[1, {"a": 1}]], "x": 1}'],
)
def test_load_accepts_only_lists_of_json_values(tmp_path: Path, body: str, capture_events: list[str]) -> None:
    """Only {"version": 1, "calls": [[json values]]} is read; anything else is refused, never run."""
    learned = LearnedCalls(str(tmp_path), "m:job")
    Path(learned.path).write_text(body)
    os.chmod(learned.path, 0o600)
    calls = learned.load()
    if body.startswith('{"version": 1, "calls": [[1'):
        assert calls == [[1, {"a": 1}]]
    else:
        assert calls == []
        assert any("learned_refused" in line for line in capture_events)


def test_recorder_keeps_json_values_only_and_is_bounded() -> None:
    """Arguments that are not plain JSON values are not recorded, and at most MAX_RECORDED are."""
    recorder = Recorder()
    recorder.record(("a", 1, ("t", None)))
    recorder.record((object(),))
    assert recorder.calls == [["a", 1, ["t", None]]]
    assert recorder.skipped == 1
    recorder.calls.extend([["x"]] * (MAX_RECORDED - 1))
    recorder.record(("late",))
    assert len(recorder.calls) == MAX_RECORDED


def test_save_then_load_round_trips(tmp_path: Path) -> None:
    """What a run saved is what the next run loads, the file owner-only."""
    learned = LearnedCalls(str(tmp_path / "learned"), "pkg.mod:Class.run")
    learned.save([["a", 1], ["b", 2]])
    assert Path(learned.path).name == "pkg.mod_Class.run.json"
    assert stat.S_IMODE(os.stat(learned.path).st_mode) == 0o600
    assert learned.load() == [["a", 1], ["b", 2]]
