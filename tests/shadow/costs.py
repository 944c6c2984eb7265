"""What the shadow's hooks cost code that runs outside a shadow, in microseconds per call.

Run: ``.venv/bin/python -m tests.shadow.costs``. Each figure is measured in a fresh
interpreter without our hooks and in one with them installed and a shadow run active (the
audit hook cannot be removed), as the best of 7 rounds; the difference is our cost.
"""

from __future__ import annotations

import subprocess
import sys

CASES = {
    "print('x') to sys.stdout": ("import io, sys; sys.stdout = io.StringIO()", "print('x')"),
    "logging.info (a handler)": (
        "import io, logging; logging.basicConfig(stream=io.StringIO(), level=logging.INFO)",
        "logging.info('x')",
    ),
    "loguru logger.info (a sink)": (
        "from loguru import logger; logger.remove(); logger.add(lambda m: None)",
        "logger.info('x')",
    ),
    "open() a file for reading": ("import os; path = os.__file__", "open(path, 'rb').close()"),
    "sys._getframe() (1 audit event)": ("import sys", "sys._getframe()"),
    "time.sleep(0)": ("import time", "time.sleep(0)"),
    "sqlite3 prepare (authorizer)": (
        "import sqlite3; conn = sqlite3.connect(':memory:', cached_statements=0)",
        "conn.execute('SELECT 1').fetchall()",
    ),
}

TEMPLATE = """
import timeit
{install}
{setup}
{activate}
best = min(timeit.repeat({statement!r}, globals=globals(), number={number}, repeat=7))
import sys; print(best / {number} * 1e6, file=sys.__stdout__)
"""


def measure(setup: str, statement: str, hooked: bool, number: int = 20000) -> float:
    """Microseconds per call, in a fresh interpreter."""
    install = "from sched_accel._shadow import activate, install; install()" if hooked else ""
    activate = "activate()" if hooked else ""  # after setup: the stream proxies go in front of its stdout
    code = TEMPLATE.format(install=install, setup=setup, activate=activate, statement=statement, number=number)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(done.stdout.strip().splitlines()[-1])


def main() -> None:
    print(f"{'call, outside a shadow':32} {'plain us':>9} {'hooked us':>10} {'added us':>9}")
    for name, (setup, statement) in CASES.items():
        plain, hooked = measure(setup, statement, False), measure(setup, statement, True)
        print(f"{name:32} {plain:9.3f} {hooked:10.3f} {hooked - plain:9.3f}")


if __name__ == "__main__":
    main()
