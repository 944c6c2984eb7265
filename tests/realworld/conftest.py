"""The corpus's fixtures: one fake upstream and, for the Celery program, a real redis-server;
and the corpus's table at the end of the session, for whatever programs ran."""

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


#: the tables of the workers that ran programs, when pytest-xdist ran the session (``make test``)
TABLES: list[str] = []


def pytest_sessionfinish(session: pytest.Session) -> None:
    """A pytest-xdist worker hands its table to the controller, which prints the summary."""
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None and MEASURED:
        workeroutput["realworld_table"] = render(MEASURED)


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: object, error: object) -> None:
    """pytest-xdist's controller: a worker ended; keep its table."""
    table = getattr(node, "workeroutput", {}).get("realworld_table")
    if table:
        TABLES.append(table)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """The corpus's table, for the programs this session ran (speed is reported, not asserted)."""
    tables = [render(MEASURED)] if MEASURED else TABLES
    if tables:
        terminalreporter.section("real-world corpus: sequential vs accelerated")
        for table in tables:
            terminalreporter.write_line(table)
