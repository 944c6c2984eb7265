"""The central promise at HTTP level, as a property: a loop whose requests are prefetched
behaves as the sequential one, against the real local server.

The examples are the function-level property's (``test_prefetch_properties.cases``: items
with duplicates, dicts, generators, a source that breaks, per-key latencies, failing keys,
skipped items, whether the loop catches, concurrency and window), here as the keys of
``GET /item/<key>`` requests made by httpx (sync and async) and requests. Each example runs
the loop unpatched, then patched, and compares the return value, the loop body's log in
order (each entry in the caller's thread), the exception, and the GETs the server saw:
every GET of the sequential run exactly as often, and more only for items the loop never
asked for, each counted as wasted in the run line.
"""

from __future__ import annotations

import importlib
import re
import threading
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given

import sched_accel

from ..conftest import App
from ..faultserver import FaultServer
from .test_prefetch_properties import SETTINGS, Case, Outcome, cases, reached

JOBS = """
    import threading

    import httpx
    import requests

    LOG = []
    SKIP = set()
    EXTRA = []


    def key(item):
        return item["k"] if isinstance(item, dict) else item


    def body(index, item, answer, status, catch, out):
        # the loop's own code: its log, its exception, its try/except
        if status == 500:
            if not catch:
                LOG.append(("raising", index))
                raise LookupError(f"no data for {key(item)}")
            LOG.append(("caught", index))
            out.append(None)
        else:
            LOG.append(("got", index, answer["value"]))
            out.append(answer)


    def loop(items, catch, base):
        out = []
        with httpx.Client() as client:
            for index, item in enumerate(items):
                LOG.append(("item", index, key(item), threading.get_ident()))
                if index in SKIP:
                    continue
                answer = client.get(f"{base}/item/{key(item)}")
                body(index, item, answer.json(), answer.status_code, catch, out)
            for extra in EXTRA:
                out.append(client.get(f"{base}/item/{extra}").json())
        return out


    def loop_requests(items, catch, base):
        out = []
        session = requests.Session()
        for index, item in enumerate(items):
            LOG.append(("item", index, key(item), threading.get_ident()))
            if index in SKIP:
                continue
            answer = session.get(f"{base}/item/{key(item)}")
            body(index, item, answer.json(), answer.status_code, catch, out)
        return out


    async def aloop(items, catch, base):
        out = []
        async with httpx.AsyncClient() as client:
            for index, item in enumerate(items):
                LOG.append(("item", index, key(item), threading.get_ident()))
                if index in SKIP:
                    continue
                answer = await client.get(f"{base}/item/{key(item)}")
                body(index, item, answer.json(), answer.status_code, catch, out)
        return out
"""
CONFIG = """
    [[targets]]
    loop = "httpjobs:{name}"
    items = "items"
    concurrency = {concurrency}
    window = {window}
"""


class Harness:
    """The app and the server; each example installs (or not) for one loop."""

    def __init__(self, app: App, monkeypatch: pytest.MonkeyPatch, capture: list[str], server: FaultServer) -> None:
        app.write("httpjobs.py", JOBS)
        self.app, self.capture, self.server = app, capture, server
        monkeypatch.setenv("ENABLE_SCHEDULER_OPTIMIZATION", "true")
        self.jobs: Any = importlib.import_module("httpjobs")

    def prepare(self, case: Case, name: str, *, patched: bool) -> None:
        sched_accel.uninstall()
        server = self.server
        server.reset_counts()
        server.latencies = {str(k): seconds for k, seconds in case.latency.items()}
        # A failing key answers 500 to every request of this run (however many are made).
        server.faults = {str(k): ["500"] * 64 for k in case.fail}
        self.jobs.LOG.clear()
        self.jobs.SKIP.clear()
        self.jobs.SKIP.update(case.skip)
        self.jobs.EXTRA[:] = case.extra if name == "loop" else []
        if patched:
            self.app.config(CONFIG.format(name=name, concurrency=case.concurrency, window=case.window))
            assert sched_accel.install() is True
            self.capture.clear()

    def outcome(self, value: Any, error: BaseException | None) -> Outcome:
        for thread in threading.enumerate():  # requests sent ahead and still running end first
            if thread.name.startswith("sched_accel-httpjobs:"):
                thread.join(5)
        gets = Counter(int(k) for method, k in self.server.log if method == "GET")
        return Outcome(value, None if error is None else (type(error).__name__, str(error)), list(self.jobs.LOG), gets)

    def run_line(self) -> dict[str, str]:
        [line] = [line for line in self.capture if line.startswith("sched_accel.run ")]
        return dict(re.findall(r"(\w+)=(\S+)", line.split(" - ", 1)[0]))


@pytest.fixture(scope="module")
def server() -> Iterator[FaultServer]:
    with FaultServer(latency=0) as running:
        yield running


@pytest.fixture
def harness(app: App, monkeypatch: pytest.MonkeyPatch, capture_events: list[str], server: FaultServer) -> Harness:
    return Harness(app, monkeypatch, capture_events, server)


def check(case: Case, harness: Harness, sequential: Outcome, accelerated: Outcome) -> None:
    assert accelerated.error == sequential.error
    assert accelerated.value == sequential.value
    assert accelerated.log == sequential.log  # the same body, in the same order, in the caller's thread
    assert not sequential.calls - accelerated.calls  # every GET the loop made, as often
    extra = accelerated.calls - sequential.calls
    end = reached(case, sequential)
    unasked = Counter(k for i, k in enumerate(case.keys) if i in case.skip or i >= end)
    assert not extra - unasked, (extra, unasked)
    fields = harness.run_line()
    # a request sent ahead for nothing is wasted; one cancelled before it left may not arrive
    assert sum(extra.values()) <= int(fields["wasted"])
    assert int(fields["prefetched"]) + int(fields["missed"]) == int(fields["items"])
    assert fields["outcome"] == ("ok" if sequential.error is None else "raised")


def run_sync(harness: Harness, case: Case, name: str, *, patched: bool) -> Outcome:
    harness.prepare(case, name, patched=patched)
    try:
        value = getattr(harness.jobs, name)(case.items(), case.catch, harness.server.url)
    except (LookupError, ValueError) as exc:
        return harness.outcome(None, exc)
    return harness.outcome(value, None)


@SETTINGS
@given(case=cases())
def test_httpx_loop_with_requests_prefetched_equals_sequential(harness: Harness, case: Case) -> None:
    """A sync httpx loop: patched, it returns, logs, raises and requests exactly as unpatched."""
    check(case, harness, run_sync(harness, case, "loop", patched=False), run_sync(harness, case, "loop", patched=True))


@SETTINGS
@given(case=cases())
def test_requests_loop_with_requests_prefetched_equals_sequential(harness: Harness, case: Case) -> None:
    """The same for a requests.Session loop."""
    sequential = run_sync(harness, case, "loop_requests", patched=False)
    check(case, harness, sequential, run_sync(harness, case, "loop_requests", patched=True))


async def run_async(harness: Harness, case: Case, *, patched: bool) -> Outcome:
    harness.prepare(case, "aloop", patched=patched)
    try:
        value = await harness.jobs.aloop(case.items(), case.catch, harness.server.url)
    except (LookupError, ValueError) as exc:
        return harness.outcome(None, exc)
    return harness.outcome(value, None)


@pytest.mark.anyio
@SETTINGS
@given(case=cases())
async def test_async_httpx_loop_with_requests_prefetched_equals_sequential(harness: Harness, case: Case) -> None:
    """An async httpx loop, the same."""
    check(case, harness, await run_async(harness, case, patched=False), await run_async(harness, case, patched=True))
