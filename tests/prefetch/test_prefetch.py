"""Prefetch mode against a real HTTP server on 127.0.0.1: concurrency, requests, window, timeout, misses.

The upstream (examples/legacy_app/upstream.py) counts the requests it gets, per path, and
the peak number in flight; the app is a legacy loop calling an httpx client once per token.
"""

from __future__ import annotations

import asyncio
import importlib
import re
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

import sched_accel

from ..conftest import App

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
sys.path.insert(0, str(EXAMPLES))

from legacy_app.upstream import Upstream, pair_data  # noqa: E402

CLIENT = """
    import threading

    import httpx

    FETCH_THREADS = []


    class Api:
        def __init__(self, base_url):
            self.http = httpx.Client(base_url=base_url, timeout=30)

        def get_pair(self, token):
            FETCH_THREADS.append(threading.get_ident())
            response = self.http.get(f"/pair/{token}")
            response.raise_for_status()
            return response.json()

        def close(self):
            self.http.close()


    class AsyncApi:
        def __init__(self, base_url):
            self.http = httpx.AsyncClient(base_url=base_url, timeout=30)

        async def get_pair(self, token):
            response = await self.http.get(f"/pair/{token}")
            response.raise_for_status()
            return response.json()

        async def aclose(self):
            await self.http.aclose()
"""
JOBS = """
    import threading

    import anyio

    THREADS = []
    TASKS = []
    ERRORS = []
    AHEAD = []
    PULLED = [0]


    def update(tokens, api, extra=()):
        out = []
        for index, token in enumerate(tokens):
            THREADS.append(threading.get_ident())
            AHEAD.append(PULLED[0] - (index + 1))
            try:
                out.append(api.get_pair(token))
            except Exception as exc:
                ERRORS.append((token, type(exc).__name__))
                out.append(None)
        for token in extra:
            out.append(api.get_pair(token))
        return out


    async def update_async(tokens, api, extra=()):
        out = []
        for index, token in enumerate(tokens):
            THREADS.append(threading.get_ident())
            TASKS.append(anyio.get_current_task().id)
            AHEAD.append(PULLED[0] - (index + 1))
            try:
                out.append(await api.get_pair(token))
            except Exception as exc:
                ERRORS.append((token, type(exc).__name__))
                out.append(None)
        for token in extra:
            out.append(await api.get_pair(token))
        return out


    def counted(tokens):
        for token in tokens:
            PULLED[0] += 1
            yield token
"""
TARGETS = """
    [[targets]]
    loop = "jobs:update"
    fetch = "client:Api.get_pair"
    pure = true  # the fakes record their calls: a write, known to be harmless
    items = "tokens"
    {options}

    [[targets]]
    loop = "jobs:update_async"
    fetch = "client:AsyncApi.get_pair"
    pure = true  # the fakes record their calls: a write, known to be harmless
    items = 0
    {options}
"""

TOKENS = [f"T{i:02d}" for i in range(24)]


class Job:
    """The app's modules, patched."""

    def __init__(self) -> None:
        self.jobs: Any = importlib.import_module("jobs")
        self.client: Any = importlib.import_module("client")


def start(app: App, monkeypatch: pytest.MonkeyPatch, options: str = "concurrency = 4") -> Job:
    """Write the app and a config with ``options`` for both targets; install with the flag on."""
    app.write("client.py", CLIENT)
    app.write("jobs.py", JOBS)
    app.config(TARGETS.format(options=textwrap.dedent(options).strip().replace("\n", "\n    ")))
    monkeypatch.setenv("ENABLE_SCHEDULER_OPTIMIZATION", "true")
    assert sched_accel.install() is True
    return Job()


@pytest.fixture
def upstream() -> Iterator[Upstream]:
    """The fake API on 127.0.0.1, answering each request after 30 ms."""
    with Upstream(latency=0.03, delays={"SLOW": 1.0}) as server:
        yield server


def run_line(captured: list[str]) -> dict[str, str]:
    """The fields of the one ``sched_accel.run`` line logged."""
    [line] = [line for line in captured if line.startswith("sched_accel.run ")]
    return dict(re.findall(r"(\w+)=(\S+)", line.split(" - ", 1)[0]))


def one_request_each(server: Upstream, tokens: list[str]) -> None:
    """The upstream saw exactly one request per token, and nothing else."""
    stats = server.stats.snapshot()
    assert stats["per_path"] == {f"/pair/{t}": 1 for t in tokens}
    assert stats["requests"] == len(tokens)


