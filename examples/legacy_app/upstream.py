"""A fake upstream API on 127.0.0.1, for the demo and the tests.

Endpoints (the first path segment names the endpoint; each has its own :class:`Profile`):

- ``GET /pair/<token>``: ``{"token", "price", "volume"}`` (the token-scoring job);
- ``GET /markets/<market>/ticker|depth|funding``: market data (the prediction job);
- ``GET /a/price/<coin>`` and ``GET /b/info/<coin>``: two sources with their own limits (collection);
- ``GET /wallets/<address>``: wallet balances (the wallet queue);
- ``GET /stats``: requests, peak in flight and 429s, overall and per endpoint;
  ``GET /timeline``: every request's endpoint, key, start, end and status; ``GET /stats/reset``.

A profile sets the latency (fixed or lognormal, seeded), a rate limit (requests per second
with a burst) and a concurrency limit answered with 429 and ``Retry-After``, a share of
requests answered 429 whatever the load (deterministic per key and attempt, with a
``Retry-After`` drawn in the profile's range, fractional seconds), and bursts of 503.
``scale`` multiplies every time (latencies, Retry-After) and divides every rate, so tests
run the same scenario faster. Start it in-process (``with Upstream() as up: up.url``)
or as a command (``python -m legacy_app.upstream``, which prints its URL).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import random
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

SCALE_ENV = "UPSTREAM_TIME_SCALE"


@dataclass(frozen=True, slots=True)
class Profile:
    """How one endpoint behaves. Times are seconds at scale 1."""

    latency: float = 0.2  # fixed latency, or the median when ``sigma`` > 0
    sigma: float = 0.0  # lognormal spread (0: fixed)
    per_second: float | None = None  # above this rate (token bucket) answer 429
    burst: int = 1
    max_concurrent: int | None = None  # above this many in flight answer 429
    reject_share: float = 0.0  # this share of requests answered 429 whatever the load ...
    retry_after: tuple[float, float] = (1.0, 1.0)  # ... each with a Retry-After in this range
    burst_503_every: int = 0  # every Nth request starts a burst of 503s ...
    burst_503_length: int = 0  # ... this long


#: The demo's endpoints (the token endpoint's latency is the ``latency`` argument).
DEMO_PROFILES: dict[str, Profile] = {
    "markets": Profile(latency=0.08, sigma=0.5),
    "a": Profile(latency=0.1, max_concurrent=3),
    "b": Profile(latency=0.1, per_second=2.0, burst=2, burst_503_every=17, burst_503_length=2),
    # Seed 003's balance API at a tenth of its times: about 3 s of work per wallet there, 0.3 s
    # here; a quarter of requests refused whatever the load, each asking for 2-4 s there (0.2-0.4 s
    # here), so a refused wallet waits about as long as a wallet's work; 40 requests/s allowed.
    "wallets": Profile(latency=0.3, per_second=40.0, burst=10, reject_share=0.25, retry_after=(0.2, 0.4)),
}


def _digest(*parts: object) -> bytes:
    return hashlib.sha256("|".join(map(str, parts)).encode()).digest()


def _unit(*parts: object) -> float:
    return int.from_bytes(_digest(*parts)[:4], "big") / 2**32


def pair_data(token: str) -> dict[str, Any]:
    """Deterministic data for a token, so two runs can be compared row by row."""
    digest = hashlib.sha256(token.encode()).digest()
    return {
        "token": token,
        "price": round(int.from_bytes(digest[:4], "big") / 2**32 * 100, 6),
        "volume": int.from_bytes(digest[4:8], "big") % 1_000_000,
    }


def body_for(endpoint: str, parts: list[str]) -> dict[str, Any] | None:
    """The deterministic answer of an endpoint, or None (404)."""
    if endpoint == "pair" and len(parts) == 1:
        return pair_data(parts[0])
    if endpoint == "markets" and len(parts) == 2 and parts[1] in ("ticker", "depth", "funding"):
        market, kind = parts
        if kind == "ticker":
            return {
                "market": market,
                "last": round(_unit(market, "last") * 1000, 4),
                "change": round(_unit(market, "chg") - 0.5, 6),
            }
        if kind == "depth":
            return {
                "market": market,
                "bid_size": round(_unit(market, "bid") * 50, 4),
                "ask_size": round(_unit(market, "ask") * 50, 4),
            }
        return {"market": market, "rate": round((_unit(market, "funding") - 0.5) / 100, 8)}
    if endpoint == "a" and len(parts) == 2 and parts[0] == "price":
        return {"coin": parts[1], "usd": round(_unit(parts[1], "usd") * 5000, 4)}
    if endpoint == "b" and len(parts) == 2 and parts[0] == "info":
        return {
            "coin": parts[1],
            "supply": int(_unit(parts[1], "supply") * 1e9),
            "rank": int(_unit(parts[1], "rank") * 500) + 1,
        }
    if endpoint == "wallets" and len(parts) == 1:
        return {
            "address": parts[0],
            "balance": round(_unit(parts[0], "balance") * 100, 8),
            "txs": int(_unit(parts[0], "txs") * 900),
        }
    return None


class _Bucket:
    """A token bucket: ``rate`` per second, at most ``burst`` saved up."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate, self.burst = rate, burst
        self.tokens = float(burst)
        self.stamp = time.monotonic()

    def take(self) -> float:
        """0 when a request may pass now, else the seconds until it could."""
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / self.rate


