"""A real HTTP upstream on 127.0.0.1 whose answers are large, or never end, for the tests of
the cap on what is read ahead (``_integrations.MAX_KEPT``).

After ``latency`` seconds (so that sending ahead pays and the probe fans out):

- ``GET /endless/<key>``: 200, chunked, 64 KiB chunks of :func:`block` ``(key)`` for as long
  as the client reads (the handler ends when the client hangs up);
- ``GET /sized/<key>?bytes=N``: 200 with ``Content-Length: N`` and N bytes of the key's blocks;
- ``GET /chunked/<key>?bytes=N``: the same N bytes, chunked (no length announced);
- ``GET /small/<key>``: a short JSON answer, ``{"item": key, "size": n}``.

``?status=S`` answers with that status instead of 200 (a 503 whose body never ends).

``HEAD`` answers a GET's headers. It counts each request by its path (``requests``, and
``log`` in arrival order) and the body bytes it wrote (``sent``): a test tells from them
what went out twice and how much was read ahead.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
import urllib.parse
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

CHUNK = 64 * 1024
MIB = 1024 * 1024


def block(key: str) -> bytes:
    """The 64 KiB a body for ``key`` repeats."""
    seed = hashlib.sha256(key.encode()).digest()
    return (seed * (CHUNK // len(seed) + 1))[:CHUNK]


def body_of(key: str, size: int) -> bytes:
    """The whole body of ``size`` bytes for ``key`` (what the server sends, for a test to compare)."""
    one = block(key)
    return (one * (size // CHUNK + 1))[:size]


class BodyServer:
    """Start with ``with BodyServer() as server:``; ``server.url`` is its base URL."""

    def __init__(self, *, latency: float = 0.03) -> None:
        self.latency = latency
        self.lock = threading.Lock()
        self.requests: Counter[str] = Counter()
        self.log: list[tuple[str, str]] = []
        self.sent = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                server._handle(self)

            def do_HEAD(self) -> None:
                server._handle(self)

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            request_queue_size = 256

            def handle_error(self, request: Any, client_address: Any) -> None:
                pass  # a client that hangs up mid-body is the point here

        self._server = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> BodyServer:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def reset_counts(self) -> None:
        with self.lock:
            self.requests.clear()
            self.log.clear()
            self.sent = 0

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        parts = urllib.parse.urlsplit(handler.path)
        with self.lock:
            self.requests[parts.path] += 1
            self.log.append((handler.command, parts.path))
        _, kind, key = parts.path.split("/", 2)
        query = urllib.parse.parse_qs(parts.query)
        size = int(query.get("bytes", ["0"])[0])
        if self.latency:
            time.sleep(self.latency)
        handler.send_response(int(query.get("status", ["200"])[0]))
        if kind == "small":
            data = json.dumps({"item": key, "size": len(key)}).encode()
            handler.send_header("Content-Type", "application/json")
            handler.send_header("Content-Length", str(len(data)))
            handler.end_headers()
            if handler.command != "HEAD":
                handler.wfile.write(data)
            return
        handler.send_header("Content-Type", "application/octet-stream")
        if kind == "sized":
            handler.send_header("Content-Length", str(size))
        else:
            handler.send_header("Transfer-Encoding", "chunked")
        handler.end_headers()
        if handler.command == "HEAD":
            return
        try:
            self._write(handler, kind, block(key), size)
        except OSError:  # the client hung up: what it read ahead was enough
            handler.close_connection = True

    def _write(self, handler: BaseHTTPRequestHandler, kind: str, one: bytes, size: int) -> None:
        left = size
        while kind == "endless" or left > 0:
            piece = one if kind == "endless" else one[: min(CHUNK, left)]
            left -= len(piece)
            if kind == "sized":
                handler.wfile.write(piece)
            else:
                handler.wfile.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
            with self.lock:
                self.sent += len(piece)
        if kind != "sized":
            handler.wfile.write(b"0\r\n\r\n")
