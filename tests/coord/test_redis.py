"""_redis.py: a real redis-server, stopped, frozen and restarted under the backend; one
round trip per admission; redis-py optional."""

from __future__ import annotations

import multiprocessing
import subprocess
import sys
import time
import uuid
from multiprocessing.connection import Connection
from typing import Any

import pytest
from redis.connection import AbstractConnection

from sched_accel._coord import RedisBackend
from sched_accel._coord._redis import INSTALL, where
from sched_accel._exceptions import CoordinationUnavailable

from .redis_server import RedisServer


def test_a_server_stopped_mid_run_is_unavailable_quickly_then_back(own_redis: RedisServer) -> None:
    """Down: our error within a second (no retries), the cause kept; up again: it answers."""
    backend = RedisBackend(own_redis.url)
    assert backend.admit("api", per_second=10, burst=1) == 0.0
    own_redis.stop()
    started = time.monotonic()
    with pytest.raises(CoordinationUnavailable, match=r"redis at redis://127\.0\.0\.1:\d+: ConnectionError") as raised:
        backend.admit("api", per_second=10, burst=1)
    assert time.monotonic() - started < 1.0
    assert type(raised.value.__cause__).__module__.startswith("redis")
    with pytest.raises(CoordinationUnavailable):
        backend.paused_for("api")
    own_redis.start()  # the same port: the pool reconnects
    assert backend.admit("api", per_second=10, burst=1) == 0.0
    backend.close()


def test_a_hung_server_times_out_in_half_a_second(own_redis: RedisServer) -> None:
    """Frozen (it holds its socket, answers nothing): our error after the 0.5 s socket timeout."""
    backend = RedisBackend(own_redis.url)
    assert backend.lease("api", limit=1, ttl=5) is not None
    own_redis.freeze()
    try:
        started = time.monotonic()
        with pytest.raises(CoordinationUnavailable, match="Timeout"):
            backend.lease("api", limit=1, ttl=5)
        assert 0.4 < time.monotonic() - started < 1.5
    finally:
        own_redis.thaw()
    assert backend.lease("api", limit=2, ttl=5) is not None
    backend.close()


def _admit_in_child(backend: RedisBackend, answer: Connection) -> None:
    answer.send(backend.admit("api", per_second=0.001, burst=1))


def test_a_forked_child_uses_its_own_connections(redis_server: RedisServer) -> None:
    """A backend made before a fork (gunicorn's preload) works in the child, on the same server."""
    backend = RedisBackend(redis_server.url, prefix=f"test-{uuid.uuid4().hex}:")
    backend.paused_for("warm")  # the parent holds a connection
    fork = multiprocessing.get_context("fork")
    mine, theirs = fork.Pipe()
    child = fork.Process(target=_admit_in_child, args=(backend, theirs))
    child.start()
    child.join(10)
    assert mine.recv() == 0.0
    assert backend.admit("api", per_second=0.001, burst=1) > 100
    backend.close()


def test_nothing_listening_is_unavailable() -> None:
    """A backend is made without connecting; its first call says the server is not there."""
    backend = RedisBackend("redis://127.0.0.1:1/0", timeout=0.2)
    with pytest.raises(CoordinationUnavailable, match="ConnectionError"):
        backend.claim("job", 1, ttl=1)
    backend.close()


def test_a_server_error_is_ours_too(redis_server: RedisServer) -> None:
    """A key of the wrong type (someone else's data under our prefix) fails as ours, not WRONGTYPE raw."""
    prefix = f"test-{uuid.uuid4().hex}:"
    backend = RedisBackend(redis_server.url, prefix=prefix)
    backend.client.lpush(f"{prefix}{{api}}:tat", "x")
    with pytest.raises(CoordinationUnavailable, match="ResponseError"):
        backend.admit("api", per_second=1, burst=1)
    backend.close()


def commands(backend: RedisBackend) -> dict[str, int]:
    """The server's count of each command it ran (scripts' own commands included)."""
    stats = backend.client.info("commandstats")
    return {name.removeprefix("cmdstat_"): int(value["calls"]) for name, value in stats.items()}