class _Endpoint:
    """One endpoint's counters and limiter state (guarded by the Stats lock)."""

    def __init__(self, profile: Profile, scale: float) -> None:
        self.profile = profile
        self.bucket = _Bucket(profile.per_second / scale, profile.burst) if profile.per_second else None
        self.requests = self.in_flight = self.peak_in_flight = 0
        self.status_429 = self.status_503 = 0
        self.attempts: dict[str, int] = {}
        self.burst_left = 0

    def snapshot(self) -> dict[str, int]:
        return {
            "requests": self.requests,
            "peak_in_flight": self.peak_in_flight,
            "status_429": self.status_429,
            "status_503": self.status_503,
        }


class Stats:
    """Requests seen, in flight now, the peak in flight, per path, per endpoint, and a timeline."""

    def __init__(self, scale: float = 1.0) -> None:
        self.scale = scale
        self.lock = threading.Lock()
        self.requests = 0
        self.in_flight = 0
        self.peak_in_flight = 0
        self.per_path: dict[str, int] = {}
        self.endpoints: dict[str, _Endpoint] = {}
        self.timeline: list[dict[str, Any]] = []

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
                "status_429": sum(e.status_429 for e in self.endpoints.values()),
                "per_path": dict(self.per_path),
                "endpoints": {name: e.snapshot() for name, e in self.endpoints.items()},
            }

    def reset(self) -> None:
        with self.lock:
            self.requests = self.peak_in_flight = 0
            self.per_path.clear()
            self.timeline.clear()
            for name, endpoint in list(self.endpoints.items()):
                self.endpoints[name] = _Endpoint(endpoint.profile, self.scale)


