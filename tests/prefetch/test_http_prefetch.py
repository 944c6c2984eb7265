"""HTTP-level prefetch against the real local server: the loop's own code (writes, prints,
POSTs, sqlite rows) runs as before; only its GETs are sent ahead, each exactly once.

Each test runs the app's loop unpatched, then patched, and compares what it printed, the
rows it wrote and what it returned, byte for byte, and the requests the server saw.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import sqlite3
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import sched_accel

from ..conftest import App
from ..faultserver import FaultServer
from .test_prefetch_shapes import install, run_line


@pytest.fixture
def server() -> Iterator[FaultServer]:
    with FaultServer(latency=0.02) as running:
        yield running


class Run:
    """What one call of the loop did: its value, its printed lines, the server's requests."""

    def __init__(self, server: FaultServer, call: Callable[[], Any]) -> None:
        server.reset_counts()
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            self.value = call()
        self.printed = out.getvalue()
        self.gets = Counter(k for method, k in server.log if method == "GET")
        self.posts = [k for method, k in server.log if method == "POST"]


def compare(
    server: FaultServer, monkeypatch: pytest.MonkeyPatch, capture: list[str], call: Callable[[], Any]
) -> tuple[Run, Run, dict[str, str]]:
    before = Run(server, call)
    install(monkeypatch, capture)
    after = Run(server, call)
    assert after.value == before.value
    assert after.printed == before.printed
    assert after.posts == before.posts  # the same POSTs, in the same order
    assert after.gets == before.gets  # every GET exactly once, as the loop made it
    return before, after, run_line(capture)


def rows(path: Path) -> list[tuple[Any, ...]]:
    with contextlib.closing(sqlite3.connect(path)) as db:
        return db.execute("SELECT * FROM prices ORDER BY id").fetchall()


def compare_rows(
    app: App,
    server: FaultServer,
    monkeypatch: pytest.MonkeyPatch,
    capture: list[str],
    tmp_path: Path,
    name: str,
    source: str,
    tokens: list[str],
) -> tuple[Run, Run, dict[str, str]]:
    """Module ``name`` (``source``, whose ``refresh(tokens, base, path)`` is a loop writing rows
    to sqlite) unpatched then patched, as :func:`compare`, and the rows it wrote the same too."""
    app.write(f"{name}.py", source)
    app.config(f'[[targets]]\nloop = "{name}:refresh"\nitems = "tokens"\nconcurrency = 6\n')
    module: Any = importlib.import_module(name)
    first, second = tmp_path / "before.db", tmp_path / "after.db"
    paths = iter([first, second])
    outcome = compare(server, monkeypatch, capture, lambda: module.refresh(tokens, server.url, next(paths)))
    assert rows(first) == rows(second)  # same ids, same order
    return outcome


HTTPX_JOB = """
    import sqlite3
    import httpx

    def fetch_and_store(client, db, token, base):
        # the per-item function legacy code writes: a GET, a print, a row
        answer = client.get(f"{base}/item/{token}", params={"currency": "usd"})
        answer.raise_for_status()
        value = answer.json()["value"]
        print(f"stored {token}: {value}")
        db.execute("INSERT INTO prices (token, value) VALUES (?, ?)", (token, value))
        return value

    def refresh(tokens, base, path):
        db = sqlite3.connect(path)
        db.execute("CREATE TABLE IF NOT EXISTS prices (id INTEGER PRIMARY KEY AUTOINCREMENT, token, value)")
        total = 0
        with httpx.Client() as client:
            for token in tokens:
                total += fetch_and_store(client, db, token, base)
        db.commit()
        db.close()
        return total
"""


@pytest.mark.slow
def test_httpx_loop_with_writes_and_prints_in_the_per_item_function(
    app: App, server: FaultServer, monkeypatch: pytest.MonkeyPatch, capture_events: list[str], tmp_path: Path
) -> None:
    tokens = [f"t{i}" for i in range(30)]
    _, _, fields = compare_rows(app, server, monkeypatch, capture_events, tmp_path, "job", HTTPX_JOB, tokens)
    assert fields["prefetch"] == "http"
    # the first item teaches the pattern, the second's request confirms it: the rest are served
    assert int(fields["prefetched"]) == 28 and fields["missed"] == "2"
    assert int(fields["prefetched"]) + int(fields["missed"]) == int(fields["items"])
    assert (fields["ok"], fields["failed"]) == ("30", "0")  # every GET answered 200
    assert int(fields["peak_requests"]) > 1