# -- sync loop ------------------------------------------------------------------------------


def test_sync_loop_runs_requests_concurrently_once_each(
    app: App, monkeypatch: pytest.MonkeyPatch, upstream: Upstream, capture_events: list[str]
) -> None:
    """More than one request is in flight, never more than concurrency, one request per item."""
    job = start(app, monkeypatch)
    api = job.client.Api(upstream.url)
    try:
        result = job.jobs.update(TOKENS, api)
    finally:
        api.close()
    assert result == [pair_data(t) for t in TOKENS]
    stats = upstream.stats.snapshot()
    assert 1 < stats["peak_in_flight"] <= 4
    one_request_each(upstream, TOKENS)
    fields = run_line(capture_events)
    assert (fields["outcome"], fields["prefetched"], fields["missed"], fields["wasted"]) == ("ok", "24", "0", "0")
    assert (fields["ok"], fields["failed"]) == ("24", "0")


def test_sync_loop_body_runs_in_the_callers_thread(
    app: App, monkeypatch: pytest.MonkeyPatch, upstream: Upstream
) -> None:
    """The loop body runs in the thread that called the loop; the requests run in worker threads."""
    job = start(app, monkeypatch)
    api = job.client.Api(upstream.url)
    try:
        job.jobs.update(TOKENS[:8], api)
    finally:
        api.close()
    assert set(job.jobs.THREADS) == {threading.get_ident()}
    assert threading.get_ident() not in job.client.FETCH_THREADS
    assert len(job.client.FETCH_THREADS) == 8


@pytest.mark.slow
def test_a_generator_is_never_read_ahead(
    app: App, monkeypatch: pytest.MonkeyPatch, upstream: Upstream, capture_events: list[str]
) -> None:
    """A generator of items runs the app's code as it is read: it is never read ahead of the
    loop (the loop runs as before) and one line says why and what to use instead."""
    job = start(app, monkeypatch, "concurrency = 6\nwindow = 3")
    api = job.client.Api(upstream.url)
    try:
        result = job.jobs.update(job.jobs.counted(TOKENS), api)
    finally:
        api.close()
    assert result == [pair_data(t) for t in TOKENS]
    assert job.jobs.PULLED == [len(TOKENS)]
    assert max(job.jobs.AHEAD) == 0  # pulled only by the loop, one at a time
    assert upstream.stats.snapshot()["peak_in_flight"] == 1
    assert any("items_not_read_ahead" in line and '"learned"' in line for line in capture_events)
    one_request_each(upstream, TOKENS)


def test_concurrency_bounds_requests_with_a_larger_window(
    app: App, monkeypatch: pytest.MonkeyPatch, upstream: Upstream
) -> None:
    """With a window larger than concurrency, requests in flight never exceed concurrency
    (an iterator over a list is read ahead: reading it runs none of the app's code)."""
    job = start(app, monkeypatch, "concurrency = 3\nwindow = 12")
    api = job.client.Api(upstream.url)
    try:
        job.jobs.update(iter(list(TOKENS)), api)
    finally:
        api.close()
    assert upstream.stats.snapshot()["peak_in_flight"] == 3
    one_request_each(upstream, TOKENS)


@pytest.mark.slow
def test_timeout_raises_timeout_error_at_the_loops_call(
    app: App, monkeypatch: pytest.MonkeyPatch, upstream: Upstream, capture_events: list[str]
) -> None:
    """A request slower than ``timeout`` is cut there by httpx (the timeout caps the request's), retried
    until the retry deadline, then its ReadTimeout is raised where the loop calls, inside its own try."""
    job = start(app, monkeypatch, "concurrency = 4\ntimeout = 0.3\nretry = { deadline = 1.0, transient = true }")
    tokens = ["A", "B", "SLOW", "C", "D"]
    api = job.client.Api(upstream.url)
    try:
        result = job.jobs.update(tokens, api)
    finally:
        api.close()
    assert job.jobs.ERRORS == [("SLOW", "ReadTimeout")]
    assert result == [pair_data("A"), pair_data("B"), None, pair_data("C"), pair_data("D")]
    fields = run_line(capture_events)
    assert (fields["ok"], fields["failed"], fields["outcome"]) == ("4", "1", "ok")
    assert (fields["retried"], fields["gave_up"], fields["lost"]) == ("1", "1", "0")
    assert int(fields["timeouts"]) >= 2