class Upstream:
    """The server, on a free port of 127.0.0.1 unless told otherwise.

    ``latency`` and ``delays`` (per token) set the ``/pair`` endpoint's latency, ``fail``
    the tokens it answers 500 for; ``profiles`` the other endpoints (default
    :data:`DEMO_PROFILES`); ``scale`` (default ``$UPSTREAM_TIME_SCALE`` or 1) every time.
    """

    def __init__(
        self,
        *,
        latency: float = 0.2,
        port: int = 0,
        fail: frozenset[str] = frozenset(),
        delays: dict[str, float] | None = None,
        profiles: dict[str, Profile] | None = None,
        scale: float | None = None,
        seed: int = 0,
    ) -> None:
        self.latency = latency
        self.fail = fail
        self.delays = dict(delays or {})  # per-token latency, overriding ``latency``
        self.scale = scale if scale is not None else float(os.environ.get(SCALE_ENV, "1") or 1)
        self.profiles = {"pair": Profile(latency=latency), **(DEMO_PROFILES if profiles is None else profiles)}
        self.random = random.Random(seed)
        self.stats = Stats(self.scale)
        for name, profile in self.profiles.items():
            self.stats.endpoints[name] = _Endpoint(profile, self.scale)
        self.started = time.time()
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
                if path == "/timeline":
                    with upstream.stats.lock:
                        self._send(200, {"requests": list(upstream.stats.timeline)})
                    return
                upstream.stats.enter(path)
                try:
                    upstream.handle(self, path)
                finally:
                    upstream.stats.leave()

            def _send(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
                data = json.dumps(body).encode()
                # the request ends as its answer starts out: a client that has it may send its next
                # one before this thread runs again, and must not be seen as two in flight
                self.answered_at = time.time()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.server.request_queue_size = 128
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, name="upstream", daemon=True)

    # -- one request ----------------------------------------------------------------------
    def _admit(self, endpoint: _Endpoint, key: str) -> tuple[int, float]:
        """(status, Retry-After seconds, scaled): 0 when admitted, else 429 or 503 (under the
        lock). A bucket or concurrency limit asks for whole seconds (at least 1), as most APIs
        do; a load-independent refusal for its profile's range, to the hundredth."""
        profile = endpoint.profile
        endpoint.requests += 1
        endpoint.in_flight += 1
        endpoint.peak_in_flight = max(endpoint.peak_in_flight, endpoint.in_flight)
        attempt = endpoint.attempts[key] = endpoint.attempts.get(key, 0) + 1
        if profile.max_concurrent is not None and endpoint.in_flight > profile.max_concurrent:
            return 429, self.scale
        if endpoint.bucket is not None:
            wait = endpoint.bucket.take()
            if wait > 0:
                return 429, max(1, math.ceil(wait / self.scale)) * self.scale
        if profile.reject_share and _unit(key, attempt, "reject-share") < profile.reject_share:
            low, high = profile.retry_after
            return 429, round(low + (high - low) * _unit(key, attempt, "retry-after"), 2) * self.scale
        if profile.burst_503_every:
            if endpoint.burst_left > 0:
                endpoint.burst_left -= 1
                return 503, 0.0
            if endpoint.requests % profile.burst_503_every == 0:
                endpoint.burst_left = profile.burst_503_length - 1
                return 503, 0.0
        return 0, 0.0

    def _latency(self, endpoint: str, profile: Profile, key: str) -> float:
        if endpoint == "pair":
            return self.delays.get(key, self.latency) * self.scale
        if profile.sigma > 0:
            with self.stats.lock:
                return profile.latency * math.exp(self.random.gauss(0, profile.sigma)) * self.scale
        return profile.latency * self.scale

    def handle(self, handler: Any, path: str) -> None:
        parts = [p for p in path.split("/") if p]
        name = parts[0] if parts else ""
        key = "/".join(parts[1:])
        start = time.time()
        status = 404
        handler.answered_at = None
        try:
            with self.stats.lock:
                endpoint = self.stats.endpoints.get(name)
                verdict, wait = self._admit(endpoint, key) if endpoint is not None else (0, 0.0)
            if endpoint is None:
                handler._send(404, {"error": "not found"})
                return
            try:
                if verdict == 429:
                    status = 429
                    with self.stats.lock:
                        endpoint.status_429 += 1
                    time.sleep(0.002)
                    handler._send(429, {"error": "rate limited"}, {"Retry-After": f"{wait:g}"})
                    return
                if verdict == 503:
                    status = 503
                    with self.stats.lock:
                        endpoint.status_503 += 1
                    time.sleep(0.005 * self.scale)
                    handler._send(503, {"error": "temporarily unavailable"}, {"Retry-After": f"{self.scale:g}"})
                    return
                time.sleep(self._latency(name, endpoint.profile, parts[-1]))
                body = body_for(name, parts[1:])
                if name == "pair" and parts[-1] in self.fail:
                    status = 500
                    handler._send(500, {"error": f"upstream failed for {parts[-1]}"})
                elif body is None:
                    handler._send(404, {"error": "not found"})
                else:
                    status = 200
                    handler._send(200, body)
            finally:
                with self.stats.lock:
                    endpoint.in_flight -= 1
        finally:
            with self.stats.lock:
                end = handler.answered_at or time.time()
                self.stats.timeline.append({"endpoint": name, "key": key, "start": start, "end": end, "status": status})

    def __enter__(self) -> Upstream:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def main() -> None:
    parser = argparse.ArgumentParser(description="a fake upstream API on 127.0.0.1")
    parser.add_argument("--latency", type=float, default=0.2, help="seconds per /pair request (default 0.2)")
    parser.add_argument("--port", type=int, default=0, help="port (default: a free one)")
    parser.add_argument("--scale", type=float, default=None, help=f"multiply every time (default ${SCALE_ENV} or 1)")
    parser.add_argument("--seconds", type=float, default=600, help="stop by itself after this long")
    args = parser.parse_args()
    with Upstream(latency=args.latency, port=args.port, scale=args.scale) as upstream:
        print(upstream.url, flush=True)
        time.sleep(args.seconds)


if __name__ == "__main__":
    main()
