"""single_run under a real gunicorn: 4 workers, each starting APScheduler with a job every
second (seed 004's shape), through the real start-up hook. Without single_run each tick runs
4 times; with it, once, and the other workers' calls return None."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections import defaultdict
from pathlib import Path

import pytest

from .conftest import ENV_KEYS

pytestmark = pytest.mark.slow

pytest.importorskip("gunicorn", reason="gunicorn comes with the test extra: pip install -e '.[test]'")

WORKERS = 4
SECONDS = 9.0  # both apps run at once, for this long (4 workers take 3 s to boot on a loaded machine)
JOBS = """
    import os

    def refresh():
        with open("runs.txt", "a") as file:
            file.write(f"{os.getpid()}\\n")
        return "ran"
"""
# The legacy app: each worker imports it and starts its own scheduler (misfire grace widened
# only so that a loaded test machine does not drop runs of the "before" app).
APP = """
    import json, os

    from apscheduler.events import EVENT_JOB_EXECUTED
    from apscheduler.schedulers.background import BackgroundScheduler

    import jobs

    def record(event):
        line = {"pid": os.getpid(), "at": event.scheduled_run_time.timestamp(), "retval": event.retval}
        with open("events.jsonl", "a") as file:
            file.write(json.dumps(line) + "\\n")

    scheduler = BackgroundScheduler()
    scheduler.add_job(jobs.refresh, "interval", seconds=1, misfire_grace_time=30)
    scheduler.add_listener(record, EVENT_JOB_EXECUTED)
    scheduler.start()

    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok\\n"]
"""
CONFIG = """
    [[targets]]
    loop = "jobs:refresh"
    single_run = {single_run}
"""


def _text(source: str) -> str:
    return textwrap.dedent(source).lstrip()


def start(root: Path, *, single_run: bool) -> subprocess.Popen[str]:
    """gunicorn with 4 workers serving the app in ``root``, the flag on."""
    (root / "jobs.py").write_text(_text(JOBS))
    (root / "wsgiapp.py").write_text(_text(APP))
    (root / "sched_accel.toml").write_text(_text(CONFIG.format(single_run=str(single_run).lower())))
    env = {k: v for k, v in os.environ.items() if k not in ENV_KEYS}
    env.update(
        ENABLE_SCHEDULER_OPTIMIZATION="true",
        SCHED_ACCEL_CONFIG=str(root / "sched_accel.toml"),
        SCHED_ACCEL_CONTROL=str(root / "state" / "control.json"),
    )
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        "--workers",
        str(WORKERS),
        "--bind",
        f"unix:{root}/g.sock",
        "wsgiapp:app",
    ]
    return subprocess.Popen(command, cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def stop(server: subprocess.Popen[str]) -> str:
    """SIGTERM to the master (the workers stop with it); what it and its workers printed."""
    server.send_signal(signal.SIGTERM)
    try:
        out, _ = server.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        server.kill()
        out, _ = server.communicate()
    return out


def per_tick(root: Path) -> dict[int, list[object]]:
    """Each tick (the scheduled second) -> what every worker's call for it returned."""
    ticks: dict[int, list[object]] = defaultdict(list)
    for line in (root / "events.jsonl").read_text().splitlines():
        event = json.loads(line)
        ticks[math.floor(event["at"])].append(event["retval"])
    return dict(ticks)


def test_four_workers_run_each_tick_once_with_single_run(tmp_path: Path) -> None:
    """Before: every whole tick ran in all 4 workers. After: in exactly one; the 3 others
    skipped it (None to APScheduler), and no tick ran twice, whole or not."""
    before, after = tmp_path / "before", tmp_path / "after"
    for root in (before, after):
        root.mkdir()
    servers = [start(before, single_run=False), start(after, single_run=True)]
    time.sleep(SECONDS)
    out_before, out_after = (stop(server) for server in servers)

    whole_before = {t: r for t, r in per_tick(before).items() if len(r) == WORKERS}
    assert len(whole_before) >= 3, out_before
    assert all(results == ["ran"] * WORKERS for results in whole_before.values()), whole_before

    ticks = per_tick(after)
    whole = {t: r for t, r in ticks.items() if len(r) == WORKERS}
    assert len(whole) >= 3, out_after
    assert all(results.count("ran") == 1 and results.count(None) == WORKERS - 1 for results in whole.values()), whole
    assert all(results.count("ran") <= 1 for results in ticks.values()), ticks
    ran = (after / "runs.txt").read_text().split()
    assert len(ran) == sum(results.count("ran") for results in ticks.values())
    assert out_after.count("sched_accel.patched target=jobs:refresh") == WORKERS, out_after
    assert out_after.count("sched_accel.single_run_skipped") >= (WORKERS - 1) * len(whole)
