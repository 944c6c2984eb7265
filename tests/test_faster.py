"""Is it faster? A switched-off run timed (``outcome=off``, kept as the baseline), ``speedup``
against it, ``effective_concurrency``, the ``not_faster`` line for an upstream that serves one
request at a time, and ``progress`` lines in a long run. Real patched loops against a real
server on 127.0.0.1."""

from __future__ import annotations

import importlib
import json
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

import sched_accel
from sched_accel import _report
from sched_accel._cli import main
from sched_accel._log import render
from sched_accel._report import RunReport
from sched_accel._settings import Target
from sched_accel._state import DISABLED_ENV, load_plain
from sched_accel._targets import TargetSpec

from .conftest import App, logged
from .faultserver import FaultServer

pytestmark = pytest.mark.slow

JOB = """
    import httpx

    def get(client, base, token):
        return client.get(f"{base}/item/{token}").json()["value"]

    def refresh(base, tokens):
        with httpx.Client() as client:
            return [get(client, base, token) for token in tokens]

    async def arefresh(base, tokens):
        async with httpx.AsyncClient() as client:
            out = []
            for token in tokens:
                out.append((await client.get(f"{base}/item/{token}")).json()["value"])
            return out

    def broken(base, tokens):
        with httpx.Client() as client:
            for token in tokens:
                get(client, base, token)
        raise LookupError("the loop's own error")
"""
CONFIG = """
    [[targets]]
    loop = "job:refresh"
    items = "tokens"
    concurrency = 8

    [[targets]]
    loop = "job:arefresh"
    items = "tokens"
    concurrency = 8

    [[targets]]
    loop = "job:broken"
    items = "tokens"
    concurrency = 8
"""
TOKENS = [f"t{i}" for i in range(16)]


def run_lines(captured: list[str], target: str) -> list[dict[str, Any]]:
    """The fields of each ``sched_accel.run`` event of ``target``, as logged (numbers are numbers)."""
    return [line.fields for line in logged(captured, "run") if line.fields.get("target") == target]


@pytest.fixture
def job(app: App, monkeypatch: pytest.MonkeyPatch) -> Any:
    app.write("job.py", JOB)
    app.config(CONFIG)
    monkeypatch.setenv("ENABLE_SCHEDULER_OPTIMIZATION", "1")
    assert sched_accel.install() is True
    return importlib.import_module("job")


def test_a_switched_off_run_is_timed_kept_and_the_next_accelerated_run_says_its_speedup(
    job: Any, app: App, monkeypatch: pytest.MonkeyPatch, capture_events: list[str]
) -> None:
    """Off by the environment: the original runs (same result, one request per item), one run
    line outcome=off by=SCHED_ACCEL_DISABLED_TARGETS; switched back on, the accelerated run
    says how much faster it was than that run, per item."""
    with FaultServer(latency=0.1) as server:
        monkeypatch.setenv(DISABLED_ENV, "job:refresh")
        sched_accel.reset()
        assert sched_accel.install() is True
        off = job.refresh(server.url, TOKENS)
        assert sum(server.requests.values()) == len(TOKENS)
        monkeypatch.delenv(DISABLED_ENV)
        sched_accel.reset()
        assert sched_accel.install() is True
        on = job.refresh(server.url, TOKENS[:8])
    assert off[:8] == on and len(off) == 16
    [first, second] = run_lines(capture_events, "job:refresh")
    assert first["outcome"] == "off" and first["by"] == DISABLED_ENV and first["items"] == 16
    assert first["seconds"] >= 16 * 0.1
    assert second["outcome"] == "ok" and "speedup" in second and "by" not in second
    per_item_off = first["seconds"] / 16
    assert second["speedup"] == pytest.approx(per_item_off * 8 / second["seconds"], rel=0.02)
    # 8 at once against one at a time: 2.7 at best (2 items learn the template, 6 go in one round);
    # latency 0.1 s so that a loaded machine's milliseconds do not decide it
    assert second["speedup"] > 2
    assert 2 < second["effective_concurrency"] <= 8.5


