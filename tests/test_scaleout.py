"""Several real processes of one app, patched through the start-up hook, against one real
upstream on 127.0.0.1: a host's declared concurrency and rate are one budget for all of them
on a shared backend, and each process's own on ``backend = "process"``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from .conftest import ENV_KEYS, App
from .faultserver import FaultServer

pytestmark = pytest.mark.slow

JOBS = """
import httpx

def fetch(http, key):
    return http.get(f"/item/{key}").json()["value"]

def fetch_all(base, keys):
    with httpx.Client(base_url=base, timeout=30) as http:
        return [fetch(http, key) for key in keys]
"""
MAIN = """
import json, sys, time
import jobs

start_at = float(sys.argv[2])
time.sleep(max(0.0, start_at - time.time()))
keys = [f"{sys.argv[3]}-{i}" for i in range(int(sys.argv[4]))]
print(json.dumps(jobs.fetch_all(sys.argv[1], keys)))
"""
CONFIG = """
[coordination]
backend = "{backend}"

[hosts."127.0.0.1"]
{limit}

[[targets]]
loop = "jobs:fetch_all"
fetch = "jobs:fetch"
items = "keys"
concurrency = 6
"""


def run_processes(
    app: App, server: FaultServer, backend: str, limit: str, processes: int = 3, items: int = 12
) -> list[list[int]]:
    config = app.write("sched_accel.toml", CONFIG.format(backend=backend, limit=limit))
    app.write("jobs.py", JOBS)
    app.write("main.py", MAIN)
    env = {
        "SCHED_ACCEL_CONFIG": str(config),
        "SCHED_ACCEL_CONTROL": str(app.root / "state" / "control.json"),
        "ENABLE_SCHEDULER_OPTIMIZATION": "true",
    }
    start_at = str(time.time() + 2.0)
    children = [
        subprocess.Popen(
            [sys.executable, "main.py", server.url, start_at, f"p{n}", str(items)],
            cwd=app.root,
            env={**{k: v for k, v in os.environ.items() if k not in ENV_KEYS}, **env},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(processes)
    ]
    results = []
    for child in children:
        out, err = child.communicate(timeout=120)
        assert child.returncode == 0, err
        assert "sched_accel.patched target=jobs:fetch_all" in err
        assert "coordination_down" not in err, err
        results.append(json.loads(out.strip().splitlines()[-1]))
    return results


@pytest.mark.parametrize(("backend", "most"), [("machine", 2), ("process", 6)])
def test_a_declared_concurrency_is_every_process_s_on_a_shared_backend(app: App, backend: str, most: int) -> None:
    """3 processes at concurrency 6, the host declared ``concurrency = 2``: at most 2 requests in
    flight at the upstream between them on the machine backend; 2 each (up to 6) on their own."""
    with FaultServer(latency=0.1) as server:
        results = run_processes(app, server, backend, "concurrency = 2")
    assert all(len(result) == 12 for result in results)
    # Each request is at the upstream from its arrival for its 0.1 s (the server's own count
    # of handlers running also holds the few µs after the answer was read).
    assert 2 <= overlap(server.arrived, 0.09) <= most
    if backend == "process":
        assert overlap(server.arrived, 0.09) > 2


def overlap(arrived: list[float], seconds: float) -> int:
    """The most of the spans (arrival, arrival + seconds) open at once."""
    edges = sorted([(t, 1) for t in arrived] + [(t + seconds, -1) for t in arrived], key=lambda e: (e[0], e[1]))
    now = most = 0
    for _, step in edges:
        now += step
        most = max(most, now)
    return most


def test_a_declared_rate_is_every_process_s_and_nothing_is_refused(app: App) -> None:
    """3 processes against a 20/s host (burst 4), its rate declared: 20/s between them, no 429."""
    with FaultServer(per_second=20, burst=4, latency=0.02) as server:
        started = time.monotonic()
        results = run_processes(app, server, "machine", "per_second = 20\nburst = 4")
        seconds = time.monotonic() - started
    assert all(len(result) == 12 for result in results)
    assert server.status[429] <= 1
    assert seconds >= 2.0 + (36 - 4) / 20 * 0.9  # (the 2 s: the processes start together)
