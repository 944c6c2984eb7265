"""Log events: one greppable line each, through loguru or routed to the stdlib logger."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from typing import Any

import pytest

from sched_accel import _log, log_to_loguru, log_to_stdlib
from sched_accel._events import FALLBACK, PATCHED, RUN, SINGLE_RUN_CLAIMED

from .conftest import App


def test_render_puts_the_event_first_then_fields_then_the_message() -> None:
    """A line reads `sched_accel.EVENT k=v ... - message`, quoting values with spaces."""
    line = _log.render("run", "done", {"target": "a.b:c", "reason": "ValueError: bad value", "ok": 3})
    assert line == 'sched_accel.run target=a.b:c reason="ValueError: bad value" ok=3 - done'


def test_render_shows_none_as_a_dash() -> None:
    """A field not known (None) reads ``-``; ``extra`` keeps None."""
    assert _log.render("run", "", {"items": None, "seconds": 0.5}) == "sched_accel.run items=- seconds=0.5"


@contextlib.contextmanager
def no_app_logging() -> Iterator[None]:
    """The process as an app that configured no stdlib logging: no handler on the root
    logger (pytest's capture handlers, added as the test's call begins, are put back after)."""
    root = logging.getLogger()
    handlers = root.handlers[:]
    root.handlers.clear()
    yield
    root.handlers[:] = handlers


def test_events_go_through_loguru_when_the_app_configured_no_logging() -> None:
    """auto: nothing configured in stdlib logging, so a record reaches loguru's sinks, pid last."""
    from loguru import logger

    seen: list[Any] = []
    sink = logger.add(lambda message: seen.append(message.record), level="DEBUG")
    try:
        with no_app_logging():
            _log.event(PATCHED, target="x:y")
    finally:
        logger.remove(sink)
    [record] = seen
    assert record["message"] == f"sched_accel.patched target=x:y pid={os.getpid()}"
    assert record["extra"]["sched_accel_pid"] == os.getpid()  # type: ignore[index]


def test_events_go_to_the_stdlib_logger_when_the_app_configured_logging(caplog: pytest.LogCaptureFixture) -> None:
    """auto: a handler above our logger (pytest's here, basicConfig in an app) means the app's
    logging is set up: the record goes there, at INFO even when the root logger is at WARNING."""
    from loguru import logger

    through_loguru: list[str] = []
    sink = logger.add(lambda message: through_loguru.append(message.record["message"]), level="DEBUG")
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.WARNING)
    try:
        _log.event(RUN, target="x:y", items=None, seconds=1.25, ok=3)
    finally:
        root.setLevel(level)
        logger.remove(sink)
    assert through_loguru == []
    [record] = [r for r in caplog.records if r.name == "sched_accel"]
    assert record.levelno == logging.INFO
    assert record.getMessage() == f"sched_accel.run target=x:y items=- seconds=1.25 ok=3 pid={os.getpid()}"
    assert record.sched_accel == {"target": "x:y", "items": None, "seconds": 1.25, "ok": 3, "pid": os.getpid()}  # type: ignore[attr-defined]
    assert record.funcName == "test_events_go_to_the_stdlib_logger_when_the_app_configured_logging"


def test_a_level_the_app_set_on_our_logger_is_obeyed(caplog: pytest.LogCaptureFixture) -> None:
    """The app quiets us as any library: a level on the ``sched_accel`` logger itself."""
    ours = logging.getLogger("sched_accel")
    ours.setLevel(logging.WARNING)
    try:
        _log.event(RUN, target="x:y")
        _log.event(FALLBACK, target="x:y")
        _log.event(SINGLE_RUN_CLAIMED)
    finally:
        ours.setLevel(logging.NOTSET)
    assert [r.getMessage().split()[0] for r in caplog.records if r.name == "sched_accel"] == ["sched_accel.fallback"]
    _log.event(SINGLE_RUN_CLAIMED)  # a DEBUG event; no level set: below INFO is not shown, as loguru's sinks would
    assert [r.getMessage().split()[0] for r in caplog.records if r.name == "sched_accel"] == ["sched_accel.fallback"]


