"""Shadow runs against the real local server: the per-item function runs ahead only for its
reads; the loop and its real calls run in place, so every print, log record, row and POST is
the sequential run's, in its order, and each request reaches the server as often as the
sequential run sends it.

Each test runs the app's loop unpatched, then patched (``shadow = true``), and compares.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import anyio
import pytest

from ..conftest import App
from ..faultserver import FaultServer
from .test_prefetch_shapes import install, run_line

TOKENS = [f"t{i:02d}" for i in range(24)]


@pytest.fixture
def server() -> Iterator[FaultServer]:
    with FaultServer(latency=0.05) as running:
        yield running


class Seen:
    """What one call of the loop did: its value, what it printed and logged, the requests."""

    def __init__(self, server: FaultServer, call: Callable[[], Any]) -> None:
        server.reset_counts()
        out = io.StringIO()
        records: list[str] = []
        handler = logging.Handler()
        handler.emit = lambda record: records.append(record.getMessage())  # type: ignore[method-assign]
        logger = logging.getLogger("tracker")
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        started = time.perf_counter()
        try:
            with contextlib.redirect_stdout(out):
                self.value = call()
        finally:
            logger.removeHandler(handler)
        self.seconds = time.perf_counter() - started
        self.printed = out.getvalue()
        self.logged = records
        self.gets = Counter(key for method, key in server.log if method == "GET")
        self.posts = [key for method, key in server.log if method == "POST"]


def compare(
    app: App,
    server: FaultServer,
    monkeypatch: pytest.MonkeyPatch,
    capture: list[str],
    name: str,
    source: str,
    config: str,
    call: Callable[[Any], Any],
) -> tuple[Seen, Seen, dict[str, str]]:
    app.write(f"{name}.py", source)
    app.config(config)
    module: Any = importlib.import_module(name)
    before = Seen(server, lambda: call(module))
    install(monkeypatch, capture)
    after = Seen(server, lambda: call(module))
    assert after.value == before.value
    assert after.printed == before.printed
    assert after.logged == before.logged
    assert after.posts == before.posts  # the same writes, in the same order
    assert after.gets == before.gets  # every read as often as the sequential run sends it
    return before, after, run_line(capture)


TRACKER = """
    import logging
    import requests

    class Tracker:
        def __init__(self, base):
            self.base = base
            self.session = requests.Session()
            self.logger = logging.getLogger("tracker")

        def fetch(self, token):
            self.logger.info("fetching %s", token)
            print("fetching", token)
            data = self.session.get(f"{self.base}/item/{token}").json()
            detail = self.session.get(f"{self.base}/item/detail-{data['value']}").json()  # named by the first answer
            self.session.post(f"{self.base}/item/{token}", json={"seen": data["value"]})  # a write: stops the shadow
            return data["value"], detail["value"]

    def run(tokens, base):
        tracker = Tracker(base)
        out = []
        for token in tokens:
            value = tracker.fetch(token)
            print("row", token, value)
            out.append((token, value))
        return out
"""


@pytest.mark.slow
def test_a_method_that_logs_reads_twice_and_writes_is_shadowed_in_order(
    app: App, server: FaultServer, monkeypatch: pytest.MonkeyPatch, capture_events: list[str]
) -> None:
    """A method that logs, prints, makes a GET, a GET the first answer names, then a POST (a
    write): identical output and records, each GET once, POSTs in order, and faster."""
    config = '[[targets]]\nloop = "tracker:run"\nitems = "tokens"\nfetch = "tracker:Tracker.fetch"\nshadow = true\nconcurrency = 8\n'
    before, after, line = compare(
        app,
        server,
        monkeypatch,
        capture_events,
        "tracker",
        TRACKER,
        config,
        lambda module: module.run(TOKENS, server.url),
    )
    assert line["prefetch"] == "shadow"
    assert int(line["reads_served"]) >= len(TOKENS)  # most first and second GETs answered from shadows
    assert after.seconds < before.seconds / 2


ASYNC_TRACKER = """
    import logging
    import httpx

    logger = logging.getLogger("tracker")

    async def fetch(client, token):
        logger.info("fetching %s", token)
        response = await client.get(f"/item/{token}")
        data = response.json()
        detail = (await client.get(f"/item/detail-{data['value']}")).json()
        return data["value"], detail["value"]

    async def run(tokens, base):
        out = []
        async with httpx.AsyncClient(base_url=base) as client:
            for token in tokens:
                value = await fetch(client, token)
                print("row", token, value)
                out.append((token, value))
        return out