def test_the_baseline_survives_accelerated_runs_and_is_shown_by_status(
    job: Any, app: App, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The runs file keeps the last unaccelerated run through later accelerated ones."""
    with FaultServer(latency=0.02) as server:
        monkeypatch.setenv(DISABLED_ENV, "*")
        sched_accel.reset()
        sched_accel.install()
        job.refresh(server.url, TOKENS)
        monkeypatch.delenv(DISABLED_ENV)
        sched_accel.reset()
        sched_accel.install()
        job.refresh(server.url, TOKENS)
        job.refresh(server.url, TOKENS)
    state = app.state(here=True)
    plain = load_plain(str(state), "job:refresh")
    assert plain is not None and plain["items"] == 16 and plain["seconds"] >= 16 * 0.02
    record = json.loads((state / "runs" / "job_refresh.json").read_text())
    assert record["run"]["outcome"] == "ok" and record["run"]["speedup"] > 1
    monkeypatch.chdir(app.root)
    assert main(["status"]) == 0
    shown = capsys.readouterr().out
    assert "speedup=" in shown and "effective_concurrency=" in shown
    assert "last unaccelerated run: " in shown and "items=16" in shown


@pytest.mark.anyio
async def test_an_async_loop_switched_off_is_timed_too(
    job: Any, monkeypatch: pytest.MonkeyPatch, capture_events: list[str]
) -> None:
    with FaultServer(latency=0.01) as server:
        monkeypatch.setenv(DISABLED_ENV, "job:arefresh")
        sched_accel.reset()
        sched_accel.install()
        assert len(await job.arefresh(server.url, TOKENS[:4])) == 4
    [line] = run_lines(capture_events, "job:arefresh")
    assert line["outcome"] == "off" and line["items"] == 4


def test_a_switched_off_loop_that_raises_raises_the_same_and_keeps_no_baseline(
    job: Any, app: App, monkeypatch: pytest.MonkeyPatch, capture_events: list[str]
) -> None:
    with FaultServer(latency=0.0) as server:
        monkeypatch.setenv(DISABLED_ENV, "job:broken")
        sched_accel.reset()
        sched_accel.install()
        with pytest.raises(LookupError, match="the loop's own error"):
            job.broken(server.url, TOKENS[:3])
    [line] = run_lines(capture_events, "job:broken")
    assert line["outcome"] == "off" and line["loop_raised"] == "yes"
    assert load_plain(str(app.state(here=True)), "job:broken") is None


def test_uninstalled_the_original_runs_with_no_line(job: Any, capture_events: list[str]) -> None:
    """Uninstalled, wrapt calls the original directly: nothing of ours runs, nothing is said."""
    sched_accel.uninstall()
    with FaultServer(latency=0.0) as server:
        assert len(job.refresh(server.url, TOKENS[:2])) == 2
    assert run_lines(capture_events, "job:refresh") == []


def test_an_upstream_that_serves_one_at_a_time_is_said_not_faster(job: Any, capture_events: list[str]) -> None:
    """Requests sent 8 at once to an upstream that answers one at a time: the run line's
    effective concurrency is near 1 and a not_faster line says why."""
    with FaultServer(
        latency=0.06, serial=True
    ) as server:  # 0.03: a loaded machine's overhead shrank the slowdown under 2.5
        job.refresh(server.url, TOKENS)
    [run] = run_lines(capture_events, "job:refresh")
    assert run["effective_concurrency"] < 1.5
    [line] = [line for line in capture_events if line.startswith("sched_accel.not_faster ")]
    assert "target=job:refresh" in line and "serves them one by one" in line


def test_a_healthy_upstream_is_not_said_not_faster(job: Any, capture_events: list[str]) -> None:
    with FaultServer(
        latency=0.2
    ) as server:  # long enough that a loaded machine's overhead is small beside it (0.1: 3.0 seen)
        job.refresh(server.url, TOKENS)
    [run] = run_lines(capture_events, "job:refresh")
    assert run["effective_concurrency"] > 2 * _report.NO_FASTER_BELOW
    assert not [line for line in capture_events if line.startswith("sched_accel.not_faster ")]


def target() -> Target:
    return Target(loop=TargetSpec.parse("jobs:update"), mode="prefetch", concurrency=4)


def test_a_long_run_says_its_progress(monkeypatch: pytest.MonkeyPatch, capture_events: list[str]) -> None:
    """The first progress line at 60 s, then every 30 s, from the calls as they finish."""
    now = [1000.0]
    monkeypatch.setattr(_report, "time", SimpleNamespace(perf_counter=lambda: now[0], time=time.time))
    report = RunReport(target(), items=100)
    for _ in range(10):
        now[0] += 10.0  # one call every 10 s: 10 .. 100 s
        report.count(True)
    progress = [line for line in capture_events if line.startswith("sched_accel.progress ")]
    assert [line.split("seconds=")[1].split()[0] for line in progress] == ["60.0", "90.0"]
    assert progress[0].startswith("sched_accel.progress target=jobs:update done=6 items=100 failed=0 seconds=60.0")


@pytest.mark.parametrize(
    ("plain", "seconds", "items", "expected"),
    [
        ({"seconds": 10.0, "items": 100}, 2.0, 100, 5.0),
        ({"seconds": 10.0, "items": 100}, 1.0, 50, 5.0),  # per item
        ({"seconds": 10.0, "items": None}, 2.0, None, 5.0),  # neither counted: by the whole run
        ({"seconds": 10.0, "items": None}, 2.0, 40, None),  # counted on one side only
        ({"seconds": 10.0, "items": 0}, 2.0, 40, None),
    ],
)
def test_speedup_compares_like_with_like(
    plain: dict[str, Any], seconds: float, items: int | None, expected: float | None
) -> None:
    assert _report._speedup(plain, seconds, items) == expected


@pytest.mark.parametrize(
    "forged", [{"seconds": -1, "items": 3}, {"seconds": "9", "items": 3}, {"seconds": 1.0, "items": True}, [1]]
)
def test_a_forged_baseline_is_no_baseline(tmp_path: Path, forged: object) -> None:
    folder = tmp_path / "runs"
    folder.mkdir(mode=0o700)
    tmp_path.chmod(0o700)
    (folder / "jobs_update.json").write_text(json.dumps({"target": "jobs:update", "run": {}, "plain": forged}))
    (folder / "jobs_update.json").chmod(0o600)
    assert load_plain(str(tmp_path), "jobs:update") is None


def test_the_run_line_renders_numbers_as_numbers() -> None:
    assert (
        render("run", "", {"seconds": 1.5, "items": None, "speedup": 4.25})
        == "sched_accel.run seconds=1.5 items=- speedup=4.25"
    )
