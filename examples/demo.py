"""`make demo`: the legacy job, sequential and then accelerated, side by side.

It starts the fake upstream on 127.0.0.1, runs ``python -m legacy_app.run_job`` in a fresh
process with ENABLE_SCHEDULER_OPTIMIZATION unset and then set (so activation goes through
the real start-up hook), checks that both runs wrote the same rows, and prints a table.
Exit status 1 when the outputs differ.
"""

from __future__ import annotations

import json
import math
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from legacy_app.upstream import Upstream  # noqa: E402

LATENCY = 0.2
CONCURRENCY = 8


def run_job(upstream: Upstream, flag: str | None, db: Path) -> dict[str, object]:
    """One run of the job in its own interpreter; what it printed, wrote and cost."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SCHED_ACCEL_", "ENABLE_SCHEDULER"))}
    env.update(
        PYTHONPATH=os.pathsep.join([str(HERE), str(HERE / "accel")]),
        UPSTREAM_URL=upstream.url,
        SCHED_ACCEL_CONFIG=str(HERE / "legacy_app" / "sched_accel.toml"),
        SCHED_ACCEL_CONTROL=str(db.parent / "control.json"),
    )
    if flag is not None:
        env["ENABLE_SCHEDULER_OPTIMIZATION"] = flag
    urllib.request.urlopen(upstream.url + "/stats/reset").read()
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "legacy_app.run_job", str(db)], env=env, capture_output=True, text=True, timeout=120
    )
    seconds = time.perf_counter() - started
    stats = json.loads(urllib.request.urlopen(upstream.url + "/stats").read())
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT token, price, score FROM scores ORDER BY token").fetchall()
    return {
        "returncode": done.returncode,
        "stdout": done.stdout,
        "stderr": done.stderr,
        "seconds": seconds,
        "rows": rows,
        "saved": done.stdout.split()[0] if done.stdout else "",
        "job_seconds": float(done.stdout.split("seconds=")[1].split()[0]) if "seconds=" in done.stdout else seconds,
        "peak": stats["peak_in_flight"],
        "requests": stats["requests"],
    }


def main() -> int:
    print("sched_accel demo: legacy_app.jobs:update_scores, 70 tokens, upstream latency 200 ms\n")
    with tempfile.TemporaryDirectory(prefix="sched-accel-demo-") as tmp, Upstream(latency=LATENCY) as upstream:
        off = run_job(upstream, None, Path(tmp) / "off.db")
        on = run_job(upstream, "true", Path(tmp) / "on.db")
    for name, result in (("sequential", off), ("accelerated", on)):
        if result["returncode"] != 0:
            print(f"the {name} run failed (exit {result['returncode']}):\n{result['stderr']}")
            return 1
    items = len(off["rows"])  # type: ignore[arg-type]
    ideal = math.ceil(items / CONCURRENCY) * LATENCY
    header = ("job", "items", "sequential s", "accelerated s", "speedup", "ideal speedup", "peak in flight", "requests")
    row = (
        "update_scores",
        str(items),
        f"{off['job_seconds']:.2f}",
        f"{on['job_seconds']:.2f}",
        f"{off['job_seconds'] / on['job_seconds']:.1f}x",  # type: ignore[operator]
        f"{items * LATENCY / ideal:.1f}x",
        f"{off['peak']} -> {on['peak']}",
        f"{off['requests']} -> {on['requests']}",
    )
    widths = [max(len(a), len(b)) for a, b in zip(header, row, strict=True)]
    print("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
    print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)))
    print(
        f"\n(seconds: the job's own loop, as it prints them; whole processes, interpreter start-up included: "
        f"{off['seconds']:.2f} s and {on['seconds']:.2f} s; ideal: ceil({items}/{CONCURRENCY}) x {LATENCY} s = {ideal:.2f} s)"
    )
    print("\nthe accelerated run's log lines:")
    for line in str(on["stderr"]).splitlines():
        if "sched_accel." in line:
            print("  " + line)
    if off["rows"] != on["rows"] or off["saved"] != on["saved"]:
        print("\nFAIL: the accelerated run wrote different rows than the sequential run")
        return 1
    print(f"\nsame rows written by both runs ({items}), same output: {on['saved']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
