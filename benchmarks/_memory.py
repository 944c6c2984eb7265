"""Peak RSS of one contender over many trivial items, measured in a fresh process.

The parent runs ``python benchmarks/prefetch.py rss-child CONTENDER N``; the child warms
up on 1,000 items (first-use imports, worker threads), resets the peak (``echo 5 >
/proc/self/clear_refs``), notes VmRSS, runs N items from a ``range`` (the input itself
costs nothing) and prints VmHWM - VmRSS-before as JSON. Without clear_refs it falls back
to ru_maxrss, which cannot be reset (then the warm-up peak may hide growth below it).
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from _contenders import (
    ASYNC_PEERS,
    SYNC_PEERS,
    Contender,
    Job,
    sched_accel_async,
    sched_accel_map,
    sched_accel_sync,
    sequential,
    sequential_async,
)

WARM_UP = 1_000

CONTENDERS: dict[str, Contender] = {
    "plain sync loop": sequential,
    "sched_accel, sync loop": sched_accel_sync(),
    "sched_accel, sync loop, no step-aside": sched_accel_sync("no-probe"),
    "plain async loop": sequential_async,
    "sched_accel, async loop": sched_accel_async(),
    "sched_accel, async loop, no step-aside": sched_accel_async("no-probe"),
    "sched_accel.map (engine)": sched_accel_map,
    **SYNC_PEERS,
    **ASYNC_PEERS,
}
#: Peers that take 15-300 us per item run on fewer items, to keep `make bench` short.
FEWER_ITEMS = {
    **{name: 100_000 for name in [*SYNC_PEERS, *ASYNC_PEERS, "sched_accel.map (engine)"]},
    "batches of C (thread pool)": 10_000,
}


def _status() -> dict[str, int]:
    """VmRSS and VmHWM in KiB (ru_maxrss for both where /proc is missing)."""
    try:
        with open("/proc/self/status") as file:
            found = {k: int(v.split()[0]) for k, v in (line.split(":", 1) for line in file) if k in ("VmRSS", "VmHWM")}
        if len(found) == 2:
            return found
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"VmRSS": peak, "VmHWM": peak}


def _reset_peak() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def child(name: str, items: int, concurrency: int) -> None:
    """Runs in the fresh process: warm up, then measure; prints one JSON line."""
    contender = CONTENDERS[name]
    job = Job(None)
    _reset_peak()
    cold = _status()["VmRSS"]
    contender(job, range(WARM_UP), concurrency)
    warm_peak = _status()["VmHWM"]
    reset = _reset_peak()
    before = _status()["VmRSS"]
    measure = contender(job, range(items), concurrency)
    peak = _status()["VmHWM"]
    print(
        json.dumps(
            {
                "cold_kib": cold,
                "warm_up_growth_kib": warm_peak - cold,
                "before_kib": before,
                "peak_kib": peak,
                "growth_kib": peak - before,
                "wall": measure.wall,
                "reset": reset,
                "note": measure.note,
            }
        )
    )


@dataclass(frozen=True, slots=True)
class Result:
    """What one child measured (KiB, seconds)."""

    cold_kib: int
    warm_up_growth_kib: int
    before_kib: int
    peak_kib: int
    growth_kib: int
    wall: float
    reset: bool
    note: str


def measure(script: str, name: str, items: int, concurrency: int) -> Result:
    """Run ``child`` for one contender in a fresh interpreter; its result."""
    done = subprocess.run(
        [sys.executable, script, "rss-child", name, str(items), str(concurrency)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"the RSS child for {name!r} failed:\n{done.stderr}")
    return Result(**json.loads(done.stdout.strip().splitlines()[-1]))
