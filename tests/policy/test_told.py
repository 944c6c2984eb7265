"""What a host's answers tell (issue 12, item 7), against a real HTTP server on 127.0.0.1.

No limit is declared: the patched loop learns the host's rate from the rate-limit fields
of its answers, in each form a server sends them, and paces to it; a reset is read as
seconds or as a Unix time, measured against the answer's own ``Date`` (a server clock an
hour off is corrected); a host that halves its limit mid-run is followed; and the rates
kept for the next run (``<app folder>/hosts.json``) are used only when owner-only.
"""

from __future__ import annotations

import json
import os
import stat
import time
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from sched_accel import _activation
from sched_accel._policy._headers import budget
from sched_accel._policy._retry import refusal_wait
from sched_accel._state import LearnedRates

from ..conftest import App
from ..faultserver import FaultServer, answer
from .test_policy_faults import install, run_line

pytestmark = pytest.mark.slow

HOST = "127.0.0.1"
RATE = 50.0  # the server's limit, requests a second
BURST = 4
KEYS = [f"T{i:02d}" for i in range(30)]
EXPECTED = [answer(key) for key in KEYS]
CONCURRENCY = 8
HOUR = 3600.0


def server(**options: Any) -> FaultServer:
    """A server limiting to RATE (burst BURST), answering in 5 ms; ``options`` override."""
    return FaultServer(**{"per_second": RATE, "burst": BURST, "latency": 0.005, **options})


def collect(jobs: Any, clients: Any, url: str, keys: list[str] = KEYS, api: str = "HttpxApi") -> list[Any]:
    client = getattr(clients, api)(url)
    try:
        return jobs.collect(keys, client)  # type: ignore[no-any-return]
    finally:
        client.close()


def told() -> float | None:
    """The rate the host's answers told this process (kept for the next run), if any."""
    hosts = _activation._state.hosts
    assert hosts is not None
    return hosts.get(HOST).limiter.told


def nothing_lost(upstream: FaultServer, fields: dict[str, str], keys: list[str] = KEYS) -> None:
    assert upstream.ok == {key: 1 for key in keys}
    assert (fields["outcome"], fields["failed"], fields["lost"], fields["gave_up"]) == ("ok", "0", "0", "0")


def paced(upstream: FaultServer, rate: float, skip: int) -> None:
    """The requests after the first ``skip`` arrived no faster than ``rate`` allows (10% slack,
    and a bucket's burst: tokens the client held when the rate changed go at once; on a loaded
    machine the requests in flight at the change are more than ``skip`` counts). Unpaced, at the
    server's old rate, they would take half the time."""
    arrived = upstream.arrived[skip:]
    assert len(arrived) >= 10
    assert arrived[-1] - arrived[0] >= (len(arrived) - 1 - BURST) / rate * 0.9


def a_refusal(upstream: FaultServer) -> httpx.Response:
    """A real 429 of the server, sent outside any run (requests outside a run are not limited)."""
    with httpx.Client(base_url=upstream.url, timeout=5) as client:
        for _ in range(4 * BURST):
            response = client.get("/item/probe")
            if response.status_code == 429:
                return response
    raise AssertionError("the server never refused")


# -- (a) each form a server says its rate in -----------------------------------------------------

#: The forms whose quota comes with its window: a rate can be read (``window=2``: 100 per 2 s).
WINDOWED = [
    pytest.param({"form": "ratelimit", "window": 2.0}, id="ietf-08+"),
    pytest.param({"form": "ratelimit-07", "window": 2.0}, id="ietf-07"),
    pytest.param({"form": "ratelimit-06", "window": 2.0}, id="ietf-06-separate"),
    pytest.param({"form": "x-ratelimit-envoy"}, id="x-ratelimit-window-seconds"),
    pytest.param({"form": "x-ratelimit-envoy", "reset": "epoch"}, id="x-ratelimit-window-epoch"),
]


