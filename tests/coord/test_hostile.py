"""What another client of the Redis server writes under our keys is bounded by the caller
(``_base``, ``_scripts``; issue 24, item 5): a second, raw redis-py client plays the peer, which
knows the key names (it listed them), and sets them as it likes."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest
import redis

from sched_accel._coord import RedisBackend

from .redis_server import RedisServer

DAY_MS = 86_400_000


@pytest.fixture
def backend(redis_server: RedisServer) -> Iterator[RedisBackend]:
    """A redis backend with a key prefix of its own."""
    made = RedisBackend(redis_server.url, prefix=f"test-{uuid.uuid4().hex}:")
    yield made
    made.close()


@pytest.fixture
def peer(redis_server: RedisServer) -> Iterator[redis.Redis]:
    """The hostile client: another connection to the same server, with no code of ours."""
    client = redis.Redis.from_url(redis_server.url)
    yield client
    client.close()


def server_us(peer: redis.Redis) -> int:
    """The server's clock, in µs (what the scripts read)."""
    seconds, micros = peer.time()
    return int(seconds) * 1_000_000 + int(micros)


def test_a_pause_set_a_day_ahead_holds_no_longer_than_the_longest(backend: RedisBackend, peer: redis.Redis) -> None:
    """A day-long pause is cut to the caller's longest (and kept cut, so it runs out); one with
    no expiry is no pause of ours."""
    key = backend._key("api", "pause")
    peer.set(key, "1", px=DAY_MS)
    assert 0.2 < backend.admit("api", per_second=100, burst=1, longest=0.3) <= 0.3
    assert 0 < peer.pttl(key) <= 300
    assert 0.1 < backend.paused_for("api", longest=1.0) <= 0.3
    time.sleep(0.31)
    assert backend.admit("api", per_second=100, burst=1, longest=0.3) == 0.0
    peer.set(key, "1", px=DAY_MS)
    assert 0 < backend.paused_for("api", longest=0.5) <= 0.5
    assert 0 < peer.pttl(key) <= 500
    peer.set(key, "forever")
    assert backend.paused_for("api") == 0.0
    assert backend.admit("other", per_second=100, burst=1) == 0.0


def test_an_arrival_time_a_day_ahead_costs_one_interval(backend: RedisBackend, peer: redis.Redis) -> None:
    """The rate's arrival time set a day ahead (no expiry) is cut to one burst of intervals:
    a wait of one interval, then the host is admitted at its rate; what is not a finite number
    counts as none."""
    key = backend._key("api", "tat")
    peer.set(key, str(server_us(peer) + DAY_MS * 1000))
    wait = backend.admit("api", per_second=10, burst=2)
    assert 0.05 < wait <= 0.101
    assert 0 < peer.pttl(key) <= 201  # written back cut, with an expiry
    time.sleep(wait)
    assert backend.admit("api", per_second=10, burst=2) == 0.0
    for junk in ("inf", "nan", "-inf", "x", "1e400"):
        peer.set(key, junk)
        assert backend.admit("api", per_second=10, burst=1) == 0.0, junk
        assert peer.pttl(key) > 0


def test_places_filled_with_entries_that_never_end_are_taken_back(backend: RedisBackend, peer: redis.Redis) -> None:
    """Every place of the host held by entries ending never, or in a year: each is further
    ahead than the lease's ttl, so none is one of ours; the lease is had, the set expires again."""
    key = backend._key("api", "leases")
    year_ms = server_us(peer) // 1000 + 365 * DAY_MS
    peer.zadd(key, {"forged-0": float("inf"), "forged-1": year_ms, "forged-2": year_ms})
    lease = backend.lease("api", limit=3, ttl=10)
    assert lease is not None
    assert [m.decode() for m in peer.zrange(key, 0, -1)] == [lease]  # type: ignore[union-attr]
    assert 9_000 < peer.pttl(key) <= 10_000
    peer.zadd(key, {"forged-3": float("inf")})
    backend.renew("api", [lease], ttl=10)
    assert [m.decode() for m in peer.zrange(key, 0, -1)] == [lease]  # type: ignore[union-attr]
    assert backend.lease("api", limit=2, ttl=10) is not None


def test_forged_heartbeats_are_dropped_at_the_next_beat(backend: RedisBackend, peer: redis.Redis) -> None:
    """A thousand processes that never end would divide the rate by a thousand when the backend
    fails: they are dropped by the next heartbeat, which lasts no longer than theirs claim."""
    key = backend._key("processes", "beats")
    peer.zadd(key, {f"ghost-{i}": float("inf") for i in range(1000)})
    backend.heartbeat("me", ttl=6)
    assert backend.live_processes() == 1
    assert 0 < peer.pttl(key) <= 6_000


@pytest.mark.parametrize(
    ("value", "px", "latest"),
    [
        pytest.param("plausible", None, None, id="no expiry"),
        pytest.param("plausible", DAY_MS, None, id="a day"),
        pytest.param(str(2**53 - 1), 30_000, 1_000, id="a tick far ahead"),
        pytest.param("not a tick", 30_000, None, id="junk"),
    ],
)
def test_a_forged_claim_silences_no_tick(
    backend: RedisBackend, peer: redis.Redis, value: str, px: int | None, latest: int | None
) -> None:
    """A claim held with no expiry, ending a day ahead, of a tick past ``latest``, or that is no
    tick: not in force (no process of the app made it); the tick is won, and the claim the
    peer set is replaced by ours, with its ttl."""
    key = backend._key("claim:job", "tick")
    peer.set(key, "500" if value == "plausible" else value, px=px)
    assert backend.claim("job", 7, ttl=60, latest=latest) == 1
    assert peer.get(key) == b"7" and 0 < peer.pttl(key) <= 60_000
    assert backend.held("job") == (7, 1)
    assert backend.claim("job", 7, ttl=60, latest=latest) is None  # ours holds, as before


def test_a_forged_claim_within_its_ttl_holds_no_longer_than_the_ttl(backend: RedisBackend, peer: redis.Redis) -> None:
    """What stays possible: a claim of a plausible tick ending within the ttl holds (as one of
    ours would), and only that long."""
    key = backend._key("claim:job", "tick")
    peer.set(key, "8", px=200)
    assert backend.claim("job", 7, ttl=0.3, latest=1_000) is None
    time.sleep(0.21)
    assert backend.claim("job", 7, ttl=0.3, latest=1_000) == 1


def test_a_forged_fencing_counter_starts_again(backend: RedisBackend, peer: redis.Redis) -> None:
    """A counter that is no whole number below 2**53 (where Lua's doubles stop counting) starts
    again at 1, with the week's expiry, rather than failing every claim; a claim that is no
    number is none for held()."""
    fence = backend._key("claim:job", "fence")
    for junk in ("x", "1.5", str(2**60), "-3"):
        peer.set(fence, junk)
        peer.delete(backend._key("claim:job", "tick"))
        assert backend.claim("job", 1, ttl=60) == 1, junk
        assert peer.pttl(fence) > 0
    peer.set(backend._key("claim:job", "tick"), "junk", px=60_000)
    assert backend.held("job") is None
