"""Fault injection against a real HTTP server on 127.0.0.1: 429 storms, 503 bursts, hangs,
resets, malformed bodies, a host that goes down.

Every test runs the app's loop twice: sequentially against a healthy server (the truth),
then accelerated against a misbehaving one. The loop must return the same results, lose
no item, and the server must have answered each item successfully exactly once.
"""

from __future__ import annotations

import re
import textwrap
import time
from collections.abc import Callable, Iterator
from typing import Any

import anyio
import pytest

import sched_accel

from ..conftest import App
from ..faultserver import FaultServer, answer

pytestmark = pytest.mark.slow

CLIENTS = """
    import json
    import urllib.request

    import httpx
    import requests


    class HttpxApi:
        def __init__(self, base):
            self.http = httpx.Client(base_url=base, timeout=10)

        def get(self, key):
            response = self.http.get(f"/item/{key}")
            response.raise_for_status()
            return response.json()

        def close(self):
            self.http.close()


    class AsyncApi:
        def __init__(self, base):
            self.http = httpx.AsyncClient(base_url=base, timeout=10)

        async def get(self, key):
            response = await self.http.get(f"/item/{key}")
            response.raise_for_status()
            return response.json()

        async def aclose(self):
            await self.http.aclose()


    class RequestsApi:
        def __init__(self, base):
            self.base = base
            self.http = requests.Session()

        def get(self, key):
            response = self.http.get(f"{self.base}/item/{key}", timeout=10)
            response.raise_for_status()
            return response.json()

        def close(self):
            self.http.close()


    class UrllibApi:
        def __init__(self, base):
            self.base = base

        def get(self, key):
            with urllib.request.urlopen(f"{self.base}/item/{key}", timeout=10) as response:
                return json.loads(response.read())

        def close(self):
            pass
"""
JOBS = """
    def collect(keys, api):
        out = []
        for key in keys:
            try:
                out.append(api.get(key))
            except Exception as exc:
                out.append(["error", key, type(exc).__name__])
        return out


    async def collect_async(keys, api):
        out = []
        for key in keys:
            try:
                out.append(await api.get(key))
            except Exception as exc:
                out.append(["error", key, type(exc).__name__])
        return out
"""
TARGETS = """
    {top}

    [[targets]]
    loop = "jobs:collect"
    fetch = "clients:{sync_api}.get"
    pure = true  # the fakes record their calls: a write, known to be harmless
    items = "keys"
    concurrency = {concurrency}
    {options}

    [[targets]]
    loop = "jobs:collect_async"
    fetch = "clients:AsyncApi.get"
    pure = true  # the fakes record their calls: a write, known to be harmless
    items = "keys"
    concurrency = {concurrency}
    {options}
"""

KEYS = [f"K{i:02d}" for i in range(40)]
EXPECTED = [answer(key) for key in KEYS]
SYNC_APIS = ["HttpxApi", "RequestsApi", "UrllibApi"]


def install(
    app: App,
    monkeypatch: pytest.MonkeyPatch,
    *,
    sync_api: str = "HttpxApi",
    top: str = "",
    options: str = "",
    concurrency: int = 8,
) -> Any:
    app.write("clients.py", CLIENTS)
    app.write("jobs.py", JOBS)
    app.config(
        TARGETS.format(
            top=textwrap.dedent(top).strip(),
            sync_api=sync_api,
            options=textwrap.dedent(options).strip().replace("\n", "\n    "),
            concurrency=concurrency,
        )
    )
    monkeypatch.setenv("ENABLE_SCHEDULER_OPTIMIZATION", "true")
    assert sched_accel.install() is True
    import clients
    import jobs

    return jobs, clients


def run_line(captured: list[str]) -> dict[str, str]:
    [line] = [line for line in captured if line.startswith("sched_accel.run ")]
    return dict(re.findall(r"(\w+)=(\S+)", line.split(" - ", 1)[0]))


