"""A prefetched result is served only when it answers the call the loop makes: the fault
shapes that gave wrong results before, each run unpatched then patched, compared.

- a loop that changes the item before the call (the arguments are fingerprinted when the
  call is sent ahead, and compared when the loop makes it);
- a call that reads state the loop's body changes, and one that prints (neither is run
  ahead: the target prefetches the loop's requests instead);
- a generator the loop stops (never read ahead of the loop).
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator

import pytest

import sched_accel

from ..conftest import App
from ..faultserver import FaultServer
from .test_http_prefetch import Run, compare
from .test_prefetch_shapes import install, run_line


@pytest.fixture
def server() -> Iterator[FaultServer]:
    with FaultServer(latency=0.01) as running:
        yield running


def target(loop: str, fetch: str, items: str) -> str:
    return f'[[targets]]\nloop = "{loop}"\nfetch = "{fetch}"\nitems = "{items}"\nconcurrency = 4\n'


MUTATING = """
    import httpx

    BASE = ["http://unset"]

    def fetch(item):
        return httpx.get(f"{BASE[0]}/item/{item.n}").json()["item"]

    class Item:
        def __init__(self, n):
            self.n = n

    def loop(items):
        out = []
        for item in items:
            item.n += 100  # the loop changes the item before the call
            out.append(fetch(item))
        return out
"""


@pytest.mark.slow
def test_a_loop_that_changes_the_item_first_gets_the_answer_for_the_changed_item(
    app: App, server: FaultServer, monkeypatch: pytest.MonkeyPatch, capture_events: list[str]
) -> None:
    app.write("mutating.py", MUTATING.replace("BASE = [", "BASE = [").replace('"http://unset"', repr(server.url)))
    app.config(target("mutating:loop", "mutating:fetch", "items") + "pure = true\n")
    mutating = importlib.import_module("mutating")
    before = mutating.loop([mutating.Item(i) for i in range(12)])
    assert before == [str(100 + i) for i in range(12)]
    install(monkeypatch, capture_events)
    assert mutating.loop([mutating.Item(i) for i in range(12)]) == before
    fields = run_line(capture_events)
    # the first call is sent when the loop makes it (nothing to compare); after three answers
    # to arguments the loop then changed, nothing more is sent ahead
    assert fields["prefetched"] == "1" and 3 <= int(fields["mismatched"]) <= 4
    assert int(fields["wasted"]) <= 11  # sent before the loop changed them: extra reads, never served


STATEFUL = """
    import httpx

    OFFSET = {"value": 0}
    CLIENT = httpx.Client()

    def fetch(base, token):
        # reads state that the loop's body changes after each item
        return CLIENT.get(f"{base}/item/{token}").json()["value"] + OFFSET["value"]

    def loop(base, tokens):
        out = []
        for token in tokens:
            out.append(fetch(base, token))
            OFFSET["value"] += 1
        OFFSET["value"] = 0
        return out
"""


def test_a_call_that_reads_what_the_body_changes_runs_in_place_after_its_shadow(
    app: App, server: FaultServer, monkeypatch: pytest.MonkeyPatch, capture_events: list[str]
) -> None:
    app.write("stateful.py", STATEFUL)
    app.config(target("stateful:loop", "stateful:fetch", "tokens"))
    stateful = importlib.import_module("stateful")
    tokens = [f"s{i}" for i in range(16)]
    monkeypatch.setenv("ENABLE_SCHEDULER_OPTIMIZATION", "true")
    assert sched_accel.install() is True
    try:
        accelerated = Run(server, lambda: stateful.loop(server.url, tokens))
    finally:
        stateful.CLIENT.close()
    fields = run_line(capture_events)
    # Its shadow only sends its GET ahead; the real call runs in place and reads OFFSET then.
    assert fields["prefetch"] == "shadow" and int(fields["reads_served"]) >= 12
    assert accelerated.value == [FaultServerValue(t) + i for i, t in enumerate(tokens)]


def FaultServerValue(key: str) -> int:  # noqa: N802 - reads as the server's answer
    from ..faultserver import value_of

    return value_of(key)


PRINTING = """
    import requests

    SESSION = requests.Session()

    def report(base, token):
        parts = [SESSION.get(f"{base}/item/{token}-{p}").json()["value"] for p in "abc"]
        print(token, parts)  # the per-item function prints: only the real call's print is seen
        return sum(parts)

    def job(base, tokens):
        return [report(base, token) for token in tokens]
"""


def test_a_per_item_function_that_prints_keeps_its_order(
    app: App, server: FaultServer, monkeypatch: pytest.MonkeyPatch, capture_events: list[str]
) -> None:
    app.write("printing.py", PRINTING)
    app.config(target("printing:job", "printing:report", "tokens"))
    printing = importlib.import_module("printing")
    tokens = [f"rep{i}" for i in range(10)]
    try:
        _, after, fields = compare(server, monkeypatch, capture_events, lambda: printing.job(server.url, tokens))
    finally:
        printing.SESSION.close()
    assert after.printed.splitlines()[0].startswith("rep0 ")
    # Shadowed: its prints are dropped, its GETs sent ahead and served to the real calls.
    assert fields["prefetch"] == "shadow" and int(fields["reads_served"]) >= 20


STOPPING = """
    import httpx


    def fetch(base, token):
        return httpx.get(f"{base}/item/{token}").json()["value"]

    def endless():
        n = 0
        while True:
            yield f"g{n}"
            n += 1

    def loop(base, tokens):
        out = []
        for token in tokens:
            out.append(fetch(base, token))
            if len(out) == 6:
                break  # the body tells the generator to stop
        return out
"""


@pytest.mark.slow
def test_a_generator_the_body_stops_is_not_read_ahead(
    app: App, server: FaultServer, monkeypatch: pytest.MonkeyPatch, capture_events: list[str]
) -> None:
    app.write("stopping.py", STOPPING)
    app.config(target("stopping:loop", "stopping:fetch", "tokens"))
    stopping = importlib.import_module("stopping")
    before = Run(server, lambda: stopping.loop(server.url, stopping.endless()))
    install(monkeypatch, capture_events)
    after = Run(server, lambda: stopping.loop(server.url, stopping.endless()))
    assert after.value == before.value
    assert after.gets == before.gets and sum(after.gets.values()) == 6  # not one fetch more
