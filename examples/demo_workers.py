"""The demo's scale-out job (seed 004): the legacy app's web front under gunicorn, whose every
worker starts the app's scheduler, run for a few ticks; and how its runs are counted per tick.

:func:`serve` starts ``gunicorn --workers N legacy_app.web:app`` on 127.0.0.1, waits until
every worker has said that its scheduler started, lets the schedulers run for the ticks to
count (after a first second in which each worker's job runs once, and up to a second more
for the first tick counted to begin), asks
the web front for a page while they run, and stops it (SIGTERM to the master: its workers
stop with it). :func:`per_tick` counts the job's runs in each of the ticks from the rows it
wrote. Nothing here knows of sched_accel: the flag and its config come in the environment.
"""

from __future__ import annotations

import math
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

__all__ = ["STARTED", "Served", "free_port", "gunicorn_options", "per_tick", "serve"]

#: What legacy_app.web logs in each worker once its scheduler runs.
STARTED = "scheduler started in worker"


@dataclass(frozen=True, slots=True)
class Served:
    """One gunicorn run: its exit status and log, the workers whose scheduler started, when the
    last of them did (epoch seconds), and whether a page was served while the schedulers ran."""

    returncode: int
    log: str
    workers: int
    ready: float
    served: bool


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def gunicorn_options() -> list[str]:
    """``--no-control-socket`` where gunicorn has one (23+): each gunicorn would otherwise
    listen on the same ``~/.gunicorn/gunicorn.ctl``."""
    try:
        from gunicorn.config import KNOWN_SETTINGS
    except ImportError:
        return []
    return ["--no-control-socket"] if any(s.name == "control_socket_disable" for s in KNOWN_SETTINGS) else []


def _page(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def serve(
    env: dict[str, str], cwd: Path, *, workers: int, ticks: int, tail: float, page: str = "/leaderboard"
) -> Served:
    """gunicorn with ``workers`` workers serving ``legacy_app.web:app``, for ``ticks`` whole ticks
    from a second after every worker's scheduler started, plus ``tail`` seconds for the last
    run to finish."""
    port = free_port()
    log_path = cwd / f"gunicorn-{port}.log"
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        "--workers",
        str(workers),
        "--bind",
        f"127.0.0.1:{port}",
        "--graceful-timeout",
        "5",
        *gunicorn_options(),
        "legacy_app.web:app",
    ]
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    try:
        deadline = time.time() + 60
        while (started := log_path.read_text(errors="replace").count(STARTED)) < workers:
            if process.poll() is not None or time.time() > deadline:
                break
            time.sleep(0.02)
        ready = time.time()
        served = False
        if started == workers:
            time.sleep(max(0.0, ready + 2 + ticks / 2 - time.time()))
            served = _page(f"http://127.0.0.1:{port}{page}")
            time.sleep(max(0.0, ready + 2 + ticks + tail - time.time()))
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    log_text = log_path.read_text(errors="replace")
    os.unlink(log_path)
    return Served(process.returncode, log_text, started, ready, served)


def per_tick(published: list[float], ready: float, ticks: int, period: float = 1.0) -> tuple[float, list[int]]:
    """(the first tick's start, the runs in each of ``ticks`` ticks) from the runs' start times.

    Each worker's interval job runs at its own phase within the period, a few milliseconds
    after its scheduled time. The ticks are counted as windows of one period whose edges lie
    in the middle of the widest gap between the phases of the runs counted, so that no run's
    lateness can move it into the next window. The first starts a period after ``ready`` (when
    every scheduler was up): by then each worker has run once, and each tick is one in which
    every worker's job is due."""
    start = ready + period
    counted = [t for t in published if t >= start]
    if not counted:
        return start, [0] * ticks
    phases = sorted(t % period for t in counted)
    gaps = [(b - a, a) for a, b in zip(phases, [*phases[1:], phases[0] + period], strict=True)]
    width, after = max(gaps)
    edge = (after + width / 2) % period
    first = math.ceil((start - edge) / period) * period + edge
    return first, [
        sum(1 for t in published if first + k * period <= t < first + (k + 1) * period) for k in range(ticks)
    ]