#: Every form through httpx; through requests and urllib (their own kinds of headers), two.
FORMS_AND_CLIENTS = [pytest.param(p.values[0], "HttpxApi", id=f"HttpxApi-{p.id}") for p in WINDOWED] + [
    pytest.param(p.values[0], api, id=f"{api}-{p.id}") for api in ("RequestsApi", "UrllibApi") for p in WINDOWED[2::2]
]


@pytest.mark.parametrize(("form", "api"), FORMS_AND_CLIENTS)
def test_each_form_tells_the_rate_and_the_loop_is_paced_to_it(
    app: App, monkeypatch: pytest.MonkeyPatch, capture_events: list[str], form: dict[str, Any], api: str
) -> None:
    """The IETF draft-08+ fields, draft-07's, drafts 00-06's separate ones, X-RateLimit-* with a
    window (reset in seconds or a Unix time): the host's rate is learned as quota / window, the
    requests after the first answers arrive at it, and only the first wave is refused."""
    jobs, clients = install(app, monkeypatch, sync_api=api, concurrency=CONCURRENCY)
    with server(advertise=True, **form) as upstream:
        assert collect(jobs, clients, upstream.url, api=api) == EXPECTED
    nothing_lost(upstream, run_line(capture_events))
    assert told() == RATE
    assert upstream.status[429] <= CONCURRENCY  # only requests sent before an answer told the rate
    paced(upstream, RATE, skip=2 * CONCURRENCY)


@pytest.mark.anyio
@pytest.mark.parametrize("form", WINDOWED[:1] + WINDOWED[-1:])
async def test_each_form_tells_the_rate_to_an_async_loop(
    app: App, monkeypatch: pytest.MonkeyPatch, capture_events: list[str], form: dict[str, Any]
) -> None:
    """The same through httpx's AsyncClient, on asyncio and trio."""
    jobs, clients = install(app, monkeypatch, concurrency=CONCURRENCY)
    with server(advertise=True, **form) as upstream:
        api = clients.AsyncApi(upstream.url)
        try:
            with anyio.fail_after(20):
                assert await jobs.collect_async(KEYS, api) == EXPECTED
        finally:
            await api.aclose()
    nothing_lost(upstream, run_line(capture_events))
    assert told() == RATE
    assert upstream.status[429] <= CONCURRENCY
    paced(upstream, RATE, skip=2 * CONCURRENCY)


@pytest.mark.parametrize("reset", ["seconds", "epoch"])
def test_github_style_fields_give_no_rate_but_each_refusal_waits_for_the_reset(
    app: App, monkeypatch: pytest.MonkeyPatch, capture_events: list[str], reset: str
) -> None:
    """GitHub's X-RateLimit-Limit/Remaining/Reset say no window: no rate is learned (README:
    the no-limit behaviour), but a 429 carrying only them (no Retry-After) waits for the spent
    quota's reset, read as seconds or as a Unix time alike (1 to 2 s, not 0 nor hours)."""
    with server(advertise=True, form="x-ratelimit", reset=reset, retry_after="none") as upstream:
        wait = refusal_wait(a_refusal(upstream).headers)
        assert wait is not None and 1.0 <= wait <= 2.0
        jobs, clients = install(app, monkeypatch, concurrency=2)
        upstream.reset_counts()
        started = time.perf_counter()
        assert collect(jobs, clients, upstream.url, keys=KEYS[:8]) == EXPECTED[:8]
        seconds = time.perf_counter() - started
    nothing_lost(upstream, run_line(capture_events), keys=KEYS[:8])
    assert told() is None
    assert seconds < 8.0  # whole-second waits, never an hour's


# -- (b) a server clock an hour off --------------------------------------------------------------


