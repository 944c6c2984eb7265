"""_report.py: one run, counted while it runs, reported once: the line, the saved run, the hints."""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

import pytest

from sched_accel._policy import Hosts
from sched_accel._report import RunReport
from sched_accel._settings import Target
from sched_accel._state import load_runs
from sched_accel._targets import TargetSpec


def target(mode: str = "prefetch") -> Target:
    """A target of either mode."""
    return Target(loop=TargetSpec.parse("jobs:update"), mode=mode, concurrency=4)  # type: ignore[arg-type]


def run_lines(captured: list[str]) -> list[str]:
    """The run lines logged."""
    return [line for line in captured if line.startswith("sched_accel.run ")]


def test_the_line_counts_the_calls_and_names_the_mode(capture_events: list[str]) -> None:
    """ok/failed count the per-item calls; items as known; the mode's own fields after the common ones."""
    report = RunReport(target("replace"), items=3)
    report.count(True)
    report.count(True)
    report.count(False)
    fields = report.finish("ok", more={"reason": "x"})
    [line] = run_lines(capture_events)
    assert line.startswith("sched_accel.run target=jobs:update mode=replace outcome=ok items=3 ok=2 failed=1 seconds=")
    assert re.search(r"concurrency=4 reason=x$", line)
    assert fields["ok"] == 2


def test_unknown_items_show_as_a_dash(capture_events: list[str]) -> None:
    """A run whose items are not known up front says items=-."""
    RunReport(target()).finish("ok")
    assert " items=- " in run_lines(capture_events)[0]


def test_a_run_is_saved_for_status(tmp_path: Path) -> None:
    """With a state folder the line's fields are saved as the target's last run, with its hosts."""
    hosts = Hosts()
    hosts.get("api.test")
    RunReport(target()).finish("ok", items=2, state_dir=str(tmp_path), hosts=hosts)
    record = load_runs(str(tmp_path))["jobs:update"]
    assert record["run"]["items"] == 2 and record["pid"] == os.getpid()
    assert record["hosts"][0].startswith("api.test: requests=0")


def test_a_run_that_lost_items_or_did_not_end_ok_is_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    """INFO only for an ok run that lost nothing (grep 'lost=[1-9]' finds the others too)."""
    with caplog.at_level(logging.DEBUG, logger="sched_accel"):
        RunReport(target()).finish("ok")
        RunReport(target()).finish("ok", more={"lost": 1})
        RunReport(target()).finish("fallback")
    assert [r.levelname for r in caplog.records if r.name == "sched_accel"] == ["INFO", "WARNING", "WARNING"]


def test_an_undeclared_host_that_refused_is_hinted(capture_events: list[str]) -> None:
    """A run with 429s asks its hosts to say, once, which undeclared host to declare."""
    hosts = Hosts()
    hosts.get("api.test").limiter.on_overload(429)
    RunReport(target()).finish("ok", more={"http_429": 1}, hosts=hosts)
    assert any(line.startswith("sched_accel.host_limit_undeclared host=api.test") for line in capture_events)
