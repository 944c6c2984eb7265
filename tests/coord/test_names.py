"""_names.py: the Redis key names of an app are keyed by a secret its processes share
(``$SCHED_ACCEL_REDIS_KEY_SECRET``, else the Redis password), so another client of the server
cannot derive them from the config's path (issue 24, item 7)."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from sched_accel._coord import RedisBackend, _make, make_backend
from sched_accel._coord._names import KEY_SECRET_ENV, PREFIX, KeyNames, key_names
from sched_accel._coordination import CoordinationSettings

from .redis_server import RedisServer, find_redis_server

CONFIG = "/srv/app/sched_accel.toml"
HOST, JOB = "api.example.com", "single_run:jobs:refresh"


def test_names_are_keyed_by_the_secret_and_the_namespace() -> None:
    """The same secret and namespace name alike (the app's processes, on any machine); another
    secret, or another app's namespace, names apart; the owner's variable wins over the password."""
    one = key_names(CONFIG, None, {KEY_SECRET_ENV: "s3cret"})
    assert one == key_names(CONFIG, "the password", {KEY_SECRET_ENV: "s3cret"}) and one.source == f"${KEY_SECRET_ENV}"
    assert re.fullmatch(r"sched_accel:[0-9a-f]{16}:", one.prefix)
    others = [
        key_names(CONFIG, None, {KEY_SECRET_ENV: "other"}),
        key_names("/srv/other/sched_accel.toml", None, {KEY_SECRET_ENV: "s3cret"}),
    ]
    for other in others:
        assert other.prefix != one.prefix and other.tag(HOST) != one.tag(HOST)
    assert re.fullmatch(r"[0-9a-f]{32}", one.tag(HOST)) and one.tag(HOST) != one.tag(JOB)
    by_password = key_names(CONFIG, "the password", {})
    assert by_password.source == "the Redis password" and by_password.prefix not in (PREFIX, one.prefix)
    assert "s3cret" not in repr(one) and "password" not in repr(by_password.key)


def test_without_a_secret_the_names_are_the_old_ones() -> None:
    """No variable, no password: the namespace's names as before (and make_backend says so)."""
    names = key_names(CONFIG, None, {KEY_SECRET_ENV: ""})
    assert names == KeyNames() and names.prefix == PREFIX and names.tag(HOST) == HOST


def listed(url: str) -> list[str]:
    """Every key on the server, as a client that may list them sees them."""
    client = redis.Redis.from_url(url)
    try:
        return sorted(key.decode() for key in client.scan_iter())
    finally:
        client.close()


def use(backend: object) -> None:
    """Write every kind of key: a host's rate, places and pause, the heartbeats, a claim."""
    assert isinstance(backend, RedisBackend)
    backend.admit(HOST, per_second=1, burst=1)
    backend.lease(HOST, limit=1, ttl=5)
    backend.pause(HOST, 5)
    backend.heartbeat("p", ttl=5)
    backend.claim(JOB, 1, ttl=5)
    backend.close()


def derivable(namespace: str) -> set[str]:
    """The names an outsider derives from the config's path alone: the app's names without its
    secret (today's, unkeyed), for every key ``use`` writes."""
    names = key_names(namespace, None, {})
    tags = {HOST: ("tat", "leases", "pause"), "processes": ("beats",), f"claim:{JOB}": ("tick", "fence")}
    return {f"{names.prefix}{{{names.tag(tag)}}}:{what}" for tag, whats in tags.items() for what in whats}


def test_key_names_are_not_derivable_from_the_config_path(
    redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch, capture_events: list[str]
) -> None:
    """With the owner's secret, every key the app writes starts with its own prefix, and none
    names the host, the job or the config, nor is one an outsider derives from the path; every
    one expires. Without a secret, the names are the derivable ones, and one line says so."""
    monkeypatch.setattr(_make, "_said_guessable", set())
    before = set(listed(redis_server.url))
    monkeypatch.setenv(KEY_SECRET_ENV, "a secret the app's processes share")
    use(make_backend(CoordinationSettings(url=redis_server.url, source=CONFIG), None))
    written = sorted(set(listed(redis_server.url)) - before)
    prefix = key_names(CONFIG, None, os.environ).prefix
    assert len(written) == 6 and all(key.startswith(prefix) for key in written), written
    assert not any(part in key for key in written for part in (HOST, "refresh", "processes", "srv"))
    assert not set(written) & derivable(CONFIG)
    client = redis.Redis.from_url(redis_server.url)
    assert all(client.pttl(key) > 0 for key in written)
    client.close()
    assert not [line for line in capture_events if "redis_keys_guessable" in line]
    monkeypatch.delenv(KEY_SECRET_ENV)
    use(make_backend(CoordinationSettings(url=redis_server.url, source=CONFIG), None))
    assert derivable(CONFIG) <= set(listed(redis_server.url))
    use(make_backend(CoordinationSettings(url=redis_server.url, source=CONFIG), None))
    [line] = [line for line in capture_events if line.startswith("sched_accel.redis_keys_guessable ")]
    assert KEY_SECRET_ENV in line and "127.0.0.1" in line


@pytest.fixture
def guarded(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server with a password (requirepass)."""
    binary = find_redis_server()
    if binary is None:
        pytest.skip("no redis-server here")
    server = RedisServer(binary, str(tmp_path / "redis"), "--requirepass", "pass-word")
    os.makedirs(server.folder)
    server.start()
    yield server
    server.stop()


def test_without_the_variable_the_redis_password_keys_the_names(
    guarded: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The password sent to Redis, which every process of the app has on every machine, keys the
    names when the owner set no secret: a client with other credentials cannot derive them."""
    monkeypatch.delenv(KEY_SECRET_ENV, raising=False)
    url = guarded.url.replace("redis://", "redis://:pass-word@")
    use(make_backend(CoordinationSettings(url=url, source=CONFIG), None))
    prefix = key_names(CONFIG, "pass-word", {}).prefix
    written = listed(url)
    assert prefix != PREFIX and len(written) == 6 and all(key.startswith(prefix) for key in written), "\n".join(written)
    assert not set(written) & derivable(CONFIG)