REQUESTS_JOB = """
    import requests

    SESSION = requests.Session()
    SESSION.headers["Authorization"] = "Bearer secret"

    def report(base, token):
        # six calls per item, as a `schedule` job made them, and a printed line
        parts = [SESSION.get(f"{base}/item/{token}-{part}").json()["value"] for part in ("a", "b", "c", "d", "e")]
        check = SESSION.get(f"{base}/item/{token}", params={"full": "1"}).json()["value"]
        print(token, parts, check)
        return sum(parts) + check

    def job(base, tokens):
        return [report(base, token) for token in tokens]
"""


@pytest.mark.slow
def test_requests_session_several_calls_per_item(
    app: App, server: FaultServer, monkeypatch: pytest.MonkeyPatch, capture_events: list[str]
) -> None:
    app.write("reports.py", REQUESTS_JOB)
    app.config('[[targets]]\nloop = "reports:job"\nitems = "tokens"\nconcurrency = 8\n')
    reports = importlib.import_module("reports")
    tokens = [f"acct{i}" for i in range(12)]
    try:
        _, after, fields = compare(server, monkeypatch, capture_events, lambda: reports.job(server.url, tokens))
    finally:
        reports.SESSION.close()
    assert after.printed.count("\n") == 12
    # the first item's six requests teach six patterns, the second's confirm them; every later
    # request is served
    assert fields["missed"] == "12"
    assert int(fields["prefetched"]) == 60


POSTING_JOB = """
    import httpx

    def sync(base, tokens):
        seen = []
        with httpx.Client() as client:
            for token in tokens:
                value = client.get(f"{base}/item/{token}").json()["value"]
                client.post(f"{base}/item/{token}", json={"value": value})  # a write: never early
                seen.append(value)
        return seen
"""


@pytest.mark.slow
def test_a_post_per_item_is_never_sent_early(
    app: App, server: FaultServer, monkeypatch: pytest.MonkeyPatch, capture_events: list[str]
) -> None:
    app.write("poster.py", POSTING_JOB)
    app.config('[[targets]]\nloop = "poster:sync"\nitems = "tokens"\n')
    poster = importlib.import_module("poster")
    tokens = [f"p{i}" for i in range(16)]
    server.reset_counts()
    _, after, fields = compare(server, monkeypatch, capture_events, lambda: poster.sync(server.url, tokens))
    assert fields["other"] == "16"  # the POSTs ran as the loop made them
    # each POST arrived after its own item's GET: the loop's order, not ours
    order = [entry for entry in server.log]
    for token in tokens:
        assert order.index(("GET", token)) < order.index(("POST", token))


VOLATILE_JOB = """
    import itertools
    import httpx

    COUNTER = itertools.count()

    def poll(base, tokens):
        with httpx.Client() as client:
            # a header that changes on every request: nothing sent ahead can be served
            return [client.get(f"{base}/item/{t}", headers={"X-Sequence": str(next(COUNTER))}).json()["value"] for t in tokens]
"""


def never_served(
    app: App, server: FaultServer, monkeypatch: pytest.MonkeyPatch, capture: list[str], name: str, source: str
) -> None:
    """Module ``name`` (``source``), whose ``poll(base, tokens)`` sends a header that changes
    on every request: the same result, nothing served, one line naming the header, and
    nothing sent ahead at all (the pattern's prediction for the second item had the first
    one's header: it retired before sending anything)."""
    app.write(f"{name}.py", source)
    app.config(f'[[targets]]\nloop = "{name}:poll"\nitems = "tokens"\nconcurrency = 4\n')
    module: Any = importlib.import_module(name)
    tokens = [f"{name}{i}" for i in range(10)]
    before = Run(server, lambda: module.poll(server.url, tokens))
    install(monkeypatch, capture)
    after = Run(server, lambda: module.poll(server.url, tokens))
    assert after.value == before.value
    fields = run_line(capture)
    assert fields["prefetched"] == "0" and int(fields["mismatched"]) >= 1
    assert any("not_accelerated" in line and "x-sequence" in line for line in capture)
    assert after.gets == before.gets


def test_a_request_that_differs_from_the_one_sent_ahead_is_not_served(
    app: App, server: FaultServer, monkeypatch: pytest.MonkeyPatch, capture_events: list[str]
) -> None:
    never_served(app, server, monkeypatch, capture_events, "volatile", VOLATILE_JOB)