"""


@pytest.mark.slow
def test_an_async_function_with_chained_reads_is_shadowed(
    app: App, server: FaultServer, monkeypatch: pytest.MonkeyPatch, capture_events: list[str]
) -> None:
    """An async per-item function on httpx with two chained GETs: identical, each GET once."""
    import anyio

    config = '[[targets]]\nloop = "atracker:run"\nitems = "tokens"\nfetch = "atracker:fetch"\nshadow = true\nconcurrency = 8\n'
    before, after, line = compare(
        app,
        server,
        monkeypatch,
        capture_events,
        "atracker",
        ASYNC_TRACKER,
        config,
        lambda module: anyio.run(module.run, TOKENS, server.url),
    )
    assert line["prefetch"] == "shadow"
    assert int(line["reads_served"]) >= len(TOKENS)
    assert after.seconds < before.seconds / 2


STOPS_EARLY = """
    import requests

    session = requests.Session()

    def fetch(base, token):
        return session.get(f"{base}/item/{token}").json()["value"]

    def run(tokens, base):
        total = 0
        for token in tokens:
            value = fetch(base, token)
            total += value
            if token == "t05":
                break  # the loop stops: what was read ahead past it is wasted, never sent twice
        return total
"""


def test_a_loop_that_stops_early_reads_ahead_within_the_window_only(
    app: App, server: FaultServer, monkeypatch: pytest.MonkeyPatch, capture_events: list[str]
) -> None:
    """Items past the loop's break are read at most once each, within the window, as wasted."""
    config = '[[targets]]\nloop = "early:run"\nitems = "tokens"\nfetch = "early:fetch"\nshadow = true\nconcurrency = 4\nwindow = 4\n'
    app.write("early.py", STOPS_EARLY)
    app.config(config)
    module: Any = importlib.import_module("early")
    before = Seen(server, lambda: module.run(TOKENS, server.url))
    install(monkeypatch, capture_events)
    after = Seen(server, lambda: module.run(TOKENS, server.url))
    assert after.value == before.value
    assert all(count == 1 for count in after.gets.values())  # nothing twice
    assert set(before.gets) <= set(after.gets)
    extra = set(after.gets) - set(before.gets)
    assert len(extra) <= 4  # the window
    line = run_line(capture_events)
    assert int(line["wasted"]) >= len(extra) or extra == set()


def test_shadows_still_reading_when_the_loop_returns_are_counted_apart(
    app: App, monkeypatch: pytest.MonkeyPatch, capture_events: list[str]
) -> None:
    """The loop breaks off while shadows past its break wait on slow answers for items it will
    never reach: the run line, said as the loop returns, counts them as ``shadows_running`` (each
    stops at its next effect, after the line), not as ``shadows_stopped`` (issue 23 item 5)."""
    config = '[[targets]]\nloop = "early:run"\nitems = "tokens"\nfetch = "early:fetch"\nshadow = true\nconcurrency = 4\nwindow = 4\n'
    app.write("early.py", STOPS_EARLY)
    app.config(config)
    module: Any = importlib.import_module("early")
    with FaultServer(latency=0.01) as server:
        for token in TOKENS[6:]:
            server.latencies[token] = 1.0  # past the break: still reading when the loop returns
        install(monkeypatch, capture_events)
        module.run(TOKENS, server.url)
        line = run_line(capture_events)
        assert 1 <= int(line["shadows_running"]) <= 4, line  # within the window
        assert "shadows_stopped" not in line


def test_a_request_the_shadow_never_sent_goes_out_live_once(
    app: App, server: FaultServer, monkeypatch: pytest.MonkeyPatch, capture_events: list[str]
) -> None:
    """A real call whose request differs from its shadow's (a header the loop changes per call)
    sends its own, live, once; the shadow's differing read is counted, never served."""
    source = """
        import itertools
        import requests

        session = requests.Session()
        calls = itertools.count()

        def fetch(base, token):
            return session.get(f"{base}/item/{token}", headers={"X-Call": str(next(calls))}).json()["value"]

        def run(tokens, base):
            return [fetch(base, token) for token in tokens]
    """
    config = '[[targets]]\nloop = "changing:run"\nitems = "tokens"\nfetch = "changing:fetch"\nshadow = true\nconcurrency = 4\n'
    app.write("changing.py", source)
    app.config(config)
    module: Any = importlib.import_module("changing")
    before = Seen(server, lambda: module.run(TOKENS[:8], server.url))
    install(monkeypatch, capture_events)
    after = Seen(server, lambda: module.run(TOKENS[:8], server.url))
    assert after.value == before.value
    line = run_line(capture_events)
    assert line["prefetch"] == "shadow"
    # Shadows shared the counter (Python state a shadow changes: the one risk the static check
    # is for), so the real calls' headers differ from their shadows': none is served.
    assert int(line["reads_served"]) == 0
    assert int(line["reads_live"]) == 8


