"""Clean shutdown: after a run and after ``uninstall()`` no thread of ours is left, and the
interpreter's exit never waits for a request still running for an item the loop never
asked for."""

from __future__ import annotations

import importlib
import threading
import time

import pytest

import sched_accel

from .conftest import App
from .faultserver import FaultServer

JOB = """
    import httpx

    def get(client, base, token):
        return client.get(f"{base}/item/{token}").json()["value"]

    def first_three(base, tokens):
        # the loop stops early: the requests sent ahead for the rest are never asked for
        out = []
        with httpx.Client() as client:
            for token in tokens:
                out.append(get(client, base, token))
                if len(out) == 3:
                    break
        return out

    def price(token):
        return len(token)

    def loop(tokens):
        return [price(token) for token in tokens]
"""
CONFIG = """
    [[targets]]
    loop = "job:first_three"
    items = "tokens"
    concurrency = 4

    [[targets]]
    loop = "job:loop"
    fetch = "job:price"
    items = "tokens"
    concurrency = 4
"""


def ours() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("sched_accel")]


def settle(seconds: float = 3.0) -> list[str]:
    """Our threads still alive after ``seconds`` at most."""
    deadline = time.monotonic() + seconds
    while ours() and time.monotonic() < deadline:
        time.sleep(0.02)
    return ours()


def test_no_thread_of_ours_is_left_after_a_run_and_after_uninstall(app: App, monkeypatch: pytest.MonkeyPatch) -> None:
    app.write("job.py", JOB)
    app.config(CONFIG)
    monkeypatch.setenv("ENABLE_SCHEDULER_OPTIMIZATION", "1")
    assert sched_accel.install() is True
    job = importlib.import_module("job")
    with FaultServer(latency=0.02) as server:
        assert len(job.first_three(server.url, [f"t{i}" for i in range(20)])) == 3
        assert job.loop([f"x{i}" for i in range(40)]) == [len(f"x{i}") for i in range(40)]
        assert settle() == []  # the workers of each run end with it (wasted requests finish first)
        sched_accel.uninstall()
        assert settle() == []


HANGING = """
    import time, sys
    import sched_accel
    import job

    started = time.monotonic()
    print(job.first_three(sys.argv[1], [f"t{i}" for i in range(8)]))
    print(f"loop done in {time.monotonic() - started:.1f} s", flush=True)
"""


@pytest.mark.slow
def test_exit_does_not_wait_for_a_request_sent_ahead_for_nothing(app: App) -> None:
    """Items 4..8 are sent ahead and hang 30 s upstream; the loop stops after 3: the process
    exits at once (our workers are daemon threads; a client closed meanwhile closes later)."""
    app.write("job.py", JOB)
    config = app.config(CONFIG)
    app.write("main.py", HANGING)
    faults = {f"t{i}": ["hang"] for i in range(3, 8)}
    with FaultServer(latency=0.02, faults=faults, hang=30) as server:
        started = time.monotonic()
        done = app.run(
            "main.py",
            server.url,
            env={"ENABLE_SCHEDULER_OPTIMIZATION": "1", "SCHED_ACCEL_CONFIG": str(config)},
            timeout=25,
        )
        took = time.monotonic() - started
    assert done.returncode == 0, done.stderr
    assert "loop done in" in done.stdout
    assert took < 10, (took, done.stderr[-2000:])
    assert "sched_accel.run target=job:first_three" in done.stderr  # it was accelerated
