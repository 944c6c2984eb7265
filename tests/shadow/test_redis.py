"""redis-py against a real redis-server: a shadow's reads go on, any write stops it before
it is sent or queued, and the app's own writes at the same time go through."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest

redis = pytest.importorskip("redis")

from sched_accel._exceptions import Stopped  # noqa: E402
from sched_accel._shadow import Shadow, shadowed  # noqa: E402
from sched_accel._shadow._drivers.redis import READS, command_name  # noqa: E402

from .helpers import in_thread  # noqa: E402

pytestmark = pytest.mark.usefixtures("active")


@pytest.fixture
def client(redis_url: str) -> Any:
    """A client of the app's, made before any shadow runs, with ``k`` = ``v``."""
    made = redis.Redis.from_url(redis_url, decode_responses=True)
    made.flushdb()
    made.set("k", "v")
    yield made
    made.close()


@pytest.mark.parametrize(
    ("write", "name"),
    [
        (lambda r: r.set("k", "shadow"), "SET"),
        (lambda r: r.delete("k"), "DEL"),
        (lambda r: r.incr("n"), "INCRBY"),  # redis-py sends INCRBY
        (lambda r: r.hset("h", "f", "1"), "HSET"),
        (lambda r: r.lpush("l", "x"), "LPUSH"),
        (lambda r: r.expire("k", 10), "EXPIRE"),
        (lambda r: r.publish("c", "m"), "PUBLISH"),
        (lambda r: r.eval("return 1", 0), "EVAL"),
        (lambda r: r.pipeline().get("k").set("k", "shadow").execute(), "SET"),
    ],
)
def test_a_write_stops_the_shadow_before_it_is_sent(client: Any, write: Callable[[Any], object], name: str) -> None:
    """Each write command stops the shadow, naming it; the server is unchanged."""
    outcome = in_thread(lambda: write(client))
    assert isinstance(outcome.error, Stopped)
    assert outcome.error.why.startswith(f"a Redis write through redis-py: {name} (tests/shadow/test_redis.py:")
    assert client.get("k") == "v" and client.keys("*") == ["k"]


def test_reads_go_on_and_the_app_writes_at_the_same_time(client: Any, redis_url: str) -> None:
    """GET, MGET, a pipeline of reads and a new client's first command (it connects) work in
    the shadow, while the main thread writes."""
    go, done = threading.Event(), threading.Event()

    def job() -> object:
        fresh = redis.Redis.from_url(redis_url, decode_responses=True)  # connects inside reading()
        try:
            go.set()
            assert done.wait(10)
            return client.get("k"), client.mget(["k", "main"]), fresh.pipeline().get("k").exists("k").execute()
        finally:
            fresh.close()

    results: list[Any] = []
    thread = threading.Thread(target=lambda: results.append(in_thread(job)))
    thread.start()
    assert go.wait(10)
    client.set("main", "written")
    done.set()
    thread.join()
    outcome = results[0]
    assert outcome.error is None and outcome.shadow.stopped is None
    assert outcome.value == ("v", ["v", "written"], ["v", 1])


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
@pytest.mark.anyio
async def test_asyncio_client(redis_url: str) -> None:
    """redis.asyncio: the shadow task's GET works, its SET stops it at the call."""
    import redis.asyncio

    client = redis.asyncio.Redis.from_url(redis_url, decode_responses=True)
    try:
        await client.set("k", "v")
        shadow = Shadow()
        with shadowed(shadow):
            assert await client.get("k") == "v"
            with pytest.raises(Stopped, match="SET"):
                await client.set("k", "shadow")
        assert await client.get("k") == "v"
    finally:
        await client.aclose()


def test_every_read_we_allow_is_no_write_for_the_server(client: Any) -> None:
    """Each command of READS that this server knows is not flagged ``write`` by it."""
    known = {name.upper(): info for name, info in client.command().items()}
    flagged = sorted(name for name in READS if " " not in name and "write" in known.get(name, {}).get("flags", ()))
    assert flagged == []
    writes = sorted(name for name, info in known.items() if "write" in info["flags"])
    assert writes and not set(writes) & READS


def test_command_names() -> None:
    """Container commands are named with their subcommand, bytes or str, any case."""
    assert command_name((b"client", "list")) == "CLIENT LIST"
    assert command_name(("get", "k")) == "GET"
    assert command_name(("CONFIG SET", "x", "y")) == "CONFIG SET"
    assert command_name(()) == ""
