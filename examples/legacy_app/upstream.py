"""A fake upstream API on 127.0.0.1, for the demo and the tests.

``GET /pair/<token>`` answers ``{"token": ..., "price": ..., "volume": ...}`` after the
configured latency; ``GET /stats`` counts requests and the peak number in flight.
Start it in-process (``with Upstream(latency=0.2) as up: up.url``) or as a command
(``python -m legacy_app.upstream --latency 0.2``, which prints its URL).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class Stats:
    """Requests seen, in flight now, and the peak in flight."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests = 0
        self.in_flight = 0
        self.peak_in_flight = 0
        self.per_path: dict[str, int] = {}

    def enter(self, path: str) -> None:
        with self.lock:
            self.requests += 1
            self.in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
            self.per_path[path] = self.per_path.get(path, 0) + 1

    def leave(self) -> None:
        with self.lock:
            self.in_flight -= 1

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            return {
                "requests": self.requests,
                "in_flight": self.in_flight,
                "peak_in_flight": self.peak_in_flight,
                "per_path": dict(self.per_path),
            }

    def reset(self) -> None:
        with self.lock:
            self.requests = self.peak_in_flight = 0
            self.per_path.clear()


def pair_data(token: str) -> dict[str, Any]:
    """Deterministic data for a token, so two runs can be compared row by row."""
    digest = hashlib.sha256(token.encode()).digest()
    return {
        "token": token,
        "price": round(int.from_bytes(digest[:4], "big") / 2**32 * 100, 6),
        "volume": int.from_bytes(digest[4:8], "big") % 1_000_000,
    }


class Upstream:
    """The server, on a free port of 127.0.0.1 unless told otherwise."""

    def __init__(
        self,
        *,
        latency: float = 0.2,
        port: int = 0,
        fail: frozenset[str] = frozenset(),
        delays: dict[str, float] | None = None,
    ) -> None:
        self.latency = latency
        self.fail = fail
        self.delays = dict(delays or {})  # per-token latency, overriding ``latency``
        self.stats = Stats()
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # no 40 ms delayed-ACK stalls between headers and body

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                pass

            def do_GET(self) -> None:
                path = self.path.split("?")[0]
                if path == "/stats":
                    self._send(200, upstream.stats.snapshot())
                    return
                if path == "/stats/reset":
                    upstream.stats.reset()
                    self._send(200, {"reset": True})
                    return
                upstream.stats.enter(path)
                try:
                    token = path.removeprefix("/pair/")
                    time.sleep(upstream.delays.get(token, upstream.latency))
                    if path.startswith("/pair/"):
                        if token in upstream.fail:
                            self._send(500, {"error": f"upstream failed for {token}"})
                        else:
                            self._send(200, pair_data(token))
                    else:
                        self._send(404, {"error": "not found"})
                finally:
                    upstream.stats.leave()

            def _send(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, name="upstream", daemon=True)

    def __enter__(self) -> Upstream:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def main() -> None:
    parser = argparse.ArgumentParser(description="a fake upstream API on 127.0.0.1")
    parser.add_argument("--latency", type=float, default=0.2, help="seconds per request (default 0.2)")
    parser.add_argument("--port", type=int, default=0, help="port (default: a free one)")
    parser.add_argument("--seconds", type=float, default=600, help="stop by itself after this long")
    args = parser.parse_args()
    with Upstream(latency=args.latency, port=args.port) as upstream:
        print(upstream.url, flush=True)
        time.sleep(args.seconds)


if __name__ == "__main__":
    main()