def test_unpredicted_call_runs_directly_and_is_counted_as_missed(
    app: App, monkeypatch: pytest.MonkeyPatch, upstream: Upstream, capture_events: list[str]
) -> None:
    """A per-item call for an item not in the source runs directly, once, and is counted as missed."""
    job = start(app, monkeypatch)
    api = job.client.Api(upstream.url)
    try:
        result = job.jobs.update(TOKENS[:10], api, extra=["EXTRA"])
    finally:
        api.close()
    assert result == [pair_data(t) for t in [*TOKENS[:10], "EXTRA"]]
    one_request_each(upstream, [*TOKENS[:10], "EXTRA"])
    fields = run_line(capture_events)
    assert (fields["prefetched"], fields["missed"], fields["wasted"], fields["ok"]) == ("10", "1", "0", "11")


def test_a_long_skip_is_caught_up_with(
    app: App, monkeypatch: pytest.MonkeyPatch, upstream: Upstream, capture_events: list[str]
) -> None:
    """A loop that skips more items in a row than the window is predicted again after the skip."""
    app.write("client.py", CLIENT)
    app.write(
        "skipping.py",
        """
        def update(tokens, api):
            return [api.get_pair(t) for i, t in enumerate(tokens) if i < 2 or i >= 12]
        """,
    )
    app.config(
        '[[targets]]\nloop = "skipping:update"\nfetch = "client:Api.get_pair"\npure = true\nitems = "tokens"\nconcurrency = 2\nwindow = 4\n'
    )
    monkeypatch.setenv("ENABLE_SCHEDULER_OPTIMIZATION", "1")
    assert sched_accel.install() is True
    client, skipping = importlib.import_module("client"), importlib.import_module("skipping")
    api = client.Api(upstream.url)
    try:
        result = skipping.update(TOKENS, api)
    finally:
        api.close()
    asked = [t for i, t in enumerate(TOKENS) if i < 2 or i >= 12]
    assert result == [pair_data(t) for t in asked]
    per_path = upstream.stats.snapshot()["per_path"]
    assert all(count == 1 for count in per_path.values())  # never twice, wasted ones included
    assert {f"/pair/{t}" for t in asked} <= set(per_path)
    fields = run_line(capture_events)
    assert int(fields["missed"]) == 1  # the first call after the skip; the rest are predicted again
    assert int(fields["prefetched"]) == len(asked) - 1
    assert int(fields["wasted"]) == len(per_path) - len(asked)


def test_item_source_exception_reaches_the_loop_and_unasked_requests_are_wasted(
    app: App, monkeypatch: pytest.MonkeyPatch, upstream: Upstream, capture_events: list[str]
) -> None:
    """A generator's exception reaches the loop at its place; requests it never asked for count as wasted."""
    job = start(app, monkeypatch, "concurrency = 4\nwindow = 4")
    api = job.client.Api(upstream.url)
    tokens = ["A", "B", "C", "D", "E", "F", "G", "H"]

    class Stop(Exception):
        pass

    def stopping() -> Iterator[str]:
        yield from tokens[:3]
        raise Stop("the item source failed")

    try:
        with pytest.raises(Stop):
            job.jobs.update(stopping(), api)
    finally:
        api.close()
    fields = run_line(capture_events)
    assert fields["outcome"] == "raised"
    assert int(fields["prefetched"]) + int(fields["missed"]) == 3
    stats = upstream.stats.snapshot()
    assert stats["requests"] == 3 + int(fields["wasted"])
    assert all(count == 1 for count in stats["per_path"].values())


def test_sync_loop_called_from_a_thread_running_an_asyncio_loop(
    app: App, monkeypatch: pytest.MonkeyPatch, upstream: Upstream
) -> None:
    """A sync loop called inside a running asyncio event loop (same thread) is accelerated too."""
    job = start(app, monkeypatch)
    api = job.client.Api(upstream.url)

    async def main() -> Any:
        asyncio.get_running_loop()
        return job.jobs.update(TOKENS, api)

    try:
        result = asyncio.run(main())
    finally:
        api.close()
    assert result == [pair_data(t) for t in TOKENS]
    assert 1 < upstream.stats.snapshot()["peak_in_flight"] <= 4
    one_request_each(upstream, TOKENS)


@pytest.mark.slow
@pytest.mark.anyio
async def test_sync_loop_called_from_async_code(app: App, monkeypatch: pytest.MonkeyPatch, upstream: Upstream) -> None:
    """A sync loop called from a coroutine (asyncio or trio running in this thread) works."""
    job = start(app, monkeypatch)
    api = job.client.Api(upstream.url)
    try:
        result = job.jobs.update(TOKENS[:12], api)
    finally:
        api.close()
    assert result == [pair_data(t) for t in TOKENS[:12]]
    assert set(job.jobs.THREADS) == {threading.get_ident()}
    assert upstream.stats.snapshot()["peak_in_flight"] > 1
    one_request_each(upstream, TOKENS[:12])


