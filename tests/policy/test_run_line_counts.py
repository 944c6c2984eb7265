"""Counts that hold (issue 23 item 5): each figure of the run line pinned against what an
independent counter saw: the test upstream's own (a real server on 127.0.0.1), and the loop's
own results.

One run of 40 items at concurrency 8 through httpx, against a server that refuses above its
rate (429 with Retry-After), answers 503 without Retry-After to some keys' first attempts,
resets one, and hangs one past the target's timeout; ``[retry] transient = true`` so that each
kind of failure is retried and counted.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

import sched_accel
from sched_accel._state import DISABLED_ENV

from ..conftest import App, logged
from ..faultserver import FaultServer, answer
from ..test_faster import run_lines
from .test_policy_faults import KEYS, install, run_line, run_sync

FAULTS = {"K03": ["503"], "K11": ["503", "503"], "K20": ["reset"], "K30": ["hang"]}


@pytest.mark.slow
def test_each_field_of_the_run_line_is_what_the_upstream_and_the_loop_saw(
    app: App, monkeypatch: pytest.MonkeyPatch, capture_events: list[str]
) -> None:
    jobs, clients = install(app, monkeypatch, top="[retry]\ntransient = true\ninitial = 0.01", options="timeout = 0.5")
    with FaultServer(latency=0.01, per_second=200, burst=8, retry_after="fraction", faults=FAULTS, hang=2.0) as server:
        got = run_sync(jobs, clients, "HttpxApi", server.url)
    [run] = logged(capture_events, "run")  # the event's own values, as logged: numbers are numbers
    fields = run.fields
    assert got == [answer(key) for key in KEYS]  # every item served in the end
    seen = sum(server.requests.values())  # the requests that reached the upstream
    assert fields["items"] == fields["ok"] == len(KEYS) and fields["failed"] == 0
    assert fields["prefetched"] + fields["missed"] == len(KEYS)
    assert fields["requests"] == seen, (fields, server.requests)
    assert fields["http_429"] == server.status[429] >= 1
    assert fields["http_503"] == server.status[503] == 3
    assert fields["timeouts"] == 1  # K30's hang, cut by the timeout (the server still counts it)
    # Each request beyond one per item is a retry; items asked more than once are those retried.
    assert fields["retries"] == seen - len(KEYS)
    assert fields["retried"] == sum(1 for count in server.requests.values() if count > 1)
    assert (fields["gave_up"], fields["lost"], fields["wasted"]) == (0, 0, 0)
    assert 1 < fields["peak_requests"] <= 8 and server.peak <= 8
    assert run.level == "INFO" and f"items={len(KEYS)} " in run  # and a person reads the same


# -- limit_wait: seconds the run's requests and calls waited for limits, summed over them ----------

PACED_N, RATE, BURST, CONCURRENCY = 20, 40.0, 2, 4


@pytest.mark.parametrize(
    ("sync_api", "where"),
    [("HttpxApi", "host"), ("RequestsApi", "host"), ("HttpxApi", "target")],
    ids=["host-httpx-wire", "host-requests-admission", "target-calls"],
)
@pytest.mark.slow
def test_limit_wait_is_the_waiting_a_declared_rate_imposed(
    app: App, monkeypatch: pytest.MonkeyPatch, capture_events: list[str], sync_api: str, where: str
) -> None:
    """limit_wait sums each request's (or call's) wait for its turn, across the requests waiting
    together: 20 requests at a declared 40/s (burst 2) cannot all start before (20 - 2) / 40 s,
    and someone waits for the whole of that; no more than the run's workers and the loop's own
    thread can wait at once, and none of them waits after the upstream saw the last request."""
    limit = f"per_second = {RATE}\nburst = {BURST}"
    if where == "host":
        jobs, clients = install(
            app, monkeypatch, sync_api=sync_api, top=f'[hosts."127.0.0.1"]\n{limit}', concurrency=CONCURRENCY
        )
    else:
        jobs, clients = install(app, monkeypatch, sync_api=sync_api, options=limit, concurrency=CONCURRENCY)
    keys = KEYS[:PACED_N]
    with FaultServer(latency=0.0) as server:
        api = getattr(clients, sync_api)(server.url)
        started = time.monotonic()
        try:
            assert jobs.collect(keys, api) == [answer(key) for key in keys]
        finally:
            api.close()
        last = max(server.arrived)
    fields = run_line(capture_events)
    waited = float(fields["limit_wait"])
    assert int(fields["requests"]) == sum(server.requests.values()) == PACED_N
    assert last - min(server.arrived) >= (PACED_N - BURST) / RATE - 0.05  # the upstream saw the pace
    assert waited >= (PACED_N - BURST) / RATE, fields
    assert waited <= (CONCURRENCY + 1) * (last - started), (fields, last - started)


def test_limit_wait_is_zero_and_seconds_the_runs_own_without_a_limit(
    app: App, monkeypatch: pytest.MonkeyPatch, capture_events: list[str]
) -> None:
    """No limit declared, none told, no refusal: nothing waited (limit_wait=0.0). ``seconds``
    is the run's wall time: no more than the caller measured around the loop, and no less
    than the upstream's latency times the requests over the most it saw at once."""
    jobs, clients = install(app, monkeypatch, concurrency=CONCURRENCY)
    keys = KEYS[:PACED_N]
    with FaultServer(latency=0.03) as server:
        api = clients.HttpxApi(server.url)
        started = time.perf_counter()
        try:
            assert jobs.collect(keys, api) == [answer(key) for key in keys]
        finally:
            wall = time.perf_counter() - started
            api.close()
    fields = run_line(capture_events)
    assert fields["limit_wait"] == "0.0" and fields["http_429"] == "0"
    assert sum(server.requests.values()) / server.peak * 0.03 <= float(fields["seconds"]) <= wall + 0.001
    assert 1 < server.peak <= CONCURRENCY


