"""The local HTTP upstream of the benchmarks, run in a process of its own.

``GET /item/<i>`` answers ``{"item": i}`` after ``latency(i)`` seconds, where the
latencies are a fixed number or drawn once, per item, from a seeded lognormal
distribution: every contender sees the same latency for the same item. Running in its
own process, the server's CPU is not counted as the client's, and its threads do not
compete with the client for the client's GIL.

    python benchmarks/_upstream.py --fixed 0.2
    python benchmarks/_upstream.py --lognormal 0.1 1.0 --items 200 --seed 7

prints its URL on the first line of stdout and serves until its stdin is closed (so it
never outlives the benchmark that started it).
"""

from __future__ import annotations

import argparse
import math
import os
import random
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def latencies(*, fixed: float | None = None, lognormal: tuple[float, float] | None = None, items: int = 1, seed: int = 7) -> list[float]:
    """Seconds per item: ``fixed``, or lognormal with (median, sigma) from ``Random(seed)``."""
    if lognormal is None:
        return [fixed or 0.0] * items
    median, sigma = lognormal
    rng = random.Random(seed)
    return [rng.lognormvariate(math.log(median), sigma) for _ in range(items)]


def serve(table: Sequence[float]) -> None:
    """Serve until stdin closes."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as a pooled client expects
        disable_nagle_algorithm = True  # no delayed-ACK stalls between headers and body

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            _, _, tail = self.path.partition("/item/")
            if not tail.isdigit():
                self._send(404, b'{"error": "not found"}')
                return
            index = int(tail)
            delay = table[index % len(table)]
            if delay > 0:
                time.sleep(delay)
            self._send(200, b'{"item": %d}' % index)

        def _send(self, status: int, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    class Server(ThreadingHTTPServer):
        daemon_threads = True
        request_queue_size = 256  # the default backlog of 5 drops SYNs when C connects at once

    server = Server(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print(f"http://127.0.0.1:{server.server_address[1]}", flush=True)
    sys.stdin.read()  # EOF: the benchmark is done (or died)
    os._exit(0)


@contextmanager
def running(*args: str) -> Iterator[str]:
    """``with running("--fixed", "0.2") as url``: the server in a child process."""
    child = subprocess.Popen(
        [sys.executable, __file__, *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None
        url = child.stdout.readline().strip()
        if not url.startswith("http://"):
            raise RuntimeError(f"the benchmark upstream did not start (it printed {url!r})")
        yield url
    finally:
        assert child.stdin is not None
        child.stdin.close()
        try:
            child.wait(timeout=5)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--fixed", type=float, metavar="SECONDS", help="the same latency for every item")
    group.add_argument("--lognormal", type=float, nargs=2, metavar=("MEDIAN", "SIGMA"), help="lognormal latency per item")
    parser.add_argument("--items", type=int, default=1, help="how many per-item latencies to draw (item i uses i mod ITEMS)")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    lognormal = None if args.lognormal is None else (args.lognormal[0], args.lognormal[1])
    serve(latencies(fixed=args.fixed, lognormal=lognormal, items=args.items, seed=args.seed))


if __name__ == "__main__":
    main()