# -- async loop ------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.anyio
async def test_async_loop_runs_requests_concurrently_once_each(
    app: App, monkeypatch: pytest.MonkeyPatch, upstream: Upstream, capture_events: list[str]
) -> None:
    """Async: more than one request in flight, at most concurrency, one request per item, same task."""
    job = start(app, monkeypatch)
    api = job.client.AsyncApi(upstream.url)
    try:
        result = await job.jobs.update_async(TOKENS, api)
    finally:
        await api.aclose()
    assert result == [pair_data(t) for t in TOKENS]
    assert 1 < upstream.stats.snapshot()["peak_in_flight"] <= 4
    one_request_each(upstream, TOKENS)
    assert set(job.jobs.TASKS) == {anyio.get_current_task().id}
    assert set(job.jobs.THREADS) == {threading.get_ident()}
    fields = run_line(capture_events)
    assert (fields["outcome"], fields["prefetched"], fields["missed"], fields["wasted"]) == ("ok", "24", "0", "0")


@pytest.mark.slow
@pytest.mark.anyio
async def test_async_a_generator_is_never_read_ahead(
    app: App, monkeypatch: pytest.MonkeyPatch, upstream: Upstream
) -> None:
    """Async: a generator of items is never read ahead; a list iterator is, within the bound."""
    job = start(app, monkeypatch, "concurrency = 6\nwindow = 3")
    api = job.client.AsyncApi(upstream.url)
    try:
        result = await job.jobs.update_async(job.jobs.counted(TOKENS), api)
        assert max(job.jobs.AHEAD) == 0
        upstream.stats.reset()
        assert await job.jobs.update_async(iter(list(TOKENS)), api) == result
    finally:
        await api.aclose()
    assert result == [pair_data(t) for t in TOKENS]
    assert 1 < upstream.stats.snapshot()["peak_in_flight"] <= 3
    one_request_each(upstream, TOKENS)


@pytest.mark.slow
@pytest.mark.anyio
async def test_async_timeout_raises_timeout_error_at_the_loops_call(
    app: App, monkeypatch: pytest.MonkeyPatch, upstream: Upstream
) -> None:
    """Async: a request slower than ``timeout`` is retried until the deadline, then its ReadTimeout is
    raised inside the loop's own try."""
    job = start(app, monkeypatch, "concurrency = 4\ntimeout = 0.3\nretry = { deadline = 1.0, transient = true }")
    tokens = ["A", "SLOW", "B"]
    api = job.client.AsyncApi(upstream.url)
    try:
        with anyio.fail_after(5):
            result = await job.jobs.update_async(tokens, api)
    finally:
        await api.aclose()
    assert job.jobs.ERRORS == [("SLOW", "ReadTimeout")]
    assert result == [pair_data("A"), None, pair_data("B")]


@pytest.mark.slow
@pytest.mark.anyio
async def test_async_unpredicted_call_runs_directly_and_is_counted_as_missed(
    app: App, monkeypatch: pytest.MonkeyPatch, upstream: Upstream, capture_events: list[str]
) -> None:
    """Async: a call for an item not in the source runs directly, once, and is counted as missed."""
    job = start(app, monkeypatch)
    api = job.client.AsyncApi(upstream.url)
    try:
        result = await job.jobs.update_async(TOKENS[:6], api, extra=["EXTRA"])
    finally:
        await api.aclose()
    assert result == [pair_data(t) for t in [*TOKENS[:6], "EXTRA"]]
    one_request_each(upstream, [*TOKENS[:6], "EXTRA"])
    fields = run_line(capture_events)
    assert (fields["prefetched"], fields["missed"], fields["wasted"]) == ("6", "1", "0")


# -- stepping aside -------------------------------------------------------------------------

STEP = """
    import time

    CALLS = []

    def fetch(item):
        CALLS.append(item)
        if item >= 100:  # the first item answers from a cache; the others are slow
            time.sleep(0.02)  # 4 x the probe's 5 ms: a loaded machine's late wake-up must not read it as quick (6 ms did)
        return item * 2

    def loop(items):
        return [fetch(i) for i in items]
"""


