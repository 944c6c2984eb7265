"""The one line a run that did not accelerate says (``_why``)."""

from __future__ import annotations

import importlib
from types import SimpleNamespace
from typing import Any

import pytest

import sched_accel
from sched_accel._prefetch._ahead import Ahead
from sched_accel._prefetch._probe import StepAside
from sched_accel._prefetch._run import PrefetchRun
from sched_accel._prefetch._why import why_not, why_not_calls, would_match

from ..conftest import App


def run(**changes: Any) -> Any:
    base = {
        "hits": 0,
        "misses": 3,
        "other": 0,
        "differs": None,
        "replay": False,
        "learned": [],
        "pulled": 3,
        "recorder": None,
        "first_miss": SimpleNamespace(method="GET", url="http://h/a"),
        "ahead": [Ahead(0, "tok")],
        "step": StepAside(),
        "oversize": 0,
    }
    return SimpleNamespace(**(base | changes))


def test_each_reason() -> None:
    """Each reason an HTTP-level run did not accelerate, and None when it did."""
    assert why_not(run(hits=1), "'tokens'") is None
    assert why_not(run(misses=0, pulled=0), "'tokens'") is None
    assert why_not(run(misses=0, replay=True), "'learned'") is None
    assert "no request through httpx" in (why_not(run(misses=0), "'tokens'") or "")
    assert "x-sequence" in (why_not(run(differs="x-sequence"), "'tokens'") or "")
    assert "over the 10 MiB kept per answer (2 of them)" in (why_not(run(oversize=2), "'tokens'") or "")
    recorded = SimpleNamespace(calls=[["GET", "http://h/a"]], skipped=0)
    assert "this run recorded 1, the next one prefetches" in (
        why_not(run(replay=True, pulled=0, recorder=recorded), "'learned'") or ""
    )
    nothing = why_not(run(replay=True, pulled=0, recorder=SimpleNamespace(calls=[], skipped=0)), "'learned'") or ""
    assert "nothing was recorded" in nothing and "next one prefetches" not in nothing
    assert "not GET or HEAD" in (why_not(run(misses=0, other=4), "'tokens'") or "")
    assert "last run" in (why_not(run(replay=True), "'learned'") or "")
    line = why_not(run(), "'tokens'") or ""
    assert "GET http://h/a" in line and "'tok'" in line and "items = 'tokens'" in line
    assert "never the ones" in (why_not(run(learned=[SimpleNamespace(retired=True)]), "'tokens'") or "")
    assert why_not(run(learned=[SimpleNamespace(retired=False)]), "'tokens'") is None


def aside() -> StepAside:
    step = StepAside()
    step.probed(True)
    for _ in range(8):
        step.timed(0.0)  # the direct calls were quick too: aside for good
    return step


def test_a_run_that_stepped_aside_says_so_even_with_the_probe_served() -> None:
    assert "stepped aside" in (why_not(run(hits=1, step=aside()), "'tokens'") or "")
    step = StepAside()
    step.stop()  # a failure of ours: said by its own line, not as a step-aside
    assert why_not(run(hits=1, step=step), "'tokens'") is None


def calls(**changes: Any) -> Any:
    base: dict[str, Any] = {
        "hits": 0,
        "misses": 3,
        "direct": 0,
        "mismatched": 0,
        "shape": None,
        "recorder": None,
        "first_call": (("BTC",), {}),
        "first_item": {"symbol": "BTC", "id": 7},
        "builder_error": None,
        "step": StepAside(),
    }
    return SimpleNamespace(**(base | changes))


def test_each_reason_of_a_function_level_run() -> None:
    """Each reason a function-level run did not accelerate; never "the next one prefetches" for nothing recorded."""
    assert why_not_calls(calls(hits=2), "'coins'") is None
    assert "stepped aside" in (why_not_calls(calls(hits=1, step=aside()), "'coins'") or "")
    recorded = SimpleNamespace(calls=[["BTC"]], skipped=0)
    assert "recorded yet" in (
        why_not_calls(calls(recorder=recorded, first_item=PrefetchRun.NO_ITEM), "'learned'") or ""
    )
    models = SimpleNamespace(calls=[], skipped=12)  # arguments that cannot be kept (model instances)
    line = why_not_calls(calls(recorder=models, first_item=PrefetchRun.NO_ITEM), "'learned'") or ""
    assert "12 made, none of them kept" in line and "next one prefetches" not in line
    assert why_not_calls(calls(first_call=None), "'coins'") is None  # nothing tried: no items at all
    line = why_not_calls(calls(), "'coins'") or ""
    assert "first call: ('BTC')" in line and "'symbol': 'BTC'" in line
    assert "args = ['item.symbol'] would match" in line
    line = why_not_calls(calls(first_item={"name": "bitcoin"}), "'coins'") or ""
    assert "check items = 'coins', or declare args" in line
    line = why_not_calls(calls(builder_error="KeyError: 'sym'"), "'coins'") or ""
    assert "args paths failed" in line and "KeyError" in line
    assert "changed the arguments of 2" in (why_not_calls(calls(shape=object(), mismatched=2), "'coins'") or "")
    assert "never the ones" in (why_not_calls(calls(shape=object()), "'coins'") or "")


def test_would_match_finds_each_argument_among_the_fields() -> None:
    assert would_match({"symbol": "BTC", "meta": {"id": 7}}, ("BTC", 7)) == ["item.symbol", "item.meta.id"]
    assert would_match("BTC", ("BTC",)) == ["item"]
    assert would_match({"symbol": "BTC"}, ("ETH",)) is None
    assert would_match({"symbol": "BTC"}, ()) is None


MATCH = """
    def price(symbol):
        return len(symbol)

    def loop(coins):
        return [price(coin["symbol"]) for coin in coins]
"""


def test_a_function_level_run_with_no_matching_item_says_which_args_would_match(
    app: App, monkeypatch: pytest.MonkeyPatch, capture_events: list[str]
) -> None:
    app.write("coins.py", MATCH)
    app.config('[[targets]]\nloop = "coins:loop"\nfetch = "coins:price"\nitems = "coins"\n')
    monkeypatch.setenv("ENABLE_SCHEDULER_OPTIMIZATION", "1")
    assert sched_accel.install() is True
    coins = importlib.import_module("coins")
    assert coins.loop([{"symbol": "BTC"}, {"symbol": "ETH2"}, {"symbol": "X"}]) == [3, 4, 1]
    [line] = [line for line in capture_events if "not_accelerated" in line]
    assert "first call: ('BTC')" in line and "args = ['item.symbol'] would match" in line