def test_one_round_trip_per_admission(redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """Once its script is loaded, an admission is one EVALSHA sent, in which the server reads
    its clock, the pause and the arrival time, and writes the new one."""
    backend = RedisBackend(redis_server.url, prefix=f"test-{uuid.uuid4().hex}:")
    backend.admit("api", per_second=1000, burst=1000)  # loads the script
    before = commands(backend)
    sent: list[object] = []
    send = AbstractConnection.send_packed_command

    def counted(self: AbstractConnection, command: Any, check_health: bool = True) -> None:
        sent.append(command)
        send(self, command, check_health)  # type: ignore[no-untyped-call]

    monkeypatch.setattr(AbstractConnection, "send_packed_command", counted)
    for _ in range(50):
        backend.admit("api", per_second=1000, burst=1000)
    monkeypatch.undo()
    assert len(sent) == 50
    after = commands(backend)
    ran = {name: after[name] - before.get(name, 0) for name in after if after[name] != before.get(name, 0)}
    assert ran == {"evalsha": 50, "time": 50, "pttl": 50, "get": 50, "set": 50, "info": 1}
    backend.close()


def test_every_key_a_backend_writes_expires(redis_server: RedisServer) -> None:
    """Every key we write has a TTL (none is -1): an idle host or job leaves nothing for ever;
    the fencing counter is kept a week after its job's last claim."""
    prefix = f"test-{uuid.uuid4().hex}:"
    backend = RedisBackend(redis_server.url, prefix=prefix)
    backend.admit("api", per_second=1, burst=1)
    backend.admit("api", per_second=1, burst=1)  # refused
    lease = backend.lease("api", limit=1, ttl=5)
    assert lease is not None
    backend.renew("api", [lease], ttl=5)
    backend.pause("api", 5)
    backend.paused_for("api")
    backend.learn_rate("api", 2)
    backend.heartbeat("p", ttl=5)
    backend.live_processes()
    backend.claim("job", 1, ttl=5)
    backend.claim("job", 1, ttl=5)  # refused
    client = backend.client
    keys = sorted(k.decode() for k in client.scan_iter(match=f"{prefix}*"))
    ttls = {key.removeprefix(prefix): client.pttl(key) for key in keys}
    assert set(ttls) == {
        "{api}:tat",
        "{api}:leases",
        "{api}:pause",
        "{api}:rate",
        "{processes}:beats",
        "{claim:job}:tick",
        "{claim:job}:fence",
    }
    assert 7 * 86_400_000 - 60_000 < ttls.pop("{claim:job}:fence") <= 7 * 86_400_000
    assert all(0 < ttl <= 86_400_000 for ttl in ttls.values()), ttls
    assert ttls["{api}:tat"] <= 2001
    backend.close()


def test_urls_are_checked_and_credentials_never_shown() -> None:
    """A URL that is not Redis's is refused by name; messages name the server without its password."""
    with pytest.raises(ValueError, match="url must be a redis://"):
        RedisBackend("http://127.0.0.1:6379")
    with pytest.raises(ValueError, match="url cannot be used: Port could not be cast") as raised:
        RedisBackend("redis://me:secret@127.0.0.1:notaport")
    assert "secret" not in str(raised.value)
    with pytest.raises(ValueError, match="timeout"):
        RedisBackend("redis://127.0.0.1", timeout=0)
    assert where("redis://user:secret@cache.internal:6380/2") == "redis://cache.internal:6380"
    assert where("unix:///run/redis.sock") == "unix:///run/redis.sock"


def test_without_redis_py_the_error_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    """redis-py missing: our error, with the pip command of the extra."""
    monkeypatch.setitem(sys.modules, "redis", None)
    with pytest.raises(CoordinationUnavailable, match=INSTALL.replace("[", r"\[").replace("]", r"\]")):
        RedisBackend("redis://127.0.0.1:6379")


def test_sched_accel_imports_without_redis_py() -> None:
    """The extra is optional: sched_accel and its backends import, and redis-py is not loaded."""
    code = (
        "import sys; sys.modules['redis'] = None\n"
        "import sched_accel, sched_accel._coord\n"
        "sys.modules.pop('redis')\n"
        "print(sorted(m for m in sys.modules if m == 'redis' or m.startswith('redis.')))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
