"""What sched_accel adds to interpreter start-up.

Runs ``python -c pass`` many times, interleaved in random order, in four set-ups:
  baseline   sched_accel.pth moved out of site-packages (as if not installed)
  flag off   installed, ENABLE_SCHEDULER_OPTIMIZATION unset
  flag on    installed, flag on, a config with a target whose module this process never imports
  patched    flag on, and the process imports the target module (full activation: wrapt, loguru, TOML)
and prints the median start-up time of each and its difference to the baseline.
Goals (issue 2): flag off < 1 ms, flag on without a target import < 10 ms.

    python benchmarks/startup.py [--runs 200]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

CONFIG = """
[[targets]]
loop = "bench_target:loop"
replacement = "bench_target:fast"
"""
TARGET = "def loop(items):\n    return list(items)\n\ndef fast(items):\n    return list(items)\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=200, help="runs per set-up (default 200)")
    args = parser.parse_args()
    pth = Path(sysconfig.get_paths()["purelib"]) / "sched_accel.pth"
    if not pth.is_file():
        print(f"no {pth}: run this with the python of an environment where sched_accel is installed", file=sys.stderr)
        return 2
    off_path = pth.with_suffix(".pth.benchmark-off")
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "sched_accel.toml").write_text(CONFIG)
        Path(tmp, "bench_target.py").write_text(TARGET)
        base_env = {k: v for k, v in os.environ.items() if not k.startswith(("SCHED_ACCEL_", "ENABLE_SCHEDULER"))}
        base_env["SCHED_ACCEL_CONTROL"] = str(Path(tmp, "control.json"))
        base_env["PYTHONPATH"] = tmp
        flag_on = dict(
            base_env, ENABLE_SCHEDULER_OPTIMIZATION="true", SCHED_ACCEL_CONFIG=str(Path(tmp, "sched_accel.toml"))
        )
        setups = {
            "baseline": (base_env, "pass", True),
            "flag off": (base_env, "pass", False),
            "flag on, no target imported": (flag_on, "pass", False),
            "flag on, target imported": (flag_on, "import bench_target", False),
        }
        samples: dict[str, list[float]] = {name: [] for name in setups}
        order = list(setups)
        for _ in range(args.runs):
            random.shuffle(order)  # no set-up always runs first (caches, CPU clock)
            for name in order:
                env, code, hide = setups[name]
                if hide:
                    pth.rename(off_path)
                try:
                    started = time.perf_counter()
                    subprocess.run([sys.executable, "-c", code], env=env, cwd=tmp, check=True, capture_output=True)
                    samples[name].append(time.perf_counter() - started)
                finally:
                    if hide:
                        off_path.rename(pth)
    base = statistics.median(samples["baseline"])
    print(f"interpreter start-up, median of {args.runs} runs each ({sys.executable}, Python {sys.version.split()[0]})")
    print(f"{'set-up':32s} {'median ms':>10s} {'added ms':>9s}")
    for name, values in samples.items():
        median = statistics.median(values)
        added = "" if name == "baseline" else f"{(median - base) * 1000:+9.2f}"
        print(f"{name:32s} {median * 1000:10.2f} {added}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