GRAPHQL = """
    import json
    import requests

    session = requests.Session()
    QUERY = "query User($id: ID!) { user(id: $id) { name score } }"
    MUTATION = "mutation Seen($id: ID!) { markSeen(id: $id) { ok } }"

    def sync_user(base, user):
        # A read sent as POST (a GraphQL query), then a write (a mutation), per user.
        found = session.post(f"{base}/item/q-{user}", json={"query": QUERY, "variables": {"id": user}}).json()
        session.post(f"{base}/item/m-{user}", json={"query": MUTATION, "variables": {"id": user}})
        return found["posted"]

    def run(users, base):
        return [sync_user(base, user) for user in users]
"""


def test_a_graphql_query_sent_as_post_is_a_read_and_the_mutation_stays_in_order(
    app: App, server: FaultServer, monkeypatch: pytest.MonkeyPatch, capture_events: list[str]
) -> None:
    """A GraphQL query per user is sent ahead and served by exact body; each user's mutation
    reaches the server once, in the sequential order."""
    config = '[[targets]]\nloop = "gql:run"\nitems = "users"\nfetch = "gql:sync_user"\nshadow = true\nconcurrency = 4\n'
    app.write("gql.py", GRAPHQL)
    app.config(config)
    module: Any = importlib.import_module("gql")
    users = [f"u{i}" for i in range(10)]
    before = Seen(server, lambda: module.run(users, server.url))
    install(monkeypatch, capture_events)
    after = Seen(server, lambda: module.run(users, server.url))
    assert after.value == before.value
    writes = [key for key in after.posts if key.startswith("m-")]
    assert writes == [key for key in before.posts if key.startswith("m-")]  # the writes, in order
    assert Counter(after.posts) == Counter(before.posts)  # each POST once
    line = run_line(capture_events)
    assert int(line["reads_served"]) >= 5  # the queries, answered from shadows
    assert int(line["shadows_stopped"]) >= 5  # at each mutation


def test_reads_faster_than_fanning_out_step_aside_without_sending_any_twice(
    app: App, monkeypatch: pytest.MonkeyPatch, capture_events: list[str]
) -> None:
    """An upstream answering at once: the run steps aside (the loop calls directly), and the
    shadows already started still answer their items, so no GET reaches the server twice."""
    from sched_accel._prefetch import _probe

    monkeypatch.setattr(_probe, "PROBE_SECONDS", 1.0)  # "quick" even under coverage's tracer on a busy machine
    monkeypatch.setattr(_probe, "RESUME_SECONDS", 0.05)  # a loaded machine's 0 ms answers wait a millisecond or more
    with FaultServer(latency=0.0) as fast:
        config = (
            '[[targets]]\nloop = "early:run"\nitems = "tokens"\nfetch = "early:fetch"\nshadow = true\nconcurrency = 4\n'
        )
        app.write("early.py", STOPS_EARLY.replace('if token == "t05"', 'if token == "never"'))
        app.config(config)
        module: Any = importlib.import_module("early")
        tokens = [f"f{i:03d}" for i in range(200)]
        before = Seen(fast, lambda: module.run(tokens, fast.url))
        install(monkeypatch, capture_events)
        after = Seen(fast, lambda: module.run(tokens, fast.url))
    assert after.value == before.value
    assert after.gets == before.gets  # each once
    line = run_line(capture_events)
    assert line["stepped_aside"] == "yes"
    assert int(line["prefetched"]) < 100  # the loop made most calls itself