@pytest.mark.parametrize("offset", [HOUR, -HOUR], ids=["ahead", "behind"])
def test_a_unix_time_reset_is_measured_against_the_answers_date(
    app: App, monkeypatch: pytest.MonkeyPatch, capture_events: list[str], offset: float
) -> None:
    """A server whose clock is an hour ahead or behind writes its resets as Unix times on that
    clock: measured against its Date, a refusal waits 1-2 s (not an hour, not 0), the rate is
    learned all the same and the run loses nothing."""
    with server(
        advertise=True, form="x-ratelimit-envoy", reset="epoch", retry_after="none", date_offset=offset
    ) as upstream:
        refused = a_refusal(upstream)
        found = budget(refused.headers)
        assert found is not None and found.reset is not None and 1.0 <= found.reset <= 2.0
        wait = refusal_wait(refused.headers)
        assert wait is not None and 1.0 <= wait <= 2.0
        jobs, clients = install(app, monkeypatch, concurrency=CONCURRENCY)
        upstream.reset_counts()
        assert collect(jobs, clients, upstream.url, keys=KEYS[:12]) == EXPECTED[:12]
    nothing_lost(upstream, run_line(capture_events), keys=KEYS[:12])
    assert told() == RATE
    assert upstream.status[429] <= CONCURRENCY


@pytest.mark.parametrize("offset", [HOUR, -HOUR], ids=["ahead", "behind"])
def test_a_retry_after_date_is_measured_against_the_answers_date(offset: float) -> None:
    """A 429's Retry-After as an HTTP-date, from a server an hour off: the wait is what the server
    meant (1-2 s from its own Date), as budget() already reads it."""
    with server(retry_after="date", date_offset=offset) as upstream:
        refused = a_refusal(upstream)
    found = budget(refused.headers)
    assert found is not None and found.retry_after is not None and 0.0 <= found.retry_after <= 2.0
    wait = refusal_wait(refused.headers)
    assert wait is not None and 0.5 <= wait <= 2.0


# -- (c) a host that halves its limit mid-run ----------------------------------------------------


def test_a_host_that_halves_its_limit_mid_run_is_followed(
    app: App, monkeypatch: pytest.MonkeyPatch, capture_events: list[str]
) -> None:
    """The server goes from 50 to 25 a second when the 11th item is asked, and its fields say so:
    the learned rate follows (25, kept for the next run), the rest arrive at 25 a second, a few
    requests are refused around the change, and no item is lost."""
    jobs, clients = install(app, monkeypatch, concurrency=CONCURRENCY)
    with server(advertise=True, rate_changes={KEYS[10]: RATE / 2}) as upstream:
        assert collect(jobs, clients, upstream.url) == EXPECTED
        at = upstream.log.index(("GET", KEYS[10]))
    nothing_lost(upstream, run_line(capture_events))
    assert told() == RATE / 2
    assert upstream.status[429] <= CONCURRENCY + 6  # the first wave, and those around the change
    paced(upstream, RATE / 2, skip=at + 4)
    kept = json.loads((app.state(here=True) / "hosts.json").read_text())
    assert kept["hosts"][HOST]["per_second"] == RATE / 2


@pytest.mark.anyio
async def test_a_host_that_halves_its_limit_is_followed_by_an_async_loop(
    app: App, monkeypatch: pytest.MonkeyPatch, capture_events: list[str]
) -> None:
    """The same halving (set by the server mid-run) through httpx's AsyncClient."""
    jobs, clients = install(app, monkeypatch, concurrency=CONCURRENCY)
    with server(advertise=True, form="ratelimit-06", rate_changes={KEYS[10]: RATE / 2}) as upstream:
        api = clients.AsyncApi(upstream.url)
        try:
            with anyio.fail_after(20):
                assert await jobs.collect_async(KEYS, api) == EXPECTED
        finally:
            await api.aclose()
        at = upstream.log.index(("GET", KEYS[10]))
    nothing_lost(upstream, run_line(capture_events))
    assert told() == RATE / 2
    assert upstream.status[429] <= CONCURRENCY + 6
    paced(upstream, RATE / 2, skip=at + 4)


# -- (d) the rates kept for the next run: owner-only, or not used -----------------------------


def keep(app: App, rate: float = RATE) -> Path:
    """hosts.json as the last run left it (owner-only, in the app's state folder): HOST told ``rate``."""
    rates = LearnedRates(str(app.state(here=True)))
    rates.save({HOST: rate})
    return Path(rates.path)


def refusals(lines: list[str]) -> list[str]:
    return [line for line in lines if line.startswith("sched_accel.state_refused ") and "hosts.json" in line]