def run_sync(jobs: Any, clients: Any, api_name: str, url: str) -> list[Any]:
    api = getattr(clients, api_name)(url)
    try:
        return jobs.collect(KEYS, api)  # type: ignore[no-any-return]
    finally:
        api.close()


async def run_async(jobs: Any, clients: Any, url: str) -> list[Any]:
    api = clients.AsyncApi(url)
    try:
        with anyio.fail_after(60):
            return await jobs.collect_async(KEYS, api)  # type: ignore[no-any-return]
    finally:
        await api.aclose()


def nothing_lost(server: FaultServer, fields: dict[str, str]) -> None:
    """Each item was answered successfully exactly once, and the run says nothing was lost."""
    assert server.ok == {key: 1 for key in KEYS}
    assert (fields["outcome"], fields["failed"], fields["lost"], fields["gave_up"]) == ("ok", "0", "0", "0")


@pytest.fixture
def sequential_truth() -> Iterator[Callable[[], None]]:
    """The loop's results without sched_accel against a healthy server are EXPECTED (checked once)."""

    def check() -> None:
        assert [answer(key) for key in KEYS] == EXPECTED

    yield check


# -- 429 storms -----------------------------------------------------------------------------------


@pytest.mark.parametrize("retry_after", ["fraction", "int", "date", "x-ratelimit", "ratelimit"])
@pytest.mark.parametrize("sync_api", SYNC_APIS)
def test_429_storm_loses_nothing(
    app: App, monkeypatch: pytest.MonkeyPatch, capture_events: list[str], sync_api: str, retry_after: str
) -> None:
    """A server allowing 40 requests/s (burst 4) to a loop at concurrency 8, no host limit configured:
    every 429 is retried after its Retry-After (fractional, whole seconds, HTTP-date), or without one
    after the reset its rate-limit fields give (X-RateLimit-Reset, RateLimit), nothing is lost."""
    jobs, clients = install(app, monkeypatch, sync_api=sync_api)
    with FaultServer(per_second=40, burst=4, retry_after=retry_after) as server:
        assert run_sync(jobs, clients, sync_api, server.url) == EXPECTED
    fields = run_line(capture_events)
    nothing_lost(server, fields)
    assert server.status[429] >= 1 and int(fields["http_429"]) == server.status[429]
    assert int(fields["retried"]) >= 1


def test_a_host_that_says_its_rate_is_paced_to_it(
    app: App, monkeypatch: pytest.MonkeyPatch, capture_events: list[str]
) -> None:
    """No limit declared, but every answer carries RateLimit-Policy (40 a second): once the
    first answers are in, requests are paced to that rate. A host that says nothing is
    paced too, at the rate learned from its refusals (``_learn``), after a few more 429s."""
    jobs, clients = install(app, monkeypatch, sync_api="HttpxApi")
    with FaultServer(per_second=40, burst=4) as silent:  # first: the process has learned nothing yet
        assert run_sync(jobs, clients, "HttpxApi", silent.url) == EXPECTED
    capture_events.clear()
    with FaultServer(per_second=40, burst=4, advertise=True) as server:
        assert run_sync(jobs, clients, "HttpxApi", server.url) == EXPECTED
    nothing_lost(server, run_line(capture_events))
    assert silent.status[429] <= 24  # the first wave, and the learner's cuts and probes (measured 7-18)
    assert server.status[429] <= 8  # only those sent before an answer told the rate
    capture_events.clear()
    with FaultServer(per_second=40, burst=4) as again:  # the same host: its rate is kept in the process
        assert run_sync(jobs, clients, "HttpxApi", again.url) == EXPECTED
    assert again.status[429] <= 1


