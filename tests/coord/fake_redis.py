"""A fake Redis on 127.0.0.1 that records every byte it is sent: where a config's URL points
when the test plays the attacker, to see whether a password ever reaches it.

It speaks just enough RESP for redis-py to send its commands one after another (``AUTH``
first, when it has a password): each command is answered with an error, so the client gives
up as from a server that refuses it. With ``tls`` (a certificate and its key), it speaks
TLS, and records what it reads once the handshake is done.
"""

from __future__ import annotations

import socket
import ssl
import threading
from types import TracebackType

__all__ = ["FakeRedis"]


class FakeRedis:
    """``with FakeRedis() as fake:`` listens on ``fake.port``; ``fake.received`` is every byte
    read from every connection, ``fake.connections`` how many were made."""

    def __init__(self, tls: tuple[str, str] | None = None) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.05)  # accept() wakes up to see the test is over
        self.port: int = self._listener.getsockname()[1]
        self._over = threading.Event()
        self._context: ssl.SSLContext | None = None
        if tls is not None:
            self._context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self._context.load_cert_chain(*tls)
        self._lock = threading.Lock()
        self._received = bytearray()
        self.connections = 0
        self._threads: list[threading.Thread] = []
        self._accepter = threading.Thread(target=self._accept, daemon=True)

    @property
    def received(self) -> bytes:
        with self._lock:
            return bytes(self._received)

    def __enter__(self) -> FakeRedis:
        self._accepter.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None) -> None:
        self._over.set()
        self._accepter.join(5)
        self._listener.close()
        for thread in self._threads:
            thread.join(5)

    def _accept(self) -> None:
        while not self._over.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            with self._lock:
                self.connections += 1
            thread = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _serve(self, conn: socket.socket) -> None:
        conn.settimeout(5)
        try:
            if self._context is not None:
                conn = self._context.wrap_socket(conn, server_side=True)
            pending = b""
            while chunk := conn.recv(65536):
                with self._lock:
                    self._received += chunk
                pending += chunk
                count, pending = _commands(pending)
                conn.sendall(b"-ERR this is a fake redis\r\n" * count)
        except (OSError, ssl.SSLError):  # the client gave up, or refused our certificate
            pass
        finally:
            conn.close()


def _commands(data: bytes) -> tuple[int, bytes]:
    """How many whole RESP commands (``*N`` arrays of bulk strings) ``data`` starts with, and the rest."""
    count = 0
    while data.startswith(b"*"):
        head, sep, rest = data.partition(b"\r\n")
        if not sep:
            break
        for _ in range(int(head[1:])):
            size, sep, rest = rest.partition(b"\r\n")
            if not sep or len(rest) < int(size[1:]) + 2:
                return count, data
            rest = rest[int(size[1:]) + 2 :]
        count, data = count + 1, rest
    return count, data