def test_the_owner_only_file_is_used_by_the_next_run(
    app: App, monkeypatch: pytest.MonkeyPatch, capture_events: list[str]
) -> None:
    """A kept rate in an owner-only hosts.json: the next process starts at it, so even a host that
    now says nothing is paced from its first request (at most one refused)."""
    path = keep(app)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    jobs, clients = install(app, monkeypatch, concurrency=CONCURRENCY)
    assert told() == RATE
    with server(latency=0.02) as silent:
        assert collect(jobs, clients, silent.url, keys=KEYS[:16]) == EXPECTED[:16]
    nothing_lost(silent, run_line(capture_events), keys=KEYS[:16])
    assert silent.status[429] <= 1
    assert refusals(capture_events) == []


def test_a_file_readable_by_others_but_writable_only_by_its_owner_is_used(
    app: App, monkeypatch: pytest.MonkeyPatch, capture_events: list[str]
) -> None:
    """The one trust rule (README, "State on disk") is about who can *change* a file: a 0644
    hosts.json (rates are no secret) is used."""
    os.chmod(keep(app), 0o644)
    install(app, monkeypatch)
    assert told() == RATE
    assert refusals(capture_events) == []


def _group_writable(path: Path) -> None:
    os.chmod(path, 0o620)


def _other_writable(path: Path) -> None:
    os.chmod(path, 0o646)


def _symlink(path: Path) -> None:
    real = path.parent / "elsewhere.json"  # an owner-only file of ours, through a link
    path.rename(real)
    path.symlink_to(real)


def _someone_elses(path: Path) -> None:
    try:
        os.chown(path, os.geteuid() + 4321, -1)
    except PermissionError:
        pytest.skip("only root can give a file away; the modes and the symlink are tested")


UNTRUSTED = [
    pytest.param(_group_writable, "writable by other users (mode 620)", id="group-writable"),
    pytest.param(_other_writable, "writable by other users (mode 646)", id="other-writable"),
    pytest.param(_symlink, "symbolic link", id="symlink"),
    pytest.param(_someone_elses, "is owned by uid", id="someone-elses"),
]


@pytest.mark.parametrize(("spoil", "why"), UNTRUSTED)
def test_an_untrusted_file_is_refused_in_one_line_and_not_used(
    app: App, monkeypatch: pytest.MonkeyPatch, capture_events: list[str], spoil: Any, why: str
) -> None:
    """A hosts.json others can write, a symlink, or one owned by someone else: one state_refused
    line when the process starts (path, why, what to do), its rates are not used (the silent
    host refuses the first wave, as to a process that knows nothing), and the run is unharmed."""
    path = keep(app)
    spoil(path)
    jobs, clients = install(app, monkeypatch, concurrency=CONCURRENCY)
    [line] = refusals(capture_events)
    assert str(path) in line and why in line
    hosts = _activation._state.hosts
    assert hosts is not None and HOST not in hosts.learned
    assert told() is None
    with server(latency=0.02) as silent:
        assert collect(jobs, clients, silent.url, keys=KEYS[:10]) == EXPECTED[:10]
    nothing_lost(silent, run_line(capture_events), keys=KEYS[:10])
    assert silent.status[429] >= 1
    assert told() is None


def test_an_untrusted_file_is_said_once_and_replaced_by_an_owner_only_one(
    app: App, monkeypatch: pytest.MonkeyPatch, capture_events: list[str]
) -> None:
    """A group-writable hosts.json, then a run whose host tells its rate: the refusal is said
    once for the process, and what is kept is a new owner-only file the next run uses."""
    path = keep(app, rate=5.0)
    _group_writable(path)
    jobs, clients = install(app, monkeypatch, concurrency=CONCURRENCY)
    with server(advertise=True) as upstream:
        assert collect(jobs, clients, upstream.url, keys=KEYS[:16]) == EXPECTED[:16]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert LearnedRates(str(path.parent)).load() == {HOST: RATE}
    assert len(refusals(capture_events)) == 1