def test_the_next_run_starts_at_the_rate_the_host_told_the_last(
    app: App, monkeypatch: pytest.MonkeyPatch, capture_events: list[str]
) -> None:
    """A cron job is a new process each time: the rate its host's answers gave the last run is
    kept owner-only (``<app folder>/hosts.json``), and the next process starts at it: its first
    requests are not refused, though this time the host says nothing."""
    import os
    import stat

    jobs, clients = install(app, monkeypatch, sync_api="HttpxApi")
    with FaultServer(per_second=40, burst=4, advertise=True) as server:
        assert run_sync(jobs, clients, "HttpxApi", server.url) == EXPECTED
    saved = app.state(here=True) / "hosts.json"  # in the app's folder of the state folder (conftest)
    assert stat.S_IMODE(os.stat(saved).st_mode) == 0o600
    sched_accel.uninstall()  # the process ends; the next one installs anew
    assert sched_accel.install() is True
    capture_events.clear()
    with FaultServer(per_second=40, burst=4) as silent:
        assert run_sync(jobs, clients, "HttpxApi", silent.url) == EXPECTED
    nothing_lost(silent, run_line(capture_events))
    assert silent.status[429] <= 1


def test_a_rate_learned_from_refusals_is_kept_for_the_next_run(
    app: App, monkeypatch: pytest.MonkeyPatch, capture_events: list[str]
) -> None:
    """A host that says nothing: the rate learned from its 429s is kept (``how: learned``), and
    the next process starts a little under it, held there: (almost) no refusal, nothing lost."""
    import json

    jobs, clients = install(app, monkeypatch, sync_api="HttpxApi")
    with FaultServer(per_second=40, burst=4) as server:
        assert run_sync(jobs, clients, "HttpxApi", server.url) == EXPECTED
    kept = json.loads((app.state(here=True) / "hosts.json").read_text())["hosts"]["127.0.0.1"]
    assert kept["how"] == "learned" and 20 <= kept["per_second"] <= 60
    sched_accel.uninstall()
    assert sched_accel.install() is True
    capture_events.clear()
    with FaultServer(per_second=40, burst=4) as again:
        assert run_sync(jobs, clients, "HttpxApi", again.url) == EXPECTED
    nothing_lost(again, run_line(capture_events))
    assert again.status[429] <= 2


@pytest.mark.anyio
@pytest.mark.parametrize("retry_after", ["fraction", "int"])
async def test_async_429_storm_loses_nothing(
    app: App, monkeypatch: pytest.MonkeyPatch, capture_events: list[str], retry_after: str
) -> None:
    """The same storm through httpx's AsyncClient, on asyncio and trio."""
    jobs, clients = install(app, monkeypatch)
    with FaultServer(per_second=40, burst=4, retry_after=retry_after) as server:
        assert await run_async(jobs, clients, server.url) == EXPECTED
    fields = run_line(capture_events)
    nothing_lost(server, fields)
    assert server.status[429] >= 1


@pytest.mark.parametrize("sync_api", SYNC_APIS)
def test_configured_host_limit_barely_trips_the_upstream(
    app: App, monkeypatch: pytest.MonkeyPatch, capture_events: list[str], sync_api: str
) -> None:
    """With the host's limit in the config, the requests are paced to it: (almost) no 429 at all,
    and the run takes about (N - burst) / rate."""
    top = '[hosts."127.0.0.1"]\nper_second = 50\nburst = 4'
    jobs, clients = install(app, monkeypatch, sync_api=sync_api, top=top)
    with FaultServer(per_second=50, burst=4, latency=0.02) as server:
        started = time.perf_counter()
        assert run_sync(jobs, clients, sync_api, server.url) == EXPECTED
        seconds = time.perf_counter() - started
    fields = run_line(capture_events)
    nothing_lost(server, fields)
    assert server.status[429] <= 1
    assert seconds >= (len(KEYS) - 4) / 50 * 0.95
    assert float(fields["limit_wait"]) > 0


# -- 503 bursts, resets, truncated and malformed bodies, hangs -----------------------------------

