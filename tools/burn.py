"""Run a command while every core is kept busy: ``python tools/burn.py -- cmd args...``.

One busy-looping process per core (``os.cpu_count()``), at the lowest priority but one, for
as long as the command runs (and never longer than ``--limit`` seconds, 1 hour by default);
the command's exit status is this script's.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

BUSY = "import time\nend = time.monotonic() + {limit}\nwhile time.monotonic() < end:\n    sum(range(1000))\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--limit", type=float, default=3600.0, help="seconds the burners run at most")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="the command, after --")
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("a command to run is needed, after --")
    burners = [
        subprocess.Popen([sys.executable, "-c", BUSY.format(limit=args.limit)], preexec_fn=lambda: os.nice(5))
        for _ in range(os.cpu_count() or 1)
    ]
    try:
        return subprocess.call(command)
    finally:
        for burner in burners:
            burner.kill()
            burner.wait()


if __name__ == "__main__":
    sys.exit(main())