@pytest.mark.slow
def test_items_learned_from_the_last_run_need_only_the_loop(
    app: App, server: FaultServer, monkeypatch: pytest.MonkeyPatch, capture_events: list[str]
) -> None:
    app.write("job.py", HTTPX_JOB)
    app.config('[[targets]]\nloop = "job:refresh"\n')  # nothing else declared
    job = importlib.import_module("job")
    tokens = [f"l{i}" for i in range(20)]
    db = app.root / "rows.db"
    install(monkeypatch, capture_events)
    first = Run(server, lambda: job.refresh(tokens, server.url, db))
    fields = run_line(capture_events)
    assert fields["prefetched"] == "0" and fields["learned"] == "20"
    assert any("not_accelerated" in line and "recorded" in line for line in capture_events)
    capture_events.clear()
    second = Run(server, lambda: job.refresh(tokens, server.url, db))
    fields = run_line(capture_events)
    assert second.printed == first.printed and second.gets == first.gets
    assert fields["prefetched"] == "18" and fields["missed"] == "2"  # replayed once the second was as recorded


AIOHTTP_JOB = """
    import sqlite3
    import aiohttp

    class Poller:
        def __init__(self, base, path):
            self.base = base
            self.db = sqlite3.connect(path)
            self.db.execute("CREATE TABLE IF NOT EXISTS prices (id INTEGER PRIMARY KEY AUTOINCREMENT, token, value)")

        async def poll_one(self, session, feed):
            # the GET inline, then a row and a line: the feed poller's shape
            async with session.get(f"{self.base}/item/{feed}") as answer:
                answer.raise_for_status()
                data = await answer.json()
            self.db.execute("INSERT INTO prices (token, value) VALUES (?, ?)", (feed, data["value"]))
            print("polled", feed, data["value"])
            return data["value"]

        async def poll(self, feeds):
            async with aiohttp.ClientSession() as session:
                values = [await self.poll_one(session, feed) for feed in feeds]
            self.db.commit()
            return values
"""


@pytest.mark.slow
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
@pytest.mark.anyio
async def test_aiohttp_loop_with_sqlite_writes(
    app: App, server: FaultServer, monkeypatch: pytest.MonkeyPatch, capture_events: list[str], tmp_path: Path
) -> None:
    pytest.importorskip("aiohttp")
    app.write("feeds.py", AIOHTTP_JOB)
    app.config('[[targets]]\nloop = "feeds:Poller.poll"\nitems = "feeds"\nconcurrency = 8\n')
    feeds_module = importlib.import_module("feeds")
    feeds = [f"feed{i}" for i in range(24)]

    async def run(path: Path) -> tuple[Any, str, Counter[str]]:
        server.reset_counts()
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            value = await feeds_module.Poller(server.url, path).poll(feeds)
        return value, out.getvalue(), Counter(k for m, k in server.log if m == "GET")

    before = await run(tmp_path / "before.db")
    install(monkeypatch, capture_events)
    after = await run(tmp_path / "after.db")
    assert after == before
    assert rows(tmp_path / "before.db") == rows(tmp_path / "after.db")
    fields = run_line(capture_events)
    assert int(fields["prefetched"]) == 22
    assert int(fields["requests"]) == 24 and int(fields["peak_requests"]) > 1  # aiohttp is seen


HTTPX_ASYNC_JOB = """
    import httpx

    async def gather_prices(base, tokens):
        out = []
        async with httpx.AsyncClient() as client:
            for token in tokens:
                answer = await client.get(f"{base}/item/{token}")
                out.append((token, answer.status_code, answer.json()["value"]))
                print(token)
        return out
"""


@pytest.mark.slow
@pytest.mark.anyio
async def test_httpx_async_loop(
    app: App, server: FaultServer, monkeypatch: pytest.MonkeyPatch, capture_events: list[str]
) -> None:
    app.write("aprices.py", HTTPX_ASYNC_JOB)
    app.config('[[targets]]\nloop = "aprices:gather_prices"\nitems = 1\nconcurrency = 8\n')
    aprices = importlib.import_module("aprices")
    tokens = [f"a{i}" for i in range(20)]
    server.reset_counts()
    before = await aprices.gather_prices(server.url, tokens)
    gets_before = Counter(k for m, k in server.log if m == "GET")
    install(monkeypatch, capture_events)
    server.reset_counts()
    after = await aprices.gather_prices(server.url, tokens)
    assert after == before
    assert Counter(k for m, k in server.log if m == "GET") == gets_before
    assert run_line(capture_events)["prefetched"] == "18"