FAULTS = {
    "503": {"K03": ["503", "503"], "K10": ["503"], "K11": ["503"], "K12": ["503", "503", "503"]},
    "reset": {"K05": ["reset"], "K20": ["reset", "reset"]},
    "truncated": {"K07": ["truncated"], "K30": ["truncated"]},
    "mixed": {"K01": ["503", "reset"], "K15": ["truncated", "503"], "K39": ["reset"]},
}


@pytest.mark.parametrize("kind", sorted(FAULTS))
@pytest.mark.parametrize("sync_api", SYNC_APIS)
def test_transient_failures_are_retried(
    app: App, monkeypatch: pytest.MonkeyPatch, capture_events: list[str], sync_api: str, kind: str
) -> None:
    """503s without Retry-After, connection resets and truncated bodies are transient: retried when asked, nothing lost."""
    jobs, clients = install(app, monkeypatch, sync_api=sync_api, top="[retry]\ntransient = true")
    faults = FAULTS[kind]
    with FaultServer(faults=faults) as server:
        assert run_sync(jobs, clients, sync_api, server.url) == EXPECTED
    fields = run_line(capture_events)
    nothing_lost(server, fields)
    assert int(fields["retried"]) == len(faults)
    assert int(fields["retries"]) == sum(len(v) for v in faults.values())


@pytest.mark.anyio
@pytest.mark.parametrize("kind", sorted(FAULTS))
async def test_async_transient_failures_are_retried(
    app: App, monkeypatch: pytest.MonkeyPatch, capture_events: list[str], kind: str
) -> None:
    jobs, clients = install(app, monkeypatch, top="[retry]\ntransient = true")
    with FaultServer(faults=FAULTS[kind]) as server:
        assert await run_async(jobs, clients, server.url) == EXPECTED
    nothing_lost(server, run_line(capture_events))


@pytest.mark.parametrize("sync_api", SYNC_APIS)
def test_hanging_response_is_cut_by_the_timeout_and_retried(
    app: App, monkeypatch: pytest.MonkeyPatch, capture_events: list[str], sync_api: str
) -> None:
    """A response that never comes is cut at the target's timeout (the request's own timeout is
    capped to it) and the item is retried: the loop gets the answer, not an error."""
    # timeout 0.6 s: at 0.3, a loaded machine's ordinary answers timed out too, five in a row
    # opened the host's circuit, and a hung item's retry was refused
    jobs, clients = install(
        app, monkeypatch, sync_api=sync_api, options="timeout = 0.6", top="[retry]\ntransient = true"
    )
    with FaultServer(faults={"K04": ["hang"], "K22": ["hang", "hang"]}, hang=4.0) as server:
        started = time.perf_counter()
        assert run_sync(jobs, clients, sync_api, server.url) == EXPECTED
        seconds = time.perf_counter() - started
    fields = run_line(capture_events)
    nothing_lost(server, fields)
    assert int(fields["timeouts"]) == 3
    assert seconds < 4.0  # never waited for a hung answer


@pytest.mark.anyio
async def test_async_hanging_response_is_cut_by_the_timeout_and_retried(
    app: App, monkeypatch: pytest.MonkeyPatch, capture_events: list[str]
) -> None:
    jobs, clients = install(app, monkeypatch, options="timeout = 0.6", top="[retry]\ntransient = true")
    with FaultServer(faults={"K04": ["hang"], "K22": ["hang", "hang"]}, hang=4.0) as server:
        assert await run_async(jobs, clients, server.url) == EXPECTED
    fields = run_line(capture_events)
    nothing_lost(server, fields)
    assert int(fields["timeouts"]) == 3


