"""Prefetch mode on the shapes legacy loops take in the field, each run unpatched then patched.

Module-level lists of dicts, ``from client import get_pair``, a sqlite connection made in the
caller's thread, items filtered and de-duplicated from another call's result with a two-argument
per-item call, a pacing sleep, and loops started by ``schedule`` and by APScheduler.
"""

from __future__ import annotations

import asyncio
import importlib
import itertools
import re
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import sched_accel

from ..conftest import App

CLIENT = """
    import threading
    import time

    LOCK = threading.Lock()
    CALLS = []
    NOW = [0]
    PEAK = [0]
    FAIL = set()
    LATENCY = [0.02]


    def _call(key):
        with LOCK:
            CALLS.append(key)
            NOW[0] += 1
            PEAK[0] = max(PEAK[0], NOW[0])
        try:
            time.sleep(LATENCY[0])
            if key in FAIL:
                raise LookupError(f"upstream failed for {key}")  # permanent: never retried
        finally:
            with LOCK:
                NOW[0] -= 1


    def get_pair(token):
        key = token["symbol"] if isinstance(token, dict) else token
        _call(key)
        return {"token": key, "price": round(len(key) * 1.5 + ord(key[-1]) / 100, 2)}


    def get_balance(chain, address):
        _call((chain, address))
        return {"chain": chain, "address": address, "balance": len(address) * 10 + len(chain)}


    def reset():
        CALLS.clear()
        NOW[0] = PEAK[0] = 0
"""


class Modules:
    """The app's modules, by name."""

    def __init__(self, *names: str) -> None:
        for name in names:
            setattr(self, name, importlib.import_module(name))

    def __getattr__(self, name: str) -> Any:  # for mypy: modules are set dynamically
        raise AttributeError(name)


def write_app(app: App, modules: dict[str, str], targets: str) -> None:
    """Write the client, the app's modules and the config."""
    app.write("client.py", CLIENT)
    for name, source in modules.items():
        app.write(f"{name}.py", source)
    app.config(targets)


def install(monkeypatch: pytest.MonkeyPatch, capture: list[str]) -> None:
    """Turn the flag on and install; forget the lines logged so far."""
    monkeypatch.setenv("ENABLE_SCHEDULER_OPTIMIZATION", "true")
    assert sched_accel.install() is True
    capture.clear()


def run_line(captured: list[str]) -> dict[str, str]:
    """The fields of the one ``sched_accel.run`` line logged."""
    [line] = [line for line in captured if line.startswith("sched_accel.run ")]
    return dict(re.findall(r"(\w+)=(\S+)", line.split(" - ", 1)[0]))


class Compared:
    """The same call, unpatched then patched: results, per-item calls and peak concurrency."""

    def __init__(
        self, client: Any, monkeypatch: pytest.MonkeyPatch, capture: list[str], call: Callable[[], Any]
    ) -> None:
        client.reset()
        self.before = call()
        self.calls_before = Counter(client.CALLS)
        assert client.PEAK[0] == 1 or not client.CALLS
        install(monkeypatch, capture)
        client.reset()
        started = time.perf_counter()
        self.after = call()
        self.seconds = time.perf_counter() - started
        self.calls_after = Counter(client.CALLS)
        self.peak = client.PEAK[0]
        self.fields = run_line(capture)


# -- items in a module-level list of dicts ---------------------------------------------------


def test_items_in_a_module_level_list_of_dicts(
    app: App, monkeypatch: pytest.MonkeyPatch, capture_events: list[str]
) -> None:
    """``items = "settings:TOKENS"``: a module-level list of (unhashable) dicts, each passed to the call."""
    write_app(
        app,
        {
            "settings": """
                TOKENS = [{"symbol": f"SYM{i}", "chain": "eth"} for i in range(12)]
            """,
            "prices": """
                import client
                import settings

                def refresh():
                    out = []
                    for token in settings.TOKENS:
                        out.append((token["symbol"], client.get_pair(token)["price"]))
                    return out
            """,
        },
        """
        [[targets]]
        loop = "prices:refresh"
        fetch = "client:get_pair"
        pure = true  # the fakes record their calls: a write, known to be harmless
        items = "settings:TOKENS"
        concurrency = 4
        """,
    )
    m = Modules("client", "settings", "prices")
    run = Compared(m.client, monkeypatch, capture_events, lambda: m.prices.refresh())
    assert run.after == run.before
    assert run.calls_after == run.calls_before == Counter(f"SYM{i}" for i in range(12))
    assert 1 < run.peak <= 4
    assert (run.fields["prefetched"], run.fields["missed"], run.fields["wasted"]) == ("12", "0", "0")


