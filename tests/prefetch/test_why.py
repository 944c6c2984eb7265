"""The one line a run that did not accelerate says (``_why``)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from sched_accel._prefetch._requests import Ahead
from sched_accel._prefetch._why import why_not


def run(**changes: Any) -> Any:
    base = {"hits": 0, "misses": 3, "other": 0, "differs": None, "replay": False, "learned": [], "pulled": 3,
            "first_miss": SimpleNamespace(method="GET", url="http://h/a"), "ahead": [Ahead(0, "tok")]}
    return SimpleNamespace(**(base | changes))


def test_each_reason() -> None:
    assert why_not(run(hits=1), "'tokens'") is None
    assert why_not(run(misses=0, pulled=0), "'tokens'") is None
    assert why_not(run(misses=0, replay=True), "'learned'") is None
    assert "no request through httpx" in (why_not(run(misses=0), "'tokens'") or "")
    assert "x-sequence" in (why_not(run(differs="x-sequence"), "'tokens'") or "")
    assert "recorded yet" in (why_not(run(replay=True, pulled=0), "'learned'") or "")
    assert "last run" in (why_not(run(replay=True), "'learned'") or "")
    line = why_not(run(), "'tokens'") or ""
    assert "GET http://h/a" in line and "'tok'" in line and "items = 'tokens'" in line
    assert "never the ones" in (why_not(run(learned=[SimpleNamespace(retired=True)]), "'tokens'") or "")
    assert why_not(run(learned=[SimpleNamespace(retired=False)]), "'tokens'") is None
