"""The local HTTP upstream of the benchmarks, run in a process of its own.

``GET /item/<i>`` answers ``{"item": i}`` after ``latency(i)`` seconds, where the
latencies are a fixed number or drawn once, per item, from a seeded lognormal
distribution: every contender sees the same latency for the same item. Running in its
own process, the server's CPU is not counted as the client's, and its threads do not
compete with the client for the client's GIL.

    python benchmarks/_upstream.py --fixed 0.2
    python benchmarks/_upstream.py --lognormal 0.1 1.0 --items 200 --seed 7
    python benchmarks/_upstream.py --fixed 0.05 --per-second 20 --burst 5 --retry-after int

With ``--per-second`` it answers 429 (with a Retry-After in whole or fractional seconds)
above that rate, as a token bucket of ``--burst``; ``GET /stats`` tells how many requests
it admitted and refused.

prints its URL on the first line of stdout and serves until its stdin is closed (so it
never outlives the benchmark that started it).
"""

from __future__ import annotations

import argparse
import json
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


def latencies(
    *, fixed: float | None = None, lognormal: tuple[float, float] | None = None, items: int = 1, seed: int = 7
) -> list[float]:
    """Seconds per item: ``fixed``, or lognormal with (median, sigma) from ``Random(seed)``."""
    if lognormal is None:
        return [fixed or 0.0] * items
    median, sigma = lognormal
    rng = random.Random(seed)
    return [rng.lognormvariate(math.log(median), sigma) for _ in range(items)]


class RateLimit:
    """The upstream's own limiter: a token bucket answering 429 with a Retry-After."""

    def __init__(self, per_second: float, burst: int, retry_after: str, headers: str = "none") -> None:
        self.headers = headers
        self.per_second = per_second
        self.burst = burst
        self.retry_after = retry_after
        self.lock = threading.Lock()
        self.tokens = float(burst)
        self.refilled = time.monotonic()
        self.ok = self.refused = 0
        self.started = time.monotonic()
        self.times: list[tuple[float, int]] = []  # (seconds since start, status): GET /times

    def told(self) -> dict[str, str]:
        """The rate-limit fields every answer carries (``--headers``): the IETF draft's
        ``RateLimit-Policy``/``RateLimit`` (quota per second, remaining, whole seconds to
        a full bucket), or ``X-RateLimit-Limit/Remaining/Reset`` (the same, without a window)."""
        if self.headers == "none":
            return {}
        with self.lock:
            now = time.monotonic()
            tokens = min(float(self.burst), self.tokens + (now - self.refilled) * self.per_second)
        remaining, reset = int(tokens), math.ceil((self.burst - tokens) / self.per_second)
        if self.headers == "ratelimit":
            return {
                "RateLimit-Policy": f'"default";q={self.per_second:g};w=1',
                "RateLimit": f'"default";r={remaining};t={reset}',
            }
        return {
            "X-RateLimit-Limit": f"{self.per_second:g}",
            "X-RateLimit-Remaining": str(remaining),
            "X-RateLimit-Reset": str(reset),
        }

    def admit(self) -> str | None:
        """None: admitted (a token taken); else the Retry-After value to answer 429 with."""
        with self.lock:
            now = time.monotonic()
            self.tokens = min(float(self.burst), self.tokens + (now - self.refilled) * self.per_second)
            self.refilled = now
            if self.tokens >= 1:
                self.tokens -= 1
                self.ok += 1
                self.times.append((now - self.started, 200))
                return None
            self.refused += 1
            self.times.append((now - self.started, 429))
            wait = (1 - self.tokens) / self.per_second
        return str(max(1, math.ceil(wait))) if self.retry_after == "int" else f"{wait:.3f}"


def serve(table: Sequence[float], limit: RateLimit | None = None) -> None:
    """Serve until stdin closes."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as a pooled client expects
        disable_nagle_algorithm = True  # no delayed-ACK stalls between headers and body

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            if self.path == "/stats":
                counts = (0, 0) if limit is None else (limit.ok, limit.refused)
                self._send(200, b'{"ok": %d, "429": %d}' % counts)
                return
            if self.path == "/times":  # when each request arrived, and its status
                times = [] if limit is None else [[round(t, 4), s] for t, s in limit.times]
                self._send(200, json.dumps(times).encode())
                return
            if limit is not None:
                refused = limit.admit()
                if refused is not None:
                    self._send(429, b'{"error": "rate limited"}', {"Retry-After": refused, **limit.told()})
                    return
            _, _, tail = self.path.partition("/item/")
            if not tail.isdigit():
                self._send(404, b'{"error": "not found"}')
                return
            index = int(tail)
            delay = table[index % len(table)]
            if delay > 0:
                time.sleep(delay)
            self._send(200, b'{"item": %d}' % index, limit.told() if limit is not None else None)

        def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
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
def running(*args: str, script: str = __file__) -> Iterator[str]:
    """``with running("--fixed", "0.2") as url``: the server in a child process, until the block
    ends (its stdin closes). Another benchmark's own server: ``running("--serve", script=__file__)``,
    whose first line of output (yielded) starts with its URL."""
    child = subprocess.Popen([sys.executable, script, *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
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
    group.add_argument(
        "--lognormal", type=float, nargs=2, metavar=("MEDIAN", "SIGMA"), help="lognormal latency per item"
    )
    parser.add_argument(
        "--items", type=int, default=1, help="how many per-item latencies to draw (item i uses i mod ITEMS)"
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--per-second", type=float, help="rate limit: answer 429 above this many requests per second")
    parser.add_argument("--burst", type=int, default=1, help="rate limit: requests let through at once")
    parser.add_argument("--retry-after", choices=("int", "fraction"), default="fraction", help="the 429's Retry-After")
    parser.add_argument(
        "--headers",
        choices=("none", "ratelimit", "x-ratelimit"),
        default="none",
        help="rate-limit fields on every answer: the IETF draft's, or X-RateLimit-*",
    )
    args = parser.parse_args()
    lognormal = None if args.lognormal is None else (args.lognormal[0], args.lognormal[1])
    limit = None if args.per_second is None else RateLimit(args.per_second, args.burst, args.retry_after, args.headers)
    serve(latencies(fixed=args.fixed, lognormal=lognormal, items=args.items, seed=args.seed), limit)


if __name__ == "__main__":
    main()