# -- from client import get_pair --------------------------------------------------------------


def test_per_item_function_imported_by_name_into_the_loops_module(
    app: App, monkeypatch: pytest.MonkeyPatch, capture_events: list[str]
) -> None:
    """``from client import get_pair`` in the loop's module: the call under that name is prefetched."""
    write_app(
        app,
        {
            "jobs": """
                from client import get_pair

                def update(tokens):
                    return [get_pair(token) for token in tokens]
            """,
        },
        """
        [[targets]]
        loop = "jobs:update"
        fetch = "client:get_pair"
        pure = true  # the fakes record their calls: a write, known to be harmless
        items = "tokens"
        concurrency = 4
        """,
    )
    m = Modules("client", "jobs")
    tokens = [f"T{i}" for i in range(12)]
    run = Compared(m.client, monkeypatch, capture_events, lambda: m.jobs.update(tokens))
    assert run.after == run.before
    assert run.calls_after == run.calls_before == Counter(tokens)
    assert 1 < run.peak <= 4
    assert (run.fields["prefetched"], run.fields["missed"]) == ("12", "0")


# -- a sqlite connection made in the caller's thread ---------------------------------------------

SAVER = """
    import logging

    from client import get_pair

    log = logging.getLogger("saver")


    def save_all(tokens, conn):
        saved = 0
        for token in tokens:
            try:
                data = get_pair(token)
                conn.execute("INSERT INTO prices VALUES (?, ?)", (data["token"], data["price"]))
                conn.commit()
                saved += 1
            except Exception as exc:  # the legacy job swallows everything and moves on
                log.warning("skipping %s: %s", token, exc)
        return saved
"""


def rows(path: Path) -> list[tuple[Any, ...]]:
    """Every row of the prices table, in insertion order."""
    conn = sqlite3.connect(path)
    try:
        return conn.execute("SELECT token, price FROM prices ORDER BY rowid").fetchall()
    finally:
        conn.close()


def test_sqlite_connection_from_the_callers_thread_gets_the_same_rows(
    app: App, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capture_events: list[str]
) -> None:
    """A loop writing through the caller's sqlite connection and catching everything saves the same rows."""
    write_app(
        app,
        {"saver": SAVER},
        """
        [[targets]]
        loop = "saver:save_all"
        fetch = "client:get_pair"
        pure = true  # the fakes record their calls: a write, known to be harmless
        items = "tokens"
        concurrency = 4
        """,
    )
    m = Modules("client", "saver")
    m.client.FAIL.update({"T3", "T7"})
    tokens = [f"T{i}" for i in range(12)]
    paths = iter([tmp_path / "before.db", tmp_path / "after.db"])

    def call() -> int:
        path = next(paths)
        conn = sqlite3.connect(path)  # made here, in the caller's thread
        conn.execute("CREATE TABLE prices (token TEXT, price REAL)")
        try:
            saved: int = m.saver.save_all(tokens, conn)
            return saved
        finally:
            conn.close()

    run = Compared(m.client, monkeypatch, capture_events, call)
    assert run.before == run.after == 10
    assert rows(tmp_path / "after.db") == rows(tmp_path / "before.db")
    assert len(rows(tmp_path / "after.db")) == 10
    assert run.calls_after == run.calls_before == Counter(tokens)
    assert run.peak > 1
    assert (run.fields["prefetched"], run.fields["ok"], run.fields["failed"]) == ("12", "10", "2")