def test_cheap_calls_step_aside(app: App, monkeypatch: pytest.MonkeyPatch, capture_events: list[str]) -> None:
    """Calls cheaper than fanning out (done within the probe) run directly: same result, each once."""
    app.write("step.py", STEP)
    app.config('[[targets]]\nloop = "step:loop"\nfetch = "step:fetch"\npure = true\nitems = "items"\nconcurrency = 4\n')
    monkeypatch.setenv("ENABLE_SCHEDULER_OPTIMIZATION", "1")
    assert sched_accel.install() is True
    step = importlib.import_module("step")
    assert step.loop(list(range(50))) == [i * 2 for i in range(50)]
    assert step.CALLS == list(range(50))  # the loop's own order: all direct after the probe
    fields = run_line(capture_events)
    assert (fields["stepped_aside"], fields["prefetched"], fields["ok"]) == ("yes", "1", "50")
    assert fields["missed"] == "49"  # the direct calls: prefetched + missed = items


def test_a_fast_first_call_does_not_keep_slow_calls_sequential(
    app: App, monkeypatch: pytest.MonkeyPatch, capture_events: list[str]
) -> None:
    """A quick first call steps aside, slow direct calls after it resume prefetching; none made twice."""
    app.write("step.py", STEP)
    app.config('[[targets]]\nloop = "step:loop"\nfetch = "step:fetch"\npure = true\nitems = "items"\nconcurrency = 4\n')
    monkeypatch.setenv("ENABLE_SCHEDULER_OPTIMIZATION", "1")
    assert sched_accel.install() is True
    step = importlib.import_module("step")
    items = [0, *range(100, 140)]
    assert step.loop(items) == [i * 2 for i in items]
    assert sorted(step.CALLS) == items  # each once
    fields = run_line(capture_events)
    assert fields["stepped_aside"] == "resumed"
    assert int(fields["prefetched"]) > 20
    assert fields["wasted"] == "0"


def test_a_process_that_found_calls_slow_fans_out_at_once_next_time(
    app: App, monkeypatch: pytest.MonkeyPatch, capture_events: list[str]
) -> None:
    """After a run whose probe found slow calls, the next runs skip the probe, then probe again."""
    from sched_accel._prefetch import REPROBE_EVERY

    app.write("step.py", STEP)
    app.config('[[targets]]\nloop = "step:loop"\nfetch = "step:fetch"\npure = true\nitems = "items"\nconcurrency = 8\n')
    monkeypatch.setenv("ENABLE_SCHEDULER_OPTIMIZATION", "1")
    assert sched_accel.install() is True
    step = importlib.import_module("step")
    for _ in range(REPROBE_EVERY + 2):
        assert step.loop([100, 101, 102]) == [200, 202, 204]
    lines = [line for line in capture_events if line.startswith("sched_accel.run ")]
    skipped = ["probe=skipped" in line for line in lines]
    assert skipped == [False] + [True] * REPROBE_EVERY + [False]
    # each item called once a run (on a loaded machine the loop may reach an item before its
    # worker starts it: then the loop calls it itself, missed, still once)
    assert sorted(step.CALLS) == sorted([100, 101, 102] * (REPROBE_EVERY + 2))
    counts = [dict(re.findall(r"\b(prefetched|missed)=(\d+)", line)) for line in lines]
    assert all(int(c["prefetched"]) + int(c["missed"]) == 3 and int(c["prefetched"]) >= 1 for c in counts)


def test_an_iterable_that_may_be_consumed_by_reading_is_never_read_ahead(
    app: App, monkeypatch: pytest.MonkeyPatch, capture_events: list[str]
) -> None:
    """Items in an object whose __iter__ pops (a queue) are left to the loop alone: none is lost."""
    app.write(
        "queue_job.py",
        """
        CALLS = []

        class Queue:
            def __init__(self, items):
                self.items = list(items)

            def __iter__(self):
                while self.items:
                    yield self.items.pop(0)

        def fetch(item):
            CALLS.append(item)
            return item + 1

        def drain(queue):
            return [fetch(item) for item in queue]
        """,
    )
    app.config('[[targets]]\nloop = "queue_job:drain"\nfetch = "queue_job:fetch"\npure = true\nitems = "queue"\n')
    monkeypatch.setenv("ENABLE_SCHEDULER_OPTIMIZATION", "1")
    assert sched_accel.install() is True
    job = importlib.import_module("queue_job")
    assert job.drain(job.Queue(range(10))) == list(range(1, 11))
    assert job.CALLS == list(range(10))
    assert any("sched_accel.items_not_found" in line for line in capture_events)