def test_malformed_body_is_permanent_unless_configured(
    app: App, monkeypatch: pytest.MonkeyPatch, capture_events: list[str]
) -> None:
    """A 200 whose body is not JSON is the app's error, raised where the loop calls, as sequentially;
    with ``retry.on = ["json:JSONDecodeError"]`` it is retried instead."""
    jobs, clients = install(app, monkeypatch)
    with FaultServer(faults={"K08": ["garbage"]}) as server:
        got = run_sync(jobs, clients, "HttpxApi", server.url)
    assert got[8] == ["error", "K08", "JSONDecodeError"]
    assert got[:8] + got[9:] == EXPECTED[:8] + EXPECTED[9:]
    assert server.requests["K08"] == 1  # not retried

    sched_accel.uninstall()
    capture_events.clear()
    jobs, clients = install(app, monkeypatch, top='[retry]\non = ["json:JSONDecodeError"]')
    with FaultServer(faults={"K08": ["garbage"]}) as server:
        assert run_sync(jobs, clients, "HttpxApi", server.url) == EXPECTED
    nothing_lost(server, run_line(capture_events))


def test_message_patterns_make_an_exception_retryable(
    app: App, monkeypatch: pytest.MonkeyPatch, capture_events: list[str]
) -> None:
    """``retry.patterns`` matches an exception's message: the app's own error about a proxy page."""
    jobs, clients = install(app, monkeypatch, top='[retry]\npatterns = ["Expecting value"]')
    with FaultServer(faults={"K08": ["garbage"], "K09": ["garbage"]}) as server:
        assert run_sync(jobs, clients, "HttpxApi", server.url) == EXPECTED
    nothing_lost(server, run_line(capture_events))


def test_permanent_http_errors_are_not_retried(
    app: App, monkeypatch: pytest.MonkeyPatch, capture_events: list[str]
) -> None:
    """A 500 is the server's answer, not a hiccup: raised at the loop's call site after one request."""
    jobs, clients = install(app, monkeypatch)
    with FaultServer(faults={"K02": ["500"]}) as server:
        got = run_sync(jobs, clients, "HttpxApi", server.url)
    assert got[2] == ["error", "K02", "HTTPStatusError"]
    assert server.requests["K02"] == 1
    assert run_line(capture_events)["retried"] == "0"


def test_retry_gives_up_at_the_deadline_with_the_last_exception(
    app: App, monkeypatch: pytest.MonkeyPatch, capture_events: list[str]
) -> None:
    """An item still rate-limited at the deadline gets its last exception at the loop's call site
    (the 429 as raise_for_status made it), counted as lost, and logged."""
    jobs, clients = install(app, monkeypatch, top="[retry]\ndeadline = 0.5", concurrency=2)
    # latency: the two requests in flight together (a 429 is retried only in a run that was more
    # than sequential; on a loaded machine, answered at once, they went one after the other)
    with FaultServer(per_second=0.5, burst=1, retry_after="int", latency=0.2) as server:
        api = clients.HttpxApi(server.url)
        try:
            got = jobs.collect(KEYS[:2], api)
        finally:
            api.close()
    # The one token goes to whichever request reaches the server first (both are in flight).
    assert got in (
        [answer("K00"), ["error", "K01", "HTTPStatusError"]],
        [["error", "K00", "HTTPStatusError"], answer("K01")],
    )
    fields = run_line(capture_events)
    assert (fields["gave_up"], fields["lost"], fields["http_429"]) == ("1", "1", "1")
    assert any(line.startswith("sched_accel.retry_gave_up ") for line in capture_events)


# -- the circuit ----------------------------------------------------------------------------------


def test_circuit_opens_on_a_down_host_and_closes_after_a_trial(
    app: App, monkeypatch: pytest.MonkeyPatch, capture_events: list[str]
) -> None:
    """A host answering 503 to everything opens its circuit after 3 failures: the rest of the items
    fail fast as they would without us (no retries); after the cool-down one trial request closes it."""
    top = '[hosts."127.0.0.1"]\nbreaker_failures = 3\nbreaker_cooldown = 0.3'
    jobs, clients = install(app, monkeypatch, top=top, concurrency=1)
    with FaultServer() as server:
        server.down = True
        got = run_sync(jobs, clients, "HttpxApi", server.url)
        assert all(entry[0] == "error" for entry in got)
        # 3 failures open it; the items after that are sent once, straight through.
        assert sum(server.requests.values()) < len(KEYS) + 10
        assert any(line.startswith("sched_accel.circuit_open ") for line in capture_events)
        server.down = False
        server.reset_counts()
        time.sleep(0.35)
        capture_events.clear()
        assert run_sync(jobs, clients, "HttpxApi", server.url) == EXPECTED
    assert any(line.startswith("sched_accel.circuit_half_open ") for line in capture_events)
    assert any(line.startswith("sched_accel.circuit_closed ") for line in capture_events)


