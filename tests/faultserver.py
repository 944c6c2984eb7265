"""A real HTTP upstream on 127.0.0.1 that misbehaves on demand, for the fault-injection tests.

``GET /item/<key>`` answers ``{"item": key, "value": n}`` (``n`` derived from the key)
after ``latency`` seconds, unless a fault applies:

- a rate limit (token bucket ``per_second``/``burst``) answered with 429 and a Retry-After
  in whole seconds (``"int"``), fractional seconds (``"fraction"``) or an HTTP-date, or with
  no Retry-After but the spent quota's reset (``"x-ratelimit"``, ``"ratelimit"``), or with
  nothing but the advertised fields (``"none"``);
- ``faults[key]``: the faults of that key's first attempts, in order: ``"503"`` (no
  Retry-After), ``"hang"`` (no answer for ``hang`` seconds), ``"reset"`` (the connection is
  reset), ``"truncated"`` (a body shorter than its Content-Length), ``"garbage"`` (200 with a
  body that is not JSON), ``"500"``, ``"429"`` (refused at once, its Retry-After 0.05 s in
  the ``retry_after`` form);
- ``down``: every request answered 500 while it is set.

With ``advertise``, every answer carries the rate in the fields of one ``form``: the IETF
draft's ``"ratelimit"`` (08+: ``RateLimit-Policy: "default";q=40;w=1``, ``RateLimit:
"default";r=3;t=1``), ``"ratelimit-07"`` (``RateLimit-Policy: 40;w=1``, ``RateLimit:
limit=40, remaining=3, reset=1``), ``"ratelimit-06"`` (``RateLimit-Limit``, ``-Remaining``,
``-Reset`` and ``RateLimit-Policy: 40;w=1``), ``"x-ratelimit"`` (GitHub's ``X-RateLimit-Limit``,
``-Remaining``, ``-Reset``: no window) or ``"x-ratelimit-envoy"`` (``X-RateLimit-Limit: 40,
40;w=1``). The quota is ``per_second * window``; the reset is whole seconds (``reset=
"seconds"``) or a Unix time (``"epoch"``). ``date_offset`` sets the server's clock ahead (or
behind) the real one: its ``Date``, HTTP-dates and Unix times are on it. ``set_rate()`` changes
the limit mid-run, and ``rate_changes[key]`` does so when that key is first requested.

It counts requests, 429s, 503s and successful answers per key, and the peak in flight;
``arrived`` holds each GET's arrival (``time.monotonic()``).
``POST /item/<key>`` answers ``{"posted": key, "body": ...}`` at once and is counted in
``posts``, in arrival order in ``log`` (with the GETs: ``("GET", key)``), so a test can
tell when each request arrived. ``HEAD`` answers the GET's headers.

``tell`` lies: every answer carries these headers whatever the server does (a hostile
upstream's ``RateLimit-Policy: "x";q=1;w=5`` on answers it serves at once, none refused).
"""

from __future__ import annotations

import email.utils
import json
import math
import socket
import struct
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def value_of(key: str) -> int:
    return sum(ord(c) * (i + 1) for i, c in enumerate(key)) % 9973


def answer(key: str) -> dict[str, Any]:
    """What a healthy server answers for ``key``."""
    return {"item": key, "value": value_of(key)}


