"""The shadow tests' fixtures: an active shadow run, a shadow in a worker thread, a real
redis-server."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator

import pytest

from sched_accel._shadow import activate, deactivate
from sched_accel._shadow._audit import TRACED_ENV

from ..coord.redis_server import serving


def traced() -> bool:
    """Whether this process is traced (coverage): then the audit hook is not added (``_audit``)."""
    return (sys.gettrace() is not None or threading.gettrace() is not None) and os.environ.get(TRACED_ENV) != "1"


@pytest.fixture(autouse=True)
def _audit_or_child(request: pytest.FixtureRequest) -> None:
    """A test marked ``audit`` runs where the audit hook is added: under coverage, in an
    untraced child (``test_audit_child.py``), and is skipped here."""
    if request.node.get_closest_marker("audit") is not None and traced():
        pytest.skip("needs the audit hook, which a traced process does not add: run untraced by test_audit_child.py")


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