# -- items filtered and de-duplicated from another call's result, two arguments --------------------

REPO = """
    WALLETS = [
        {"chain": "eth", "address": "0xa1", "enabled": True},
        {"chain": "eth", "address": "0xb2", "enabled": False},
        {"chain": "sol", "address": "So1", "enabled": True},
        {"chain": "eth", "address": "0xa1", "enabled": True},
        {"chain": "bsc", "address": "0xc3", "enabled": True},
        {"chain": "eth", "address": "0xd4", "enabled": True},
        {"chain": "sol", "address": "So1", "enabled": True},
        {"chain": "sol", "address": "So2", "enabled": False},
        {"chain": "eth", "address": "0xe5", "enabled": True},
        {"chain": "bsc", "address": "0xf6", "enabled": True},
    ]
    ACTIVE_CALLS = []


    class TokenRepo:
        def active(self):
            ACTIVE_CALLS.append(1)
            return [dict(w) for w in WALLETS]
"""
BALANCES = """
    from client import get_balance
    from repo import TokenRepo


    def refresh(repo):
        seen = set()
        balances = {}
        for wallet in repo.active():
            if not wallet["enabled"]:
                continue
            key = (wallet["chain"], wallet["address"])
            if key in seen:
                continue
            seen.add(key)
            balances[key] = get_balance(wallet["chain"], wallet["address"])["balance"]
        return balances
"""


def test_items_returned_by_a_call_filtered_and_deduplicated_with_two_arguments(
    app: App, monkeypatch: pytest.MonkeyPatch, capture_events: list[str]
) -> None:
    """``returned-by`` items, filtered and de-duplicated by the loop, two fields each: same result, skips wasted."""
    write_app(
        app,
        {"repo": REPO, "balances": BALANCES},
        """
        [[targets]]
        loop = "balances:refresh"
        fetch = "client:get_balance"
        pure = true  # the fakes record their calls: a write, known to be harmless
        items = "returned-by:repo:TokenRepo.active"
        args = ["item.chain", "item.address"]
        concurrency = 4
        """,
    )
    m = Modules("client", "repo", "balances")
    run = Compared(m.client, monkeypatch, capture_events, lambda: m.balances.refresh(m.repo.TokenRepo()))
    assert run.after == run.before
    assert list(run.after) == list(run.before)  # same order of keys
    assert len(run.before) == 6
    assert m.repo.ACTIVE_CALLS == [1, 1]  # the source call itself is made once per run
    # every call the loop made was made; the rest were predicted for items it skipped
    assert not run.calls_before - run.calls_after
    wasted = run.calls_after - run.calls_before
    assert set(wasted) <= {("eth", "0xb2"), ("sol", "So2"), ("eth", "0xa1"), ("sol", "So1")}
    assert (run.fields["prefetched"], run.fields["missed"]) == ("6", "0")
    assert int(run.fields["wasted"]) == sum(wasted.values())
    assert run.peak > 1


# -- a pacing sleep in the loop ------------------------------------------------------------------

PACED = """
    import time

    import client


    def update(tokens):
        out = []
        for token in tokens:
            out.append(client.get_pair(token))
            time.sleep(0.05)  # stay under the upstream's rate limit
        return out
"""
PACED_TARGET = """
    [[targets]]
    loop = "paced:update"
    fetch = "client:get_pair"
    pure = true  # the fakes record their calls: a write, known to be harmless
    items = "tokens"
    concurrency = 4
    {extra}
"""


@pytest.mark.slow
def test_pacing_sleep_kept_without_skip_sleeps(
    app: App, monkeypatch: pytest.MonkeyPatch, capture_events: list[str]
) -> None:
    """A loop that sleeps after each call returns the same results; without skip_sleeps it still sleeps."""
    write_app(app, {"paced": PACED}, PACED_TARGET.format(extra=""))
    m = Modules("client", "paced")
    tokens = [f"T{i}" for i in range(8)]
    run = Compared(m.client, monkeypatch, capture_events, lambda: m.paced.update(tokens))
    assert run.after == run.before
    assert run.calls_after == run.calls_before == Counter(tokens)
    assert run.seconds >= len(tokens) * 0.05
    assert "skipped_sleeps" not in run.fields