@pytest.mark.parametrize("where", ["wire-token", "target-admission"])
def test_a_turn_taken_at_once_is_no_wait_however_long_the_thread_took(
    app: App, monkeypatch: pytest.MonkeyPatch, capture_events: list[str], where: str
) -> None:
    """A thread that loses the CPU while it takes a turn that is free (a busy machine) did not
    wait for a limit: limit_wait stays 0.0. Each turn is slowed by 2 ms here, where a loaded
    machine takes a thread off the CPU: httpx's token at the wire with no rate at all (it
    counted 43 ms for 20 requests), and a target's rate far above what 20 calls need."""
    from sched_accel._policy import _line

    seam = "take_token" if where == "wire-token" else "admit_now"
    original = getattr(_line.Line, seam)

    def preempted(self: Any, *args: Any) -> Any:
        time.sleep(0.002)
        return original(self, *args)

    monkeypatch.setattr(_line.Line, seam, preempted)
    options = "per_second = 1000\nburst = 100" if where == "target-admission" else ""
    jobs, clients = install(app, monkeypatch, options=options, concurrency=CONCURRENCY)
    keys = KEYS[:PACED_N]
    with FaultServer(latency=0.01) as server:
        api = clients.HttpxApi(server.url)
        try:
            assert jobs.collect(keys, api) == [answer(key) for key in keys]
        finally:
            api.close()
    fields = run_line(capture_events)
    assert fields["limit_wait"] == "0.0", fields
    assert int(fields["requests"]) == sum(server.requests.values()) == PACED_N


# -- Is it faster? speedup and effective_concurrency -----------------------------------------------


@pytest.mark.slow
def test_speedup_and_effective_concurrency_hold_against_the_upstreams_latency(
    app: App, monkeypatch: pytest.MonkeyPatch, capture_events: list[str]
) -> None:
    """The same 16 items switched off (kept as the baseline), then accelerated, against an
    upstream that holds each request 50 ms. The switched-off run took at least its requests
    times 50 ms, the accelerated one at least its requests times 50 ms over the most the
    upstream held at once, and each no more than the caller measured: ``speedup`` (the first
    over the second, per item) and ``effective_concurrency`` (the run's requests at the time one
    takes alone, over its seconds) are bounded by those."""
    latency, keys = 0.05, KEYS[:16]
    jobs, clients = install(app, monkeypatch, concurrency=8)
    with FaultServer(latency=latency) as server:
        api = clients.HttpxApi(server.url)
        try:
            monkeypatch.setenv(DISABLED_ENV, "jobs:collect")
            sched_accel.reset()
            assert sched_accel.install() is True
            started = time.perf_counter()
            assert jobs.collect(keys, api) == [answer(key) for key in keys]
            off_wall, off_requests = time.perf_counter() - started, sum(server.requests.values())
            monkeypatch.delenv(DISABLED_ENV)
            sched_accel.reset()
            assert sched_accel.install() is True
            server.reset_counts()
            started = time.perf_counter()
            assert jobs.collect(keys, api) == [answer(key) for key in keys]
            on_wall, on_requests = time.perf_counter() - started, sum(server.requests.values())
        finally:
            api.close()
    off, on = run_lines(capture_events, "jobs:collect")
    assert (off["outcome"], off["items"], on["outcome"], on["items"]) == ("off", 16, "ok", 16)
    assert off_requests == on_requests == on["requests"] == len(keys)
    assert off_requests * latency <= off["seconds"] <= off_wall + 0.001
    assert on_requests * latency / server.peak <= on["seconds"] <= on_wall + 0.001
    speedup, effective = float(on["speedup"]), float(on["effective_concurrency"])
    assert off_requests * latency / on_wall - 0.01 <= speedup <= off_wall / (on_requests * latency / server.peak) + 0.01
    # Per item, 16 each: the first run's seconds over the second's (as logged: to the millisecond).
    off_seconds, on_seconds = float(off["seconds"]), float(on["seconds"])
    low, high = (off_seconds - 5e-4) / (on_seconds + 5e-4), (off_seconds + 5e-4) / (on_seconds - 5e-4)
    assert low - 0.005 <= speedup <= high + 0.005
    assert effective >= on_requests * latency / on_wall - 0.01, (on, on_wall)
    assert effective > 2  # 8 at once: far from one at a time
