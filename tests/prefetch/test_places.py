"""A run's places (``_engine._places``): ``concurrency`` bounds the calls in flight, the loop's
own among them: 8 sent ahead plus the loop's own request made 9 at ``concurrency = 8``. And a
loop that waits too long for a place goes without one, once said, rather than hang."""

from __future__ import annotations

import importlib
import threading
import time
from typing import Any

import anyio
import pytest

import sched_accel
from sched_accel._engine import Places

from ..conftest import App, logged
from ..faultserver import FaultServer, value_of

JOB = """
    import httpx

    def refresh(base, tokens):
        with httpx.Client() as client:
            return [client.get(f"{base}/item/{token}").json()["value"] for token in tokens]

    async def arefresh(base, tokens):
        async with httpx.AsyncClient() as client:
            return [(await client.get(f"{base}/item/{token}")).json()["value"] for token in tokens]

    def fetch(base, token):
        return httpx.get(f"{base}/item/{token}").json()["value"]

    def update(base, tokens):
        return [fetch(base, token) for token in tokens]
"""
CONFIG = """
    [[targets]]
    loop = "places_job:refresh"
    items = "tokens"
    concurrency = {c}

    [[targets]]
    loop = "places_job:arefresh"
    items = "tokens"
    concurrency = {c}

    [[targets]]
    loop = "places_job:update"
    fetch = "places_job:fetch"
    pure = true
    items = "tokens"
    concurrency = {c}
"""


@pytest.fixture
def job(app: App, monkeypatch: pytest.MonkeyPatch) -> Any:
    app.write("places_job.py", JOB)
    monkeypatch.setenv("ENABLE_SCHEDULER_OPTIMIZATION", "1")
    return app


@pytest.mark.parametrize("loop", ["refresh", "arefresh", "update"])
@pytest.mark.parametrize("concurrency", [2, 4])
def test_the_loops_own_requests_count_within_concurrency(
    job: App, capture_events: list[str], loop: str, concurrency: int
) -> None:
    """HTTP level (sync, async) and function level: the upstream never sees more than
    ``concurrency`` requests at once, though the loop sends some itself (the first items, and
    every one a prediction missed: here every third token's latency differs, so the run keeps
    a mix of served and live requests)."""
    job.config(CONFIG.format(c=concurrency))
    assert sched_accel.install() is True
    module = importlib.import_module("places_job")
    tokens = [f"t{i}" for i in range(24)]
    with FaultServer(latency=0.03) as server:
        server.latencies.update({f"t{i}": 0.06 for i in range(0, 24, 3)})
        for _ in range(2):  # the second run: what the first learned is used
            call = getattr(module, loop)
            result = anyio.run(call, server.url, tokens) if loop.startswith("a") else call(server.url, tokens)
            assert result == [value_of(token) for token in tokens]
        assert server.peak <= concurrency, f"{server.peak} in flight at concurrency {concurrency}"
        assert all(server.requests[token] == 2 for token in tokens)  # each once a run
    runs = [line.fields for line in logged(capture_events, "run") if line.fields["target"] == f"places_job:{loop}"]
    assert [run["outcome"] for run in runs] == ["ok", "ok"]
    assert all(run["peak_requests"] <= concurrency for run in runs)
    assert logged(capture_events, "over_concurrency") == []


def test_a_loop_that_waits_too_long_for_a_place_goes_without_one_and_says_so_once() -> None:
    """Every place held by a call ahead that waits for the loop (a lock the loop holds): the loop
    waits ``own_wait``, then its call goes, and its later calls go at once; said once."""
    said: list[float] = []
    places = Places(1, own_wait=0.1, on_give_up=said.append)
    release = threading.Event()

    def ahead() -> None:
        with places.ahead():
            release.wait(5)  # waits for the loop, as a call ahead waiting on the app's lock would

    worker = threading.Thread(target=ahead)
    worker.start()
    time.sleep(0.02)
    started = time.monotonic()
    with places.own():
        pass
    first = time.monotonic() - started
    started = time.monotonic()
    with places.own():
        pass
    second = time.monotonic() - started
    release.set()
    worker.join(5)
    assert 0.1 <= first < 2 and second < 0.05
    assert said == [0.1] and places.gave_up


@pytest.mark.anyio
async def test_the_async_loop_waits_for_a_place_then_goes_without_one() -> None:
    said: list[float] = []
    places = Places(1, own_wait=0.1, on_give_up=said.append)
    release = anyio.Event()

    async def ahead() -> None:
        async with places.aahead():
            await release.wait()

    async with anyio.create_task_group() as group:
        group.start_soon(ahead)
        await anyio.sleep(0.02)
        started = anyio.current_time()
        async with places.aown():
            pass
        assert anyio.current_time() - started >= 0.1
        async with places.aown():  # at once, now
            pass
        release.set()
    assert said == [0.1]


@pytest.mark.anyio
async def test_a_place_is_given_back_and_taken_in_turn() -> None:
    """Within the wait, the loop gets a place as soon as a call ahead gives one back."""
    places = Places(1, own_wait=5)
    async with anyio.create_task_group() as group:

        async def ahead() -> None:
            async with places.aahead():
                await anyio.sleep(0.05)

        group.start_soon(ahead)
        await anyio.sleep(0.01)
        started = anyio.current_time()
        async with places.aown():
            waited = anyio.current_time() - started
    assert 0.02 <= waited < 1 and not places.gave_up