def test_uninstalled_http_layers_are_untouched(server: FaultServer) -> None:
    import httpx

    sched_accel.uninstall()
    assert httpx.get(f"{server.url}/item/x").json()["item"] == "x"


PER_CALL_JOB = """
    import httpx

    def poll(base, tokens):
        # a client made (and closed) per request: nothing is sent through a closed one
        return [httpx.get(f"{base}/item/{token}").json()["value"] for token in tokens]
"""


@pytest.mark.slow
def test_a_client_per_request_is_never_used_after_it_is_closed(
    app: App, server: FaultServer, monkeypatch: pytest.MonkeyPatch, capture_events: list[str]
) -> None:
    """The same answers and one GET each; no connection is left open (pytest fails on one)."""
    app.write("percall.py", PER_CALL_JOB)
    app.config('[[targets]]\nloop = "percall:poll"\nitems = "tokens"\nconcurrency = 4\n')
    percall = importlib.import_module("percall")
    tokens = [f"pc{i}" for i in range(12)]
    compare(server, monkeypatch, capture_events, lambda: percall.poll(server.url, tokens))


def test_requests_answered_faster_than_fanning_out_step_aside(
    app: App, monkeypatch: pytest.MonkeyPatch, capture_events: list[str], tmp_path: Path
) -> None:
    """An upstream answering at once: after the probe, the loop sends its requests itself
    (one line says so, at INFO); results, rows and requests exactly as sequential."""
    from sched_accel._prefetch import _probe

    monkeypatch.setattr(_probe, "PROBE_SECONDS", 0.05)  # a new connection's first answer, on a busy machine
    monkeypatch.setattr(_probe, "RESUME_SECONDS", 0.05)  # a loaded machine's 0 ms answers wait a millisecond or more
    tokens = [f"t{i}" for i in range(30)]
    with FaultServer(latency=0) as quick:
        _, _, fields = compare_rows(app, quick, monkeypatch, capture_events, tmp_path, "job", HTTPX_JOB, tokens)
    assert fields["stepped_aside"] == "yes"
    assert int(fields["prefetched"]) <= 1 and int(fields["prefetched"]) + int(fields["missed"]) == 30
    [why] = [line for line in capture_events if "not_accelerated" in line]
    assert "stepped aside" in why


@pytest.mark.parametrize("declared", [False, True])
def test_a_run_that_stepped_aside_sends_as_the_plain_loop_and_still_counts_and_paces(
    app: App, monkeypatch: pytest.MonkeyPatch, capture_events: list[str], tmp_path: Path, declared: bool
) -> None:
    """Stepped aside for good, the loop's requests go as the plain loop's (no turn, no learning)
    to a host with nothing to pace: the run line still counts each one and each 503 as the
    upstream saw them. A host with a declared rate is still paced to it (the owner's say)."""
    from sched_accel._prefetch import _probe

    monkeypatch.setattr(_probe, "PROBE_SECONDS", 1.0)  # "quick" even under coverage's tracer: it steps aside
    monkeypatch.setattr(_probe, "RESUME_SECONDS", 0.05)  # a loaded machine's 0 ms answers wait a millisecond or more
    top = '[hosts."127.0.0.1"]\nper_second = 40\nburst = 1\n\n' if declared else ""
    app.write("job.py", HTTPX_JOB)
    app.config(top + '[[targets]]\nloop = "job:refresh"\nitems = "tokens"\nconcurrency = 6\n')
    job = importlib.import_module("job")
    install(monkeypatch, capture_events)
    tokens = [f"p{i}" for i in range(24)]
    with FaultServer(latency=0, faults={"p20?currency=usd": ["503"]}) as server:
        with pytest.raises(Exception, match="503"):  # raise_for_status, as the plain loop's
            job.refresh(tokens, server.url, tmp_path / "rows.db")
        seen = sum(server.requests.values())
        arrived = sorted(server.arrived)
    line = run_line(capture_events)
    assert line["stepped_aside"] == "yes", line
    assert int(line["requests"]) == seen == 21 and line["http_503"] == "1", (line, seen)
    if declared:  # 21 requests at 40/s with a burst of 1: at least 20 intervals of 25 ms
        assert arrived[-1] - arrived[0] >= 20 / 40 * 0.95, arrived[-1] - arrived[0]


