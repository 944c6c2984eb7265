"""A soak: 1,000 runs of an accelerated loop in one process (issue 23, item 7).

The loop (``legacy_jobs.soak_loop``: 20 GETs through one ``httpx.Client``, HTTP-level
prefetch at concurrency 8) runs against an upstream in its own process that answers 200
after 5 ms, 429 with ``Retry-After: 0.05`` to a request that finds 4 others in flight (a limit
our concurrency meets, the plain loop never), and, drawn per (key, run) from a seeded hash,
503 without Retry-After (answered at once, as the plain loop sees it) or no answer for 2 s
(the client's 0.2 s timeout raises, the loop records "timeout"). Resident memory, open file
descriptors and threads are read after run 100 and every 100 runs after, once the last
run's threads have wound down (at most 2 s).

Goal: after the first 100 runs, each stays within 5 % of where it was, and every run's
results are the plain loop's for the same (key, run) answers.

    python benchmarks/soak.py               # 1,000 runs
    python benchmarks/soak.py --runs 200
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import threading
import time
import urllib.parse
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _upstream  # noqa: E402
import legacy_jobs  # noqa: E402
from _harness import EVENTS, installed, machine, table  # noqa: E402

KEYS = [f"k{i:02d}" for i in range(20)]
CONCURRENCY = 8
TIMEOUT = 0.2
CONFIG = f"""\
concurrency = {CONCURRENCY}
log = "stdlib"

[[targets]]
loop = "legacy_jobs:soak_loop"
fetch = "http"
items = "keys"
"""


#: Requests in flight at the upstream beyond which it answers 429.
MOST = 4


def fate(key: str, run: str) -> str:
    """What the upstream does for ``key`` in ``run`` whatever the load: ok, 503 or hang (seeded,
    so the plain loop and the accelerated one meet the same)."""
    draw = int.from_bytes(hashlib.blake2b(f"{key}/{run}".encode(), digest_size=4).digest(), "big") % 1000
    return "hang" if draw < 4 else "503" if draw < 50 else "ok"


def serve() -> None:
    """The upstream, until stdin closes; prints its URL."""
    in_flight = [0]
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:  # noqa: N802 - the http.server API
            url = urllib.parse.urlsplit(self.path)
            key = url.path.rsplit("/", 1)[-1]
            run = urllib.parse.parse_qs(url.query).get("run", ["0"])[0]
            what = fate(key, run)
            with lock:
                in_flight[0] += 1
                crowded = in_flight[0] > MOST
            try:
                if what == "hang":
                    time.sleep(2.0)
                time.sleep(0.005)
            finally:
                with lock:
                    in_flight[0] -= 1
            status, headers = 200, {}
            if what == "503":
                status = 503
            elif crowded:
                status, headers = 429, {"Retry-After": "0.05"}
            body = b'{"ok": true}'
            try:
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            except OSError:  # the client gave up on a hung answer
                pass

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print(f"http://127.0.0.1:{server.server_address[1]}", flush=True)
    sys.stdin.read()


def expected(run: int) -> list[Any]:
    """The plain loop's results for ``run`` (one request at a time: never refused with a 429)."""
    return ["timeout" if fate(k, str(run)) == "hang" else 503 if fate(k, str(run)) == "503" else 200 for k in KEYS]


def sample(threads: int | None = None) -> dict[str, int]:
    """Resident memory (KiB), open descriptors and threads of this process, once its threads are
    down to ``threads`` (the last run's wind down: a hung answer's worker waits out its timeout),
    or after 2 s."""
    deadline = time.monotonic() + 2.0
    while threads is not None and threading.active_count() > threads and time.monotonic() < deadline:
        time.sleep(0.01)
    with open("/proc/self/statm") as statm:
        resident = int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024
    return {"rss_kib": resident, "fds": len(os.listdir("/proc/self/fd")), "threads": threading.active_count()}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=1000, help="runs of the loop (default 1000)")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        serve()
        return 0
    with _upstream.running("--serve", script=__file__) as url, installed(CONFIG, "soak.toml"):
        rows, base, differ, started = [], None, 0, time.perf_counter()
        seen = dict.fromkeys(("http_429", "http_503", "timeouts", "retries", "lost"), 0)
        with httpx.Client(base_url=url, timeout=TIMEOUT) as http:
            for run in range(1, args.runs + 1):
                differ += legacy_jobs.soak_loop(run, KEYS, http) != expected(run)
                for record in EVENTS.runs:
                    for name in seen:
                        seen[name] += int(record.get(name, 0))
                EVENTS.runs.clear()
                if run == min(100, args.runs) or run % 100 == 0:
                    now = sample(None if base is None else base["threads"])
                    base = base or now
                    rows.append(
                        [
                            str(run),
                            f"{time.perf_counter() - started:.0f}",
                            *(f"{now[k]} ({(now[k] - base[k]) / base[k]:+.1%})" for k in ("rss_kib", "fds", "threads")),
                        ]
                    )
        assert base is not None
        last = sample(base["threads"])
        grown = {k: (last[k] - base[k]) / base[k] for k in base}
        ok = differ == 0 and seen["lost"] == 0 and all(g <= 0.05 for g in grown.values())
        print(
            f"{args.runs} runs of {len(KEYS)} GETs at concurrency {CONCURRENCY}; answers 200, 429 (Retry-After 0.05), "
            "503, and some that hang 2 s (client timeout 0.2 s)"
        )
        print(table(["after run", "seconds", "RSS KiB (vs run 100)", "open fds", "threads"], rows))
        print("over all runs (their run lines): " + ", ".join(f"{name}={count}" for name, count in seen.items()))
        print(f"runs whose results differ from the plain loop's: {differ}")
        print(
            f"goal: RSS, fds and threads within 5 % of run 100's after {args.runs} runs, no run differing: "
            f"{'PASS' if ok else 'FAIL'}"
        )
        print(machine())
        return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
