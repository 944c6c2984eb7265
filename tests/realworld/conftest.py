"""The corpus's fixtures: one fake upstream and, for the Celery program, a real redis-server;
and the comparisons measured, for the table at the end of the session (``tests/conftest.py``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.coord.redis_server import serving

from .harness import Comparison
from .table import render
from .upstream import Upstream

#: every comparison measured in this session, for the summary
MEASURED: list[Comparison] = []


@pytest.fixture(scope="session")
def api() -> Iterator[Upstream]:
    """The fake upstream of every program, on a free port of 127.0.0.1."""
    with Upstream() as upstream:
        yield upstream


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real redis-server, the Celery program's broker (skipped, or failed under CI, without one)."""
    yield from serving(str(tmp_path_factory.mktemp("realworld-redis")))


def pytest_sessionfinish(session: pytest.Session) -> None:
    """A pytest-xdist worker hands its table to the controller, which prints it (``tests/conftest.py``:
    the controller collects nothing, so it never loads this file)."""
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None and MEASURED:
        workeroutput["realworld_table"] = render(MEASURED)