def test_requests_outside_a_run_are_untouched(app: App, monkeypatch: pytest.MonkeyPatch) -> None:
    """The app's other requests (not per-item calls of a running loop) see no limit and no retry."""
    top = '[hosts."127.0.0.1"]\nper_second = 1\nburst = 1'
    jobs, clients = install(app, monkeypatch, top=top)
    with FaultServer(faults={"K00": ["503"]}) as server:
        api = clients.HttpxApi(server.url)
        try:
            started = time.perf_counter()
            with pytest.raises(Exception, match="503"):
                api.get("K00")
            assert [api.get(key) for key in KEYS[1:6]] == EXPECTED[1:6]
            assert time.perf_counter() - started < 1.0
        finally:
            api.close()
    assert server.requests["K00"] == 1


# -- statistics in `sched-accel status` -------------------------------------------------------------


def test_status_shows_the_last_runs_statistics(app: App, monkeypatch: pytest.MonkeyPatch) -> None:
    """A job run in its own process (started by the .pth hook) leaves its run's statistics for
    ``sched-accel status``: ok, retried, lost, 429s, the concurrency reached, time waiting on limits."""
    install(app, monkeypatch, sync_api="UrllibApi", top='[hosts."127.0.0.1"]\nconcurrency = 4')
    sched_accel.uninstall()
    env = {"SCHED_ACCEL_CONFIG": str(app.root / "sched_accel.toml")}
    with FaultServer(per_second=40, burst=4) as server:
        script = f"import clients, jobs; print(len(jobs.collect({KEYS!r}, clients.UrllibApi({server.url!r}))))"
        job = app.run("-c", script, env={**env, "ENABLE_SCHEDULER_OPTIMIZATION": "true"})
    assert job.returncode == 0, job.stderr
    assert "sched_accel.run target=jobs:collect" in job.stderr
    status = app.run("-m", "sched_accel", "status", env=env)
    assert status.returncode == 0, status.stderr
    [last] = re.findall(r"jobs:collect: on .*\n    (last run: .*)", status.stdout)
    fields = dict(re.findall(r"(\w+)=(\S+)", last))
    assert (fields["outcome"], fields["ok"], fields["lost"]) == ("ok", "40", "0")
    assert int(fields["http_429"]) == server.status[429] > 0
    assert 1 < int(fields["peak_requests"]) <= 4
    assert "host 127.0.0.1: requests=" in status.stdout and "circuit=closed" in status.stdout
    assert "jobs:collect_async: on" in status.stdout and "last run: none recorded yet" in status.stdout
    assert "host 127.0.0.1: concurrency 4, burst 1" in status.stdout


def test_an_undeclared_host_answering_429_gets_one_hint(
    app: App, monkeypatch: pytest.MonkeyPatch, capture_events: list[str]
) -> None:
    """429s from a host whose limit is not declared: one line says what to declare, once per process."""
    jobs, clients = install(app, monkeypatch)
    with FaultServer(per_second=40, burst=4) as server:
        for _ in range(2):
            assert run_sync(jobs, clients, "HttpxApi", server.url) == EXPECTED
    hints = [line for line in capture_events if line.startswith("sched_accel.host_limit_undeclared ")]
    assert len(hints) == 1 and 'add [hosts."127.0.0.1"]' in hints[0]