class FaultServer:
    """Start with ``with FaultServer(...) as server:``; ``server.url`` is its base URL."""

    def __init__(
        self,
        *,
        latency: float = 0.01,
        per_second: float | None = None,
        burst: int = 1,
        retry_after: str = "fraction",
        faults: dict[str, list[str]] | None = None,
        hang: float = 3.0,
        advertise: bool = False,
        form: str = "ratelimit",
        window: float = 1.0,
        reset: str = "seconds",
        date_offset: float = 0.0,
        rate_changes: dict[str, float] | None = None,
        tell: dict[str, str] | None = None,
        serial: bool = False,
    ) -> None:
        if form not in FORMS:
            raise ValueError(f"form={form!r}: expected one of {', '.join(FORMS)}")
        if reset not in ("seconds", "epoch"):
            raise ValueError(f"reset={reset!r}: expected 'seconds' or 'epoch'")
        #: Every answer carries the IETF draft's RateLimit-Policy (per_second a second) and RateLimit.
        self.advertise = advertise and per_second is not None
        self.form = form
        self.window = window
        self.reset = reset
        #: The server's clock minus the real one, in seconds (its Date, HTTP-dates, Unix times).
        self.date_offset = date_offset
        #: ``per_second`` becomes ``rate_changes[key]`` when ``key`` is first requested.
        self.rate_changes = dict(rate_changes or {})
        #: Headers on every answer, whatever it is (a hostile upstream's told rate).
        self.tell = dict(tell or {})
        self.arrived: list[float] = []
        self.latency = latency
        #: Answers are made one at a time (an upstream that serialises): each waits for the last.
        self.serial = threading.Lock() if serial else None
        #: Latency of one key's answers, where it differs from ``latency``.
        self.latencies: dict[str, float] = {}
        self.per_second = per_second
        self.burst = burst
        self.retry_after = retry_after
        self.faults = {k: list(v) for k, v in (faults or {}).items()}
        self.hang = hang
        self.down = False
        self.lock = threading.Lock()
        self.tokens = float(burst)
        self.refilled = time.monotonic()
        self.requests: Counter[str] = Counter()
        self.posts: Counter[str] = Counter()
        self.log: list[tuple[str, str]] = []
        #: (key, Authorization, Cookie) of each GET or HEAD, in arrival order.
        self.credentials: list[tuple[str, str | None, str | None]] = []
        self.ok: Counter[str] = Counter()
        self.status: Counter[int] = Counter()
        self.in_flight = self.peak = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out in two writes: without TCP_NODELAY the body waits for
            # the client's delayed ACK (about 40 ms a request on loopback).
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def date_time_string(self, timestamp: float | None = None) -> str:
                return email.utils.formatdate(server.clock() if timestamp is None else timestamp, usegmt=True)

            def do_GET(self) -> None:
                server._handle(self)

            def do_HEAD(self) -> None:
                server._handle(self)

            def do_POST(self) -> None:
                server._post(self)

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            request_queue_size = 256

            def handle_error(self, request: Any, client_address: Any) -> None:
                pass  # resets and hung-up clients are the point here

        self._server = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> FaultServer:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def clock(self) -> float:
        """The server's Unix time: the real one plus ``date_offset``."""
        return time.time() + self.date_offset

    def set_rate(self, per_second: float) -> None:
        """From now on the server allows ``per_second`` (the tokens earned so far are kept),
        and its advertised fields say so."""
        with self.lock:
            self._set_rate(per_second)

    def _set_rate(self, per_second: float) -> None:
        self._rate_limited_refill()
        self.per_second = per_second

    def reset_counts(self) -> None:
        """Counts from zero, once the requests already answered have left their handlers (a
        client has its answer a moment before its handler counts itself done: a reset at once
        carried that request over into the next peak). At most 2 s for one still in flight."""
        deadline = time.monotonic() + 2.0
        while self.in_flight and time.monotonic() < deadline:
            time.sleep(0.005)
        with self.lock:
            self.requests.clear()
            self.posts.clear()
            self.log.clear()
            self.ok.clear()
            self.status.clear()
            self.arrived.clear()
            self.peak = self.in_flight

    # -- deciding ------------------------------------------------------------------------------
    def _rate_limited(self) -> float | None:
        """Seconds until a token is there, or None: admitted (a token taken)."""
        if self.per_second is None:
            return None
        self._rate_limited_refill()
        if self.tokens >= 1:
            self.tokens -= 1
            return None
        return (1 - self.tokens) / self.per_second

    def _rate_limited_refill(self) -> None:
        now = time.monotonic()
        if self.per_second is not None:
            self.tokens = min(float(self.burst), self.tokens + (now - self.refilled) * self.per_second)
        self.refilled = now

    def _refusal_headers(self, wait: float) -> dict[str, str]:
        """A 429's headers: a Retry-After, or (``"x-ratelimit"``, ``"ratelimit"``) only the
        spent quota and its reset, as GitHub (a Unix time) and the IETF draft (seconds) say it."""
        if self.retry_after == "x-ratelimit":
            return {
                "X-RateLimit-Limit": str(self.burst),
                "X-RateLimit-Remaining": "0",
                "X-RateLimit-Reset": str(math.ceil(self.clock() + wait)),
            }
        if self.retry_after == "ratelimit":
            # The quota it enforces: per_second over a window long enough to hold the burst (it
            # said q=burst over 1 s: 4/s for a server allowing 40/s, which paced the tests tenfold).
            window = max(1, math.ceil(self.burst / (self.per_second or 1)))
            quota = max(self.burst, math.floor((self.per_second or 1) * window))
            return {
                "RateLimit-Policy": f'"default";q={quota};w={window}',
                "RateLimit": f'"default";r=0;t={max(1, math.ceil(wait))}',
            }
        if self.retry_after == "none":
            return {}
        return {"Retry-After": self._retry_after_header(wait)}

    def _retry_after_header(self, wait: float) -> str:
        if self.retry_after == "int":
            return str(max(1, math.ceil(wait)))
        if self.retry_after == "date":
            return email.utils.formatdate(self.clock() + max(1.0, wait), usegmt=True)
        return f"{wait:.3f}"

    def _post(self, handler: BaseHTTPRequestHandler) -> None:
        _, _, key = handler.path.partition("/item/")
        body = handler.rfile.read(int(handler.headers.get("Content-Length") or 0))
        with self.lock:
            self.posts[key] += 1
            self.log.append(("POST", key))
        self._send(handler, 201, {"posted": key, "body": body.decode("utf-8", "replace")})

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        _, _, key = handler.path.partition("/item/")
        with self.lock:
            self.requests[key] += 1
            self.log.append((handler.command, key))
            self.credentials.append((key, handler.headers.get("Authorization"), handler.headers.get("Cookie")))
            self.arrived.append(time.monotonic())
            if key in self.rate_changes and self.requests[key] == 1:
                self._set_rate(self.rate_changes[key])
            self.in_flight += 1
            handler._left = False  # type: ignore[attr-defined]
            self.peak = max(self.peak, self.in_flight)
            fault = "500" if self.down else None
            wait = None
            if fault is None:
                pending = self.faults.get(key)
                fault = pending.pop(0) if pending else None
            if fault is None:
                wait = self._rate_limited()
        try:
            if fault == "429":
                wait = 0.05
            if wait is not None:
                self._send(handler, 429, {"error": "rate limited"}, self._refusal_headers(wait))
                return
            if fault == "hang":
                time.sleep(self.hang)
            elif fault == "reset":
                handler.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                handler.connection.close()
                handler.close_connection = True
                return
            latency = self.latencies.get(key, self.latency)
            if latency and self.serial is not None:
                with self.serial:
                    time.sleep(latency)
            elif latency:
                time.sleep(latency)
            if fault in ("503", "500"):
                self._send(handler, int(fault), {"error": "unavailable"})
            elif fault == "truncated":
                handler.send_response(200)
                handler.send_header("Content-Type", "application/json")
                handler.send_header("Content-Length", "100")
                handler.end_headers()
                handler.wfile.write(b'{"item": ')
                handler.wfile.flush()
                handler.close_connection = True
                handler.connection.shutdown(socket.SHUT_RDWR)
            elif fault == "garbage":
                self._send(handler, 200, None, raw=b"<html>proxy error</html>")
            else:
                with self.lock:
                    self.ok[key] += 1
                self._send(handler, 200, answer(key))
        finally:
            self._leave(handler)

    def _leave(self, handler: BaseHTTPRequestHandler) -> None:
        """Counts the request out of flight, once: before the first byte of its answer is
        written (a client that has its answer may send its next request before this handler's
        thread runs again; counted out after, one request at a time read as two in flight)."""
        if getattr(handler, "_left", False):
            return
        handler._left = True  # type: ignore[attr-defined]
        with self.lock:
            self.in_flight -= 1

    def _send(
        self,
        handler: BaseHTTPRequestHandler,
        status: int,
        body: dict[str, Any] | None,
        headers: dict[str, str] | None = None,
        raw: bytes | None = None,
    ) -> None:
        data = raw if raw is not None else json.dumps(body).encode()
        with self.lock:
            self.status[status] += 1
        if getattr(handler, "_left", None) is False:
            self._leave(handler)
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        if self.advertise and not (headers and "RateLimit" in headers):
            headers = {**self._advertised(status == 429), **(headers or {})}
        if self.tell:
            headers = {**(headers or {}), **self.tell}
        for name, value in (headers or {}).items():
            handler.send_header(name, value)
        handler.end_headers()
        if handler.command != "HEAD":
            handler.wfile.write(data)

    def _advertised(self, refused: bool) -> dict[str, str]:
        """The rate, remaining quota and reset, in the fields of ``form``."""
        with self.lock:
            rate = self.per_second or 0.0
            remaining = max(0, int(self.tokens))
            wait = (1 - self.tokens) / rate if refused and rate else 0.0
        quota, window = f"{rate * self.window:g}", f"{self.window:g}"
        seconds = max(1, math.ceil(wait)) if refused else max(1, math.ceil(self.window))
        reset = str(math.ceil(self.clock() + seconds) if self.reset == "epoch" else seconds)
        if self.form == "ratelimit":
            return {
                "RateLimit-Policy": f'"default";q={quota};w={window}',
                "RateLimit": f'"default";r={remaining};t={reset}',
            }
        if self.form == "ratelimit-07":
            return {
                "RateLimit-Policy": f"{quota};w={window}",
                "RateLimit": f"limit={quota}, remaining={remaining}, reset={reset}",
            }
        if self.form == "ratelimit-06":
            return {
                "RateLimit-Limit": quota,
                "RateLimit-Remaining": str(remaining),
                "RateLimit-Reset": reset,
                "RateLimit-Policy": f"{quota};w={window}",
            }
        limit = quota if self.form == "x-ratelimit" else f"{quota}, {quota};w={window}"
        return {"X-RateLimit-Limit": limit, "X-RateLimit-Remaining": str(remaining), "X-RateLimit-Reset": reset}


#: The forms in which an advertising server says its rate (see the module docstring).
FORMS = ("ratelimit", "ratelimit-07", "ratelimit-06", "x-ratelimit", "x-ratelimit-envoy")
