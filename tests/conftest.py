"""Shared fixtures and fakes: a clean sched_accel state per test, a fake clock, log capture,
throw-away apps, real interpreters."""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import sched_accel

ENV_KEYS = (
    "ENABLE_SCHEDULER_OPTIMIZATION",
    "SCHED_ACCEL_CONFIG",
    "SCHED_ACCEL_CONCURRENCY",
    "SCHED_ACCEL_CONTROL",
    "SCHED_ACCEL_DISABLED_TARGETS",
    "SCHED_ACCEL_LOG",
    "SCHED_ACCEL_PROBE",
)


@pytest.fixture(
    params=[pytest.param(("asyncio", {"debug": True}), id="asyncio"), pytest.param(("trio", {}), id="trio")]
)
def anyio_backend(request: pytest.FixtureRequest) -> tuple[str, dict[str, object]]:
    """Async tests run on asyncio (debug mode) and on trio."""
    return request.param  # type: ignore[no-any-return]


@pytest.fixture(autouse=True)
def clean_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every test starts uninstalled, with none of our variables set and its own control file."""
    for key in ENV_KEYS:
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("SCHED_ACCEL_CONTROL", str(tmp_path / "state" / "control.json"))
    sched_accel.reset()
    yield
    sched_accel.reset()


@pytest.fixture
def unmeasured_children(monkeypatch: pytest.MonkeyPatch) -> None:
    """Child pythons of this test run without coverage's tracer: under a tracer a loop in
    ``__main__`` is (rightly) not patched, and coverage itself loads modules that the
    start-up tests check are not loaded. Their parent's coverage is unchanged."""
    for key in ("COVERAGE_PROCESS_CONFIG", "COVERAGE_PROCESS_START"):
        monkeypatch.delenv(key, raising=False)


class FakeClock:
    """A monotonic clock that moves only when told to."""

    def __init__(self, now: float = 100.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    """A fake clock, for limiters, breakers and policies."""
    return FakeClock()


class App:
    """A throw-away app in a temp folder: write modules and a config, import or run them."""

    def __init__(self, root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.root = root
        self.monkeypatch = monkeypatch
        self.names: list[str] = []

    def write(self, relative: str, source: str) -> Path:
        """Write a file (dedented) under the app root."""
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(source).lstrip(), encoding="utf-8")
        top = relative.split("/")[0].removesuffix(".py")
        if top not in self.names:
            self.names.append(top)
        return path

    def config(self, source: str, name: str = "sched_accel.toml") -> Path:
        """Write the config and point SCHED_ACCEL_CONFIG at it."""
        path = self.write(name, source)
        self.monkeypatch.setenv("SCHED_ACCEL_CONFIG", str(path))
        return path

    def state(self, config: Path | None = None, namespace: str | None = None, *, here: bool = False) -> Path:
        """The state folder of the app ``config`` names (default: this folder's sched_accel.toml),
        as the children of :meth:`run` keep it (``here``: as this test's process does, in the
        folder of its SCHED_ACCEL_CONTROL): runs, learned calls, hosts.json."""
        from sched_accel._state import AppState

        config = config or self.root / "sched_accel.toml"
        folder = Path(os.environ["SCHED_ACCEL_CONTROL"]).parent if here else self.root / "state"
        return Path(AppState(str(folder), str(config), namespace).folder)

    def run(
        self, *args: str, env: dict[str, str] | None = None, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        """Run this venv's python in the app folder, with our variables from ``env`` only."""
        full = {k: v for k, v in os.environ.items() if k not in ENV_KEYS}
        full["SCHED_ACCEL_CONTROL"] = str(self.root / "state" / "control.json")
        full.update(env or {})
        return subprocess.run(
            [sys.executable, *args], cwd=self.root, env=full, capture_output=True, text=True, timeout=timeout
        )


@pytest.fixture
def app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[App]:
    """An app folder on sys.path; its modules are forgotten after the test."""
    root = tmp_path / "app"
    root.mkdir()
    monkeypatch.syspath_prepend(str(root))
    made = App(root, monkeypatch)
    yield made
    for name in list(sys.modules):
        if name.split(".")[0] in made.names:
            del sys.modules[name]


class Logged(str):
    """One captured line: its text (``sched_accel.run k=v ... - message``, without ``pid=``),
    and the event as the code logged it: ``event`` (the name), ``level``, and ``fields`` (the
    values themselves: numbers stay numbers, None stays None). Assert on ``fields``; the text
    is for what a person reads."""

    event: str
    level: str
    fields: dict[str, Any]

    @classmethod
    def of(cls, text: str, event: str, level: str, fields: dict[str, Any]) -> Logged:
        line = cls(_PID.sub("", text))
        line.event, line.level = event.removeprefix("sched_accel."), level
        line.fields = {key: value for key, value in fields.items() if key != "pid"}
        return line


def logged(lines: list[str], event: str) -> list[Logged]:
    """The captured lines of ``event`` (a name of ``sched_accel._events``), as logged."""
    return [line for line in lines if isinstance(line, Logged) and line.event == event]


class _Lines(logging.Handler):
    """The messages of the records that reach the ``sched_accel`` stdlib logger."""

    def __init__(self, lines: list[str]) -> None:
        super().__init__(logging.DEBUG)
        self.lines = lines

    def emit(self, record: logging.LogRecord) -> None:
        event, fields = getattr(record, "sched_accel_event", ""), getattr(record, "sched_accel", {})
        self.lines.append(Logged.of(record.getMessage(), event, record.levelname, fields))


def _from_loguru(message: Any) -> Logged:
    record = message.record
    extra = record["extra"]
    fields = {key.removeprefix("sched_accel_"): value for key, value in extra.items() if key != "sched_accel_event"}
    return Logged.of(record["message"], extra.get("sched_accel_event", ""), record["level"].name, fields)


_PID = re.compile(r" pid=\d+(?= - |$)")


@pytest.fixture
def capture_events() -> Iterator[list[str]]:
    """The lines sched_accel logs during the test, by either route (loguru's sinks, or the
    stdlib logger: the default under pytest, whose handlers make logging "configured"),
    without the ``pid=`` every line ends its fields with; each a :class:`Logged`, whose
    ``fields`` are the event's own values (``logged(lines, "run")``)."""
    from loguru import logger

    lines: list[str] = []
    handler = _Lines(lines)
    logging.getLogger("sched_accel").addHandler(handler)
    sink = logger.add(lambda message: lines.append(_from_loguru(message)), level="DEBUG")
    yield lines
    logger.remove(sink)
    logging.getLogger("sched_accel").removeHandler(handler)


# -- the real-world corpus's table at the end of the session (tests/realworld) -------------------
#: Its tables as pytest-xdist's workers handed them over (each worker's ``workeroutput``).
_CORPUS_TABLES: list[str] = []


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: object, error: object) -> None:
    """pytest-xdist's controller: a worker ended; keep its corpus table."""
    table = getattr(node, "workeroutput", {}).get("realworld_table")
    if table:
        _CORPUS_TABLES.append(table)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """The corpus's table, for the programs this session ran (speed is reported, not asserted):
    measured here, or by the workers. Here, not in tests/realworld/conftest.py: a pytest-xdist
    controller collects nothing, so it loads only this conftest."""
    corpus = sys.modules.get("tests.realworld.conftest")
    measured = getattr(corpus, "MEASURED", None)
    if measured:
        from tests.realworld.table import render

        tables = [render(measured)]
    else:
        tables = _CORPUS_TABLES
    if tables:
        terminalreporter.section("real-world corpus: sequential vs accelerated")
        for table in tables:
            terminalreporter.write_line(table)