def test_a_module_first_imported_by_a_shadow_is_imported_whole(
    app: App, server: FaultServer, monkeypatch: pytest.MonkeyPatch, capture_events: list[str]
) -> None:
    """A module whose import does what a shadow may not (it writes a file) is imported whole
    when a shadow imports it first: stopping it half-way would leave a half-made module for
    the real run (seen with httpcore, imported by a shadow's first ``httpx.get``)."""
    app.write(
        "lazymod.py",
        f"""
        with open({str(app.root / "imported.txt")!r}, "a") as marker:  # an effect of its import
            marker.write("once\\n")
        VALUE = 7  # defined after the effect: missing from a half-made module
    """,
    )
    source = """
        import requests

        def fetch(base, token):
            value = requests.get(f"{base}/item/{token}").json()["value"]
            if token == "t00":
                return value
            import lazymod  # first imported by a shadow, while the real call for t00 waits
            return value + lazymod.VALUE

        def run(tokens, base):
            return [fetch(base, token) for token in tokens]
    """
    config = '[[targets]]\nloop = "importing:run"\nitems = "tokens"\nfetch = "importing:fetch"\nshadow = true\nconcurrency = 4\n'
    app.write("importing.py", source)
    app.config(config)
    install(monkeypatch, capture_events)
    module: Any = importlib.import_module("importing")
    tokens = TOKENS[:8]
    assert module.run(tokens, server.url) == [FaultServerValue(t) + (7 if t != "t00" else 0) for t in tokens]
    assert (app.root / "imported.txt").read_text() == "once\n"
    assert run_line(capture_events)["prefetch"] == "shadow"


def FaultServerValue(key: str) -> int:  # noqa: N802 - reads as the server's answer
    from ..faultserver import value_of

    return value_of(key)


@pytest.mark.slow
def test_a_shadow_still_reading_when_the_loop_breaks_off_prints_nothing_after_it(app: App, server: FaultServer) -> None:
    """In a real process: shadows still reading when the loop breaks off finish after it, and
    what they print then is dropped too: the output is the sequential run's, byte for byte."""
    app.write(
        "straggler.py",
        f"""
        import requests

        session = requests.Session()

        def fetch(token):
            value = session.get("{server.url}/item/" + token).json()["value"]
            print("fetched", token)  # a shadow's, after its read: never seen
            return value

        def run(tokens):
            for token in tokens:
                fetch(token)
                if token == "t02":
                    break

    """,
    )
    app.write(
        "main.py",
        """
        import time
        import straggler

        straggler.run([f"t{i:02d}" for i in range(24)])
        time.sleep(0.3)  # the shadows sent ahead finish their reads meanwhile
        print("done")
    """,
    )
    app.config(
        '[[targets]]\nloop = "straggler:run"\nitems = "tokens"\nfetch = "straggler:fetch"\nshadow = true\nconcurrency = 8\n'
    )
    off = app.run("main.py")
    on = app.run(
        "main.py",
        env={"ENABLE_SCHEDULER_OPTIMIZATION": "true", "SCHED_ACCEL_CONFIG": str(app.root / "sched_accel.toml")},
    )
    assert off.returncode == on.returncode == 0, on.stderr
    assert on.stdout == off.stdout == "fetched t00\nfetched t01\nfetched t02\ndone\n"
    assert "prefetch=shadow" in on.stderr


READLESS = """
    import asyncio

    CALLS = []

    def score(item):
        CALLS.append(item)
        return sum(ord(c) for c in str(item)) % 97   # work, and no read: nothing a shadow could fetch

    def run(items):
        return [score(item) for item in items]

    async def ascore(item):
        CALLS.append(item)
        return sum(ord(c) for c in str(item)) % 97   # never awaits: a shadow task gets no turn

    async def arun(items):
        return [await ascore(item) for item in items]
"""


@pytest.mark.parametrize("loop", ["run", "arun"])
def test_shadows_that_read_nothing_step_aside(
    app: App, monkeypatch: pytest.MonkeyPatch, capture_events: list[str], loop: str
) -> None:
    """A shadowed function that sends no read (its shadows end without one, or never get a
    turn before the loop reaches their items) has nothing to serve: the run steps aside, so
    the function's work is not done twice for every item (100,000 trivial items cost 11-15 us
    each through shadows, 2 us stepped aside: benchmarks/prefetch.py overhead)."""
    fetch = "readless:ascore" if loop == "arun" else "readless:score"
    app.write("readless.py", READLESS)
    app.config(
        f'[[targets]]\nloop = "readless:{loop}"\nitems = "items"\nfetch = "{fetch}"\nshadow = true\nconcurrency = 4\n'
    )
    module: Any = importlib.import_module("readless")
    items = list(range(2000))
    call = (lambda: anyio.run(module.arun, items)) if loop == "arun" else (lambda: module.run(items))
    expected = call()
    install(monkeypatch, capture_events)
    module.CALLS.clear()
    assert call() == expected
    line = run_line(capture_events)
    assert line["stepped_aside"] == "yes", line
    assert line["prefetch"] == "shadow" and int(line["missed"]) > 1500
    # the real calls, and the shadows run before the verdict (5 to 115 here), not one per item
    assert len(module.CALLS) < 2500
