"""The coordination tests' fixtures: a real redis-server, and backends of each kind.

The redis tests skip, with one message saying how to get a server, only where none can be
had; under CI (``CI`` set) a missing server fails them instead, since CI must have one.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from sched_accel._coord import Backend

from .helpers import Spec
from .redis_server import HOW_TO_GET, RedisServer, find_redis_server

KINDS = ["process", "machine", "redis"]
SHARED = ["machine", "redis"]  # the kinds whose instances (and processes) share a store


def _binary() -> str:
    found = find_redis_server()
    if found is None:
        if os.environ.get("CI"):
            pytest.fail(HOW_TO_GET)
        pytest.skip(HOW_TO_GET)
    return found


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One redis-server for the session (each test has its own key prefix)."""
    server = RedisServer(_binary(), str(tmp_path_factory.mktemp("redis")))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server of this test's own, to stop, freeze or restart."""
    server = RedisServer(_binary(), str(tmp_path / "redis"))
    os.makedirs(server.folder)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    """An owner-only state folder."""
    folder = tmp_path / "state"
    folder.mkdir(mode=0o700, exist_ok=True)
    return folder


def spec_of(kind: str, request: pytest.FixtureRequest, state_dir: Path) -> Spec:
    if kind == "redis":
        server: RedisServer = request.getfixturevalue("redis_server")
        return Spec("redis", server.url, f"test-{uuid.uuid4().hex}:")
    if kind == "machine":
        return Spec("machine", str(state_dir))
    return Spec("process")


@pytest.fixture(params=KINDS)
def spec(request: pytest.FixtureRequest, state_dir: Path) -> Spec:
    """Each kind of backend in turn."""
    return spec_of(request.param, request, state_dir)


@pytest.fixture(params=SHARED)
def shared_spec(request: pytest.FixtureRequest, state_dir: Path) -> Spec:
    """Each kind of backend that processes share, in turn."""
    return spec_of(request.param, request, state_dir)


@pytest.fixture
def make(spec: Spec) -> Iterator[Callable[[], Backend]]:
    """Make backends of ``spec`` (sharing one store); all closed after the test."""
    made: list[Backend] = []

    def build() -> Backend:
        made.append(spec.build())
        return made[-1]

    yield build
    for backend in made:
        backend.close()


@pytest.fixture
def backend(make: Callable[[], Backend]) -> Backend:
    """A backend of each kind in turn."""
    return make()