def test_a_probe_slowed_once_is_revised_by_the_runs_quick_requests(
    app: App, monkeypatch: pytest.MonkeyPatch, capture_events: list[str], tmp_path: Path
) -> None:
    """The probe of a process's first run met a slow answer (a new connection, a hiccup) and the
    run fanned out, but its requests each took less than the probe allows: the next run probes
    again, and steps aside (issue 23 item 1: the decision revised by each run, not frozen for
    REPROBE_EVERY runs). Requests that stay slow keep the next runs fanning out at once."""
    from sched_accel._prefetch import _probe

    monkeypatch.setattr(_probe, "PROBE_SECONDS", 0.05)  # a new connection's first answer, on a busy machine
    monkeypatch.setattr(_probe, "RESUME_SECONDS", 0.05)  # a loaded machine's 0 ms answers wait a millisecond or more
    app.write("job.py", HTTPX_JOB)
    app.config('[[targets]]\nloop = "job:refresh"\nitems = "tokens"\nconcurrency = 6\n')
    job = importlib.import_module("job")
    install(monkeypatch, capture_events)
    with FaultServer(latency=0) as server:
        for slow in ("a1", "a2"):  # the probe's item: the first request teaches the template, the next confirms it
            server.latencies[f"{slow}?currency=usd"] = 0.2
        job.refresh([f"a{i}" for i in range(20)], server.url, tmp_path / "a.db")
        job.refresh([f"b{i}" for i in range(20)], server.url, tmp_path / "b.db")
    first, second = [
        dict(field.split("=", 1) for field in line.split() if "=" in field)
        for line in capture_events
        if line.startswith("sched_accel.run ")
    ]
    assert "stepped_aside" not in first and "probe" not in first  # the probe was slow: fanned out
    assert second.get("stepped_aside") == "yes" and "probe" not in second  # probed again: quick


def test_slow_requests_fan_out_after_the_probe(
    app: App, server: FaultServer, monkeypatch: pytest.MonkeyPatch, capture_events: list[str], tmp_path: Path
) -> None:
    """A probe that takes longer than its time fans out: no step-aside, no line."""
    app.write("job.py", HTTPX_JOB)
    app.config('[[targets]]\nloop = "job:refresh"\nitems = "tokens"\nconcurrency = 6\n')
    job = importlib.import_module("job")
    install(monkeypatch, capture_events)
    job.refresh([f"t{i}" for i in range(12)], server.url, tmp_path / "rows.db")
    fields = run_line(capture_events)
    assert "stepped_aside" not in fields and fields["prefetched"] == "10"
    assert not any("not_accelerated" in line for line in capture_events)


MIXED_JOB = """
    import asyncio

    import httpx
    import requests

    async def one(base, token):
        async with httpx.AsyncClient() as client:
            return (await client.get(f"{base}/item/{token}")).json()["value"]

    def sync_loop(base, tokens):
        # a sync loop that runs an async client per item (asyncio.run in the body)
        return [asyncio.run(one(base, token)) for token in tokens]

    async def async_loop(base, tokens):
        # an async loop that makes a blocking requests call per item
        return [requests.get(f"{base}/item/{token}").json()["value"] for token in tokens]
"""


@pytest.mark.slow
@pytest.mark.parametrize("loop", ["sync_loop", "async_loop"])
def test_a_client_of_the_other_kind_runs_as_made(
    app: App, server: FaultServer, monkeypatch: pytest.MonkeyPatch, capture_events: list[str], loop: str
) -> None:
    """An async client inside a sync loop, or a sync client inside an async loop: never
    sent early (the run's workers are of the other kind); each request exactly as made."""
    import asyncio

    app.write("mixed.py", MIXED_JOB)
    app.config(f'[[targets]]\nloop = "mixed:{loop}"\nitems = "tokens"\nconcurrency = 4\n')
    mixed = importlib.import_module("mixed")
    tokens = [f"m{i}" for i in range(6)]

    def call() -> Any:
        result = getattr(mixed, loop)(server.url, tokens)
        return asyncio.run(result) if loop == "async_loop" else result

    _, _, fields = compare(server, monkeypatch, capture_events, call)
    assert (fields["prefetched"], fields["other"]) == ("0", "6")