def test_skip_sleeps_skips_the_loops_pacing_sleeps(
    app: App, monkeypatch: pytest.MonkeyPatch, capture_events: list[str]
) -> None:
    """With ``skip_sleeps = true`` the loop's own sleeps are skipped: same results, much faster than N x 0.05 s."""
    write_app(app, {"paced": PACED}, PACED_TARGET.format(extra="skip_sleeps = true"))
    m = Modules("client", "paced")
    tokens = [f"T{i}" for i in range(10)]
    run = Compared(m.client, monkeypatch, capture_events, lambda: m.paced.update(tokens))
    assert run.after == run.before
    assert run.calls_after == run.calls_before == Counter(tokens)
    assert run.seconds < len(tokens) * 0.05 / 2
    assert run.fields["skipped_sleeps"] == "10"
    # the per-item calls' own sleeps (in the client) still ran: the latency is real
    assert run.peak > 1
    started = time.perf_counter()
    time.sleep(0.02)  # outside a run, time.sleep sleeps
    assert time.perf_counter() - started >= 0.02


# -- loops started by a scheduler library -----------------------------------------------------------

JOBS = """
    import threading

    import client

    TOKENS = [f"T{i}" for i in range(10)]
    BODY_THREADS = []


    def update(tokens):
        out = []
        for token in tokens:
            BODY_THREADS.append(threading.get_ident())
            out.append(client.get_pair(token))
        return out
"""
JOBS_TARGET = """
    [[targets]]
    loop = "jobs:update"
    fetch = "client:get_pair"
    pure = true  # the fakes record their calls: a write, known to be harmless
    items = "tokens"
    concurrency = 4
"""


def test_loop_started_by_the_schedule_library(
    app: App, monkeypatch: pytest.MonkeyPatch, capture_events: list[str]
) -> None:
    """A loop run by ``schedule.every().seconds.do(job); schedule.run_all()`` is patched: same results."""
    write_app(
        app,
        {
            "jobs": JOBS,
            "cron": """
                import schedule

                import jobs

                RESULTS = []


                def job():
                    RESULTS.append(jobs.update(jobs.TOKENS))


                def run_once():
                    schedule.every().seconds.do(job)
                    try:
                        schedule.run_all()
                    finally:
                        schedule.clear()
                    return RESULTS.pop()
            """,
        },
        JOBS_TARGET,
    )
    m = Modules("client", "jobs", "cron")
    run = Compared(m.client, monkeypatch, capture_events, m.cron.run_once)
    assert run.after == run.before
    assert len(run.after) == 10
    assert run.calls_after == run.calls_before
    assert 1 < run.peak <= 4
    assert (run.fields["prefetched"], run.fields["missed"]) == ("10", "0")
    assert set(m.jobs.BODY_THREADS) == {threading.get_ident()}


def test_loop_started_by_apscheduler(app: App, monkeypatch: pytest.MonkeyPatch, capture_events: list[str]) -> None:
    """A loop run by an APScheduler BackgroundScheduler job is patched: same results, body in the job's thread."""
    write_app(
        app,
        {
            "jobs": JOBS,
            "cron": """
                import threading
                from datetime import datetime

                from apscheduler.schedulers.background import BackgroundScheduler

                import jobs

                RESULTS = []
                JOB_THREADS = []


                def job(done):
                    try:
                        JOB_THREADS.append(threading.get_ident())
                        RESULTS.append(jobs.update(jobs.TOKENS))
                    finally:
                        done.set()


                def run_once():
                    done = threading.Event()
                    scheduler = BackgroundScheduler()
                    scheduler.add_job(job, args=[done], next_run_time=datetime.now())
                    scheduler.start()
                    try:
                        assert done.wait(30), "the job did not run"
                    finally:
                        scheduler.shutdown(wait=True)
                    return RESULTS.pop()
            """,
        },
        JOBS_TARGET,
    )
    m = Modules("client", "jobs", "cron")
    run = Compared(m.client, monkeypatch, capture_events, m.cron.run_once)
    assert run.after == run.before
    assert len(run.after) == 10
    assert run.calls_after == run.calls_before
    assert 1 < run.peak <= 4
    assert (run.fields["prefetched"], run.fields["missed"]) == ("10", "0")
    job_thread = m.cron.JOB_THREADS[-1]
    assert job_thread != threading.get_ident()
    assert set(m.jobs.BODY_THREADS[-10:]) == {job_thread}


