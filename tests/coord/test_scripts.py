"""_scripts.py: the Lua scripts themselves, on a real server: they load, their keys share a
slot, and a refusal is never answered as a wait of 0 ms."""

from __future__ import annotations

import uuid

import pytest
from redis.crc import key_slot

from sched_accel._coord import RedisBackend, _scripts

from .redis_server import RedisServer


@pytest.fixture
def backend(redis_server: RedisServer) -> RedisBackend:
    """A redis backend with a key prefix of its own."""
    return RedisBackend(redis_server.url, prefix=f"test-{uuid.uuid4().hex}:")


def test_every_script_loads(backend: RedisBackend) -> None:
    """The server compiles each script."""
    for name in _scripts.__all__:
        assert len(backend.client.script_load(getattr(_scripts, name))) == 40


def test_a_scripts_keys_share_one_cluster_slot(backend: RedisBackend) -> None:
    """The keys one script touches hash alike (their tag), as a Redis Cluster needs."""
    pairs = [
        (backend._key("api.example.com", "tat"), backend._key("api.example.com", "pause")),
        (backend._key("claim:job", "tick"), backend._key("claim:job", "fence")),
    ]
    for one, two in pairs:
        assert key_slot(one.encode()) == key_slot(two.encode())


def test_a_refusal_waits_at_least_a_millisecond(backend: RedisBackend) -> None:
    """At 1000/s the next slot is under a millisecond away: the wait is rounded up to 1 ms,
    so a caller that sleeps it is then admitted (or it was admitted already)."""
    answers = {backend.admit("fast", per_second=1000, burst=1) for _ in range(20)}
    assert answers <= {0.0, 0.001}
    backend.close()


def test_the_lease_set_lives_as_long_as_its_longest_lease(backend: RedisBackend) -> None:
    """A short lease after a long one does not cut the set's life short; a lease ending further
    ahead than the ttl asked (no process of the app's took it) is dropped, and the set's life with it."""
    backend.lease("api", limit=5, ttl=10)
    backend.lease("api", limit=5, ttl=10)
    backend.lease("api", limit=5, ttl=0.5)
    assert backend.client.zcard(backend._key("api", "leases")) == 1  # ending within 0.5 s: the last one only
    assert 0 < backend.client.pttl(backend._key("api", "leases")) <= 500
    backend.lease("api", limit=5, ttl=10)
    backend.lease("api", limit=5, ttl=10)
    assert 9000 < backend.client.pttl(backend._key("api", "leases")) <= 10000
    backend.close()