def test_log_to_stdlib_routes_records_to_the_sched_accel_logger() -> None:
    """After log_to_stdlib(), records go to logging.getLogger('sched_accel') with the event in
    extra, even when the app configured no handler for them (seen here by a filter)."""
    from loguru import logger

    through_loguru: list[str] = []
    seen: list[logging.LogRecord] = []
    ours = logging.getLogger("sched_accel")
    sink = logger.add(lambda message: through_loguru.append(message.record["message"]), level="DEBUG")
    ours.addFilter(lambda record: bool(seen.append(record) or False))  # type: ignore[func-returns-value] # seen, then dropped
    log_to_stdlib()
    try:
        with no_app_logging():
            _log.event(FALLBACK, "the original runs", target="x:y")
    finally:
        _log.reset()
        logger.remove(sink)
        ours.filters.clear()
    assert through_loguru == []
    [record] = seen
    assert record.name == "sched_accel"
    assert record.levelno == logging.WARNING
    assert record.getMessage() == f"sched_accel.fallback target=x:y pid={os.getpid()} - the original runs"
    assert record.sched_accel_event == "sched_accel.fallback"  # type: ignore[attr-defined]
    assert record.sched_accel == {"target": "x:y", "pid": os.getpid()}  # type: ignore[attr-defined]


def test_log_to_loguru_keeps_loguru_although_the_app_configured_logging(capture_events: list[str]) -> None:
    """log_to_loguru() (or SCHED_ACCEL_LOG=loguru, log = "loguru") chooses loguru whatever is configured."""
    log_to_loguru()
    try:
        _log.event(PATCHED, target="x:y")
    finally:
        _log.reset()
    assert capture_events == ["sched_accel.patched target=x:y"]


def test_env_variable_chooses_and_outranks_the_config(monkeypatch: pytest.MonkeyPatch) -> None:
    """SCHED_ACCEL_LOG=stdlib or =loguru chooses from the start, and a config's ``log`` yields to it."""
    monkeypatch.setenv("SCHED_ACCEL_LOG", "stdlib")
    _log.reset()
    _log.route_as_configured("loguru")
    assert _log._router.route == "stdlib"
    monkeypatch.setenv("SCHED_ACCEL_LOG", "Loguru ")
    _log.reset()
    assert _log._router.route == "loguru"
    monkeypatch.delenv("SCHED_ACCEL_LOG")
    _log.reset()
    assert _log._router.route == "auto"
    _log.route_as_configured("stdlib")
    assert _log._router.route == "stdlib"
    _log.reset()


APP = """
    import logging, sys
    if sys.argv[1] == "configured":
        logging.basicConfig(format="APPFMT %(levelname)s [%(process)d] %(name)s: %(message)s", level=logging.WARNING)
    from sched_accel import _log
    from sched_accel._events import RUN
    _log.event(RUN, target="jobs:update", items=3, seconds=0.25)
"""


@pytest.mark.parametrize("setup", ["configured", "plain"])
def test_a_real_app_sees_our_line_in_its_own_format_or_on_stderr(app: App, setup: str) -> None:
    """In a real interpreter: after basicConfig our line is in the app's format (root at
    WARNING notwithstanding); an app that configured nothing gets loguru's on stderr. Both say pid."""
    app.write("job.py", APP)
    done = app.run("job.py", setup)
    assert done.returncode == 0, done.stderr
    [line] = [line for line in done.stderr.splitlines() if "sched_accel.run" in line]
    tail = "sched_accel.run target=jobs:update items=3 seconds=0.25 pid="
    if setup == "configured":
        assert line.startswith("APPFMT INFO ["), line
        pid = line.split("[")[1].split("]")[0]
        assert line == f"APPFMT INFO [{pid}] sched_accel: {tail}{pid}"
    else:
        assert " | INFO     | sched_accel:<module>:" in line and tail in line, line


def test_internal_error_says_the_original_runs(capture_events: list[str]) -> None:
    """A failure of ours is one ERROR line naming where, the error, and that the app is unaffected."""
    _log.internal_error("patching x:y", RuntimeError("bug"))
    [line] = capture_events
    assert line.startswith('sched_accel.internal_error where="patching x:y" error="RuntimeError: bug"')
    assert "original code runs" in line