# -- a source that fails when read ahead ---------------------------------------------------------


def test_a_source_that_raises_when_read_ahead_raises_only_where_the_loop_reads_it(
    app: App, monkeypatch: pytest.MonkeyPatch, capture_events: list[str]
) -> None:
    """A sequence whose item 6 raises: our read-ahead stops there and says so; the loop raises there itself."""
    write_app(
        app,
        {
            "rows": """
                from collections.abc import Sequence

                class Rows(Sequence):
                    def __len__(self):
                        return 10

                    def __getitem__(self, index):
                        if not 0 <= index < 10:
                            raise IndexError(index)
                        if index == 6:
                            raise ValueError("row 6 is corrupt")
                        return f"T{index}"
            """,
            "job": """
                import client

                def run(rows, done):
                    for row in rows:
                        done.append(client.get_pair(row)["token"])
                    return done
            """,
        },
        '[[targets]]\nloop = "job:run"\nfetch = "client:get_pair"\npure = true\nitems = "rows"\nconcurrency = 4\n',
    )
    m = Modules("client", "rows", "job")

    def call() -> Any:
        done: list[str] = []
        try:
            m.job.run(m.rows.Rows(), done)
        except ValueError as exc:
            return done, str(exc)
        return done, None

    compared = Compared(m.client, monkeypatch, capture_events, call)
    assert any(line.startswith("sched_accel.internal_error") for line in capture_events)  # said once
    assert compared.after == compared.before == (["T0", "T1", "T2", "T3", "T4", "T5"], "row 6 is corrupt")
    assert compared.calls_after == compared.calls_before


APACED = """
    import asyncio

    TICKS = []


    async def get(token):
        await asyncio.sleep(0.03)  # the per-item call's own wait: never skipped
        return token.lower()


    async def heartbeat():
        while True:
            TICKS.append(asyncio.get_running_loop().time())
            await asyncio.sleep(0.01)


    async def update(tokens):
        beat = asyncio.create_task(heartbeat())  # made inside the run: its context is the loop's
        out = []
        try:
            for token in tokens:
                out.append(await get(token))
                await asyncio.sleep(0.05)  # the loop's own pacing
        finally:
            beat.cancel()
        return out
"""


def test_skip_sleeps_skips_and_counts_only_the_loops_own_sleeps_in_an_async_loop(
    app: App, monkeypatch: pytest.MonkeyPatch, capture_events: list[str]
) -> None:
    """Issue 23 item 5: a heartbeat task the loop starts keeps its rhythm and is not counted;
    skipped_sleeps is the loop's own 10, as the loop's body made them."""
    write_app(
        app,
        {"apaced": APACED},
        PACED_TARGET.replace("paced:update", "apaced:update")
        .replace("client:get_pair", "apaced:get")
        .format(extra="skip_sleeps = true"),
    )
    apaced: Any = importlib.import_module("apaced")
    tokens = [f"T{i}" for i in range(10)]
    install(monkeypatch, capture_events)
    started = time.perf_counter()
    assert asyncio.run(apaced.update(tokens)) == [t.lower() for t in tokens]
    seconds = time.perf_counter() - started
    fields = run_line(capture_events)
    assert fields["skipped_sleeps"] == "10", fields
    assert seconds < len(tokens) * 0.05 / 2  # the loop's sleeps skipped
    gaps = [b - a for a, b in itertools.pairwise(apaced.TICKS)]
    assert gaps and min(gaps) >= 0.008, gaps  # the heartbeat slept each time: its rhythm kept
