"""The shadow tests' fixtures: an active shadow run, a shadow in a worker thread, a real
redis-server."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import pytest

from sched_accel._shadow import activate, deactivate

from ..coord.redis_server import serving


@pytest.fixture
def active() -> Iterator[None]:
    """A shadow run is active for the test (the stream proxies are in place)."""
    activate()
    yield
    deactivate()


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real redis-server for the session."""
    yield from serving(str(tmp_path_factory.mktemp("shadow-redis")))


@pytest.fixture(scope="session")
def postgres_dsn() -> Iterator[str]:
    """A real PostgreSQL server for the session, from the machine's binaries (skipped without)."""
    from .postgres_server import PostgresServer, find_bindir

    bindir = find_bindir()
    if bindir is None:
        pytest.skip("no PostgreSQL here: apt-get install postgresql")
    server = PostgresServer(bindir)
    try:
        server.start()
    except (OSError, LookupError, subprocess.SubprocessError) as exc:  # no postgres user, a port taken...
        server.stop()
        pytest.skip(f"PostgreSQL would not start here: {exc!r}")
    yield server.dsn
    server.stop()