COUNTED_JOB = """
    import asyncio
    import urllib.error
    import urllib.request

    import httpx

    def statuses(base, tokens):
        # every answer kept, none raised; a POST per item beside its GET
        out = []
        with httpx.Client() as client:
            for token in tokens:
                try:
                    out.append(client.get(f"{base}/item/{token}").status_code)
                except httpx.HTTPError:
                    out.append("error")
                client.post(f"{base}/item/{token}", json={})
        return out

    async def astatuses(base, tokens):
        async with httpx.AsyncClient() as client:
            return [(await client.get(f"{base}/item/{token}")).status_code for token in tokens]

    def opened(base, tokens):
        out = []
        for token in tokens:
            try:
                with urllib.request.urlopen(f"{base}/item/{token}", timeout=10) as answer:
                    out.append(answer.status)
            except urllib.error.HTTPError as error:
                out.append(error.code)
        return out
"""


def counted(
    app: App, capture: list[str], monkeypatch: pytest.MonkeyPatch, call: Callable[[Any], Any]
) -> tuple[Any, dict[str, str]]:
    """``call(module)`` once patched (``counted:<loop>`` is the target, no ``fetch``: HTTP level);
    its value and its run line's fields."""
    app.write("counted.py", COUNTED_JOB)
    module: Any = importlib.import_module("counted")
    install(monkeypatch, capture)
    return call(module), run_line(capture)


@pytest.mark.slow
@pytest.mark.parametrize("loop", ["statuses", "opened"])
def test_the_run_line_counts_an_http_level_runs_items_ok(
    app: App, server: FaultServer, monkeypatch: pytest.MonkeyPatch, capture_events: list[str], loop: str
) -> None:
    """Every GET answered 200 (httpx, urllib): ok = items, failed=0; the POSTs are not items."""
    app.config(f'[[targets]]\nloop = "counted:{loop}"\nitems = "tokens"\nconcurrency = 6\n')
    tokens = [f"c{i}" for i in range(16)]
    value, fields = counted(app, capture_events, monkeypatch, lambda module: getattr(module, loop)(server.url, tokens))
    assert value == [200] * 16
    assert fields["prefetch"] == "http" and int(fields["prefetched"]) >= 1
    assert (fields["items"], fields["ok"], fields["failed"]) == ("16", "16", "0")


def test_the_run_line_counts_failed_answers_and_errors_of_an_http_level_run(
    app: App, monkeypatch: pytest.MonkeyPatch, capture_events: list[str]
) -> None:
    """A 500 (the first, missed item's and a prefetched one's) and a request that raised after
    its retries are failed; the others ok: ok + failed = items."""
    app.config(
        "[retry]\nattempts = 2\ninitial = 0.01\n\n"
        '[[targets]]\nloop = "counted:statuses"\nitems = "tokens"\nconcurrency = 4\n'
    )
    tokens = [f"f{i}" for i in range(12)]
    faults = {"f0": ["500"], "f5": ["500"], "f8": ["reset", "reset", "reset"]}
    with FaultServer(latency=0.02, faults=faults) as failing:
        value, fields = counted(app, capture_events, monkeypatch, lambda module: module.statuses(failing.url, tokens))
    assert value == [500, 200, 200, 200, 200, 500, 200, 200, "error", 200, 200, 200]
    assert (fields["items"], fields["ok"], fields["failed"]) == ("12", "9", "3")
    assert fields["other"] == "12" and int(fields["prefetched"]) >= 1  # the POSTs: not items


@pytest.mark.slow
@pytest.mark.anyio
async def test_the_run_line_counts_an_async_http_level_run(
    app: App, monkeypatch: pytest.MonkeyPatch, capture_events: list[str]
) -> None:
    """An async loop's requests are counted when the loop awaits them: a 500 failed, the rest ok."""
    app.config('[[targets]]\nloop = "counted:astatuses"\nitems = "tokens"\nconcurrency = 4\n')
    tokens = [f"a{i}" for i in range(10)]
    with FaultServer(latency=0.02, faults={"a4": ["500"]}) as failing:
        app.write("counted.py", COUNTED_JOB)
        module: Any = importlib.import_module("counted")
        install(monkeypatch, capture_events)
        value = await module.astatuses(failing.url, tokens)
    fields = run_line(capture_events)
    assert value == [200] * 4 + [500] + [200] * 5
    assert int(fields["prefetched"]) >= 1
    assert (fields["items"], fields["ok"], fields["failed"]) == ("10", "9", "1")
