"""One failing host among healthy ones: answered at once, as the plain loop sees it (issue 23, item 4).

A URL checker's loop (``legacy_jobs.check_urls``) over 40 URLs: 30 on a healthy host, 5 on a
host that answers 503 (no Retry-After), 5 on a port where nothing listens (connection
refused); each answer takes 50 ms. The plain loop records each URL's status or error. Since
the sequential loop meets a plain 503 and a dead host too, sched_accel answers them at once,
as the plain loop saw them: it retries only what its concurrency causes (a 429, a 503 with
Retry-After). ``[retry] transient = true`` is the old default: 503s, refusals, resets and
timeouts retried 4 times with backoff.

Goals for the default row: the plain loop's results exactly, each request to the failing
host once, and never slower than the plain loop (here about ceil(40 / 8) x 50 ms).

    python benchmarks/failing_host.py             # medians of 3
    python benchmarks/failing_host.py --repeat 5
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _upstream  # noqa: E402
import legacy_jobs  # noqa: E402
from _harness import installed, machine, table  # noqa: E402

LATENCY = 0.05
CONCURRENCY = 8
HEALTHY, FAILING, DEAD = 30, 5, 5
CONFIG = """\
concurrency = {concurrency}
log = "stdlib"
{top}

[[targets]]
loop = "legacy_jobs:check_urls"
fetch = "http"
items = "urls"
"""


# -- the upstream, in a process of its own: a healthy port and a failing one -----------------------
def serve() -> None:
    """Serve until stdin closes; print the URLs of the healthy port, the failing one and a dead one."""
    counts = {"failing": 0}
    lock = threading.Lock()

    def handler(status: int) -> type[BaseHTTPRequestHandler]:
        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:  # noqa: N802 - the http.server API
                if self.path == "/stats":
                    body = str(counts["failing"]).encode()
                    self._send(200, body)
                    return
                if self.path == "/reset":
                    with lock:
                        counts["failing"] = 0
                    self._send(200, b"0")
                    return
                time.sleep(LATENCY)
                if status != 200:
                    with lock:
                        counts["failing"] += 1
                self._send(status, b'{"ok": true}' if status == 200 else b"unavailable")

            def _send(self, code: int, body: bytes) -> None:
                self.send_response(code)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        return Handler

    servers = [ThreadingHTTPServer(("127.0.0.1", 0), handler(code)) for code in (200, 503)]
    for server in servers:
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
    dead = ThreadingHTTPServer(("127.0.0.1", 0), handler(200))
    dead_port = dead.server_address[1]
    dead.server_close()  # nothing listens there now: connection refused
    print(*(f"http://127.0.0.1:{port}" for port in (*(s.server_address[1] for s in servers), dead_port)), flush=True)
    sys.stdin.read()


def urls(healthy: str, failing: str, dead: str) -> list[str]:
    """30 healthy URLs with a failing one and a dead one after every sixth."""
    out = [f"{healthy}/item/{i}" for i in range(HEALTHY)]
    for n in range(FAILING):
        out.insert(6 * (n + 1) + 2 * n, f"{failing}/status/{n}")
        out.insert(6 * (n + 1) + 2 * n + 1, f"{dead}/status/{n}")
    return out


def check_one(http: httpx.Client, url: str) -> tuple[str, Any]:
    try:
        return url, http.get(url).status_code
    except httpx.TransportError as exc:
        return url, type(exc).__name__


def plain(items: list[str]) -> list[tuple[str, Any]]:
    with httpx.Client(timeout=10) as http:
        return legacy_jobs.check_urls(items, http)


def thread_pool(items: list[str]) -> list[tuple[str, Any]]:
    with (
        httpx.Client(timeout=10, limits=httpx.Limits(max_connections=CONCURRENCY)) as http,
        ThreadPoolExecutor(CONCURRENCY) as pool,
    ):
        return list(pool.map(lambda url: check_one(http, url), items))


def ours(top: str) -> Callable[[list[str]], list[tuple[str, Any]]]:
    def run(items: list[str]) -> list[tuple[str, Any]]:
        with installed(CONFIG.format(concurrency=CONCURRENCY, top=top), f"failing-{abs(hash(top))}.toml"):
            with httpx.Client(timeout=10) as http:
                return legacy_jobs.check_urls(items, http)

    return run


CONTENDERS: dict[str, Callable[[list[str]], list[tuple[str, Any]]]] = {
    "plain loop": plain,
    "ThreadPoolExecutor.map (8)": thread_pool,
    "sched_accel (default: transient failures answered at once)": ours(""),
    "sched_accel, [retry] transient = true (the old default)": ours("[retry]\ntransient = true"),
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs per contender (the median is shown)")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        serve()
        return 0
    with _upstream.running("--serve", script=__file__) as line:
        healthy, failing, dead = line.split()
        items = urls(healthy, failing, dead)
        stats, reset = f"{failing}/stats", f"{failing}/reset"
        expected = plain(items)
        rows, walls, ok = [], {}, True
        for name, run in CONTENDERS.items():
            seconds, sent, same = [], [], True
            for _ in range(args.repeat):
                httpx.get(reset)
                started = time.perf_counter()
                got = run(items)
                seconds.append(time.perf_counter() - started)
                sent.append(int(httpx.get(stats).text))
                same = same and got == expected
            walls[name] = wall = statistics.median(seconds)
            rows.append(
                [name, f"{wall:.3f}", f"{walls['plain loop'] / wall:.2f}x", str(max(sent)), "yes" if same else "NO"]
            )
            if name.startswith("sched_accel (default"):
                ok = same and max(sent) == FAILING and wall <= walls["plain loop"]
        print(
            f"{len(items)} URLs ({HEALTHY} healthy, {FAILING} answering 503, {DEAD} refused), {LATENCY * 1000:g} ms "
            f"each, concurrency {CONCURRENCY}; medians of {args.repeat}"
        )
        print(table(["contender", "wall s", "vs plain", "requests to the 503 host", "plain loop's results"], rows))
        print(
            f"goal: the default row gets the plain loop's results, sends each request to the failing host once "
            f"({FAILING}) and is no slower than the plain loop: {'PASS' if ok else 'FAIL'}"
        )
        print(machine())
        return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
