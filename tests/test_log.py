"""Log events: one greppable line each, through loguru or routed to the stdlib logger."""

from __future__ import annotations

import logging

import pytest

from sched_accel import _log, log_to_loguru, log_to_stdlib


def test_render_puts_the_event_first_then_fields_then_the_message() -> None:
    """A line reads `sched_accel.EVENT k=v ... - message`, quoting values with spaces."""
    line = _log.render("run", "done", {"target": "a.b:c", "reason": "ValueError: bad value", "ok": 3})
    assert line == 'sched_accel.run target=a.b:c reason="ValueError: bad value" ok=3 - done'


def test_events_go_through_loguru_by_default(capture_events: list[str]) -> None:
    """By default a record reaches loguru's sinks, with the event name at the start."""
    _log.event("INFO", "patched", target="x:y")
    assert capture_events == ["sched_accel.patched target=x:y"]


def test_log_to_stdlib_routes_records_to_the_sched_accel_logger(
    caplog: pytest.LogCaptureFixture, capture_events: list[str]
) -> None:
    """After log_to_stdlib(), records go to logging.getLogger('sched_accel') with the event in extra."""
    log_to_stdlib()
    try:
        with caplog.at_level(logging.INFO, logger="sched_accel"):
            _log.event("WARNING", "fallback", "the original runs", target="x:y")
    finally:
        log_to_loguru()
    assert capture_events == []
    [record] = caplog.records
    assert record.name == "sched_accel"
    assert record.levelno == logging.WARNING
    assert record.getMessage() == "sched_accel.fallback target=x:y - the original runs"
    assert record.sched_accel_event == "sched_accel.fallback"  # type: ignore[attr-defined]
    assert record.sched_accel == {"target": "x:y"}  # type: ignore[attr-defined]


def test_env_variable_selects_stdlib(monkeypatch: pytest.MonkeyPatch) -> None:
    """SCHED_ACCEL_LOG=stdlib selects the stdlib route from the start."""
    monkeypatch.setenv("SCHED_ACCEL_LOG", "stdlib")
    assert _log._Router().stdlib is True
    monkeypatch.setenv("SCHED_ACCEL_LOG", "loguru")
    assert _log._Router().stdlib is False


def test_internal_error_says_the_original_runs(capture_events: list[str]) -> None:
    """A failure of ours is one ERROR line naming where, the error, and that the app is unaffected."""
    _log.internal_error("patching x:y", RuntimeError("bug"))
    [line] = capture_events
    assert line.startswith('sched_accel.internal_error where="patching x:y" error="RuntimeError: bug"')
    assert "original code runs" in line
