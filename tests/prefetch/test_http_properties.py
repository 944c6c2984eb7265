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
import os
import re
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import sched_accel

from ..conftest import App
from ..faultserver import FaultServer
from .test_prefetch_properties import SETTINGS, Case, Outcome, cases, reached

pytestmark = pytest.mark.slow

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


# -- templates made exact: item values the clients encode, through every client ---------------------
EXACT = """
    import json
    import urllib.parse
    import urllib.request

    import httpx
    import requests


    def address(style, item, base):
        # where the item's values go, as the app writes them: the URL and its params
        values = {"q": item["name"], "lat": item["lat"], "id": item["id"]} if isinstance(item, dict) else {"q": item}
        if style == "params":
            return f"{base}/item/w", values
        first, *rest = values.values()
        if style == "path":
            return f"{base}/item/{first}/at/" + "/".join(str(v) for v in rest), None
        return f"{base}/item/{first}", dict(zip(list(values)[1:], rest)) or None


    def loop(library, style, items, stop, base):
        out = []
        client = httpx.Client() if library == "httpx" else requests.Session() if library == "requests" else None
        try:
            for index, item in enumerate(items):
                if index == stop:
                    break  # the loop ends early: what was read ahead for the rest is wasted
                url, params = address(style, item, base)
                if library == "urllib":
                    url = base + urllib.parse.quote(url[len(base):])  # urllib sends the URL as given: the app quotes it
                    if params:
                        url += "?" + urllib.parse.urlencode(params)
                    with urllib.request.urlopen(url) as answer:
                        out.append(json.load(answer)["value"])
                else:
                    out.append(client.get(url, params=params).json()["value"])
        finally:
            if client is not None:
                client.close()
        return out


    async def aloop(library, style, items, stop, base):
        import aiohttp

        out = []
        async with aiohttp.ClientSession() as session:
            for index, item in enumerate(items):
                if index == stop:
                    break
                url, params = address(style, item, base)
                async with session.get(url, params=params) as answer:
                    out.append((await answer.json())["value"])
        return out
"""
#: Characters an item's text is made of: spaces, accents, other scripts, and what the clients
#: quote differently (``+ & = / ? # % ' ! ( )``); no control characters (no client sends them).
ALPHABET = "abcXYZ019 -_.~+&=/?#%'!(),;:@$éüß日本"
TEXTS = st.text(alphabet=ALPHABET, min_size=1, max_size=8)
NUMBERS = st.integers(-1000, 10**6) | st.floats(-1e6, 1e21, allow_nan=False, allow_infinity=False)
ITEMS = TEXTS | NUMBERS | st.fixed_dictionaries({"name": TEXTS, "lat": NUMBERS, "id": st.integers(0, 999)})


@dataclass
class ExactCase:
    """One generated example: items drawn from a small pool (so that some repeat), where the loop stops."""

    items: list[Any]
    style: str
    stop: int | None
    concurrency: int
    window: int


@st.composite
def exact_cases(draw: st.DrawFn) -> ExactCase:
    pool = draw(st.lists(ITEMS, min_size=1, max_size=6))
    items = draw(st.lists(st.sampled_from(pool), min_size=1, max_size=14))
    return ExactCase(
        items=items,
        style=draw(st.sampled_from(["params", "path", "both"])),
        stop=draw(st.none() | st.integers(1, len(items))),
        concurrency=draw(st.integers(1, 6)),
        window=draw(st.integers(1, 8)),
    )


EXACT_SETTINGS = settings(SETTINGS, max_examples=int(os.environ.get("SCHED_ACCEL_EXAMPLES", "25")))


class ExactHarness:
    """The app and the server; each example runs the loop over every item (which URL each
    item asks for), then up to its stop unpatched, then patched."""

    def __init__(self, app: App, monkeypatch: pytest.MonkeyPatch, capture: list[str], server: FaultServer) -> None:
        from sched_accel._prefetch import _probe

        app.write("exactjobs.py", EXACT)
        monkeypatch.setenv("ENABLE_SCHEDULER_OPTIMIZATION", "true")
        monkeypatch.setattr(_probe, "PROBE_SECONDS", 0)  # never step aside: prefetch every example
        self.app, self.capture, self.server = app, capture, server
        self.jobs: Any = importlib.import_module("exactjobs")

    def prepare(self, case: ExactCase, name: str, *, patched: bool) -> None:
        sched_accel.uninstall()
        self.server.reset_counts()
        # the module's one server: what Harness's last example left (a key failing with 500s,
        # latencies) must not answer this one (a 500 to item "0" broke a run in CI)
        self.server.faults, self.server.latencies = {}, {}
        if patched:
            self.app.config(
                f'[[targets]]\nloop = "exactjobs:{name}"\nitems = 2\n'
                f"concurrency = {case.concurrency}\nwindow = {case.window}\n"
            )
            assert sched_accel.install() is True
            self.capture.clear()

    def gets(self) -> list[str]:
        for thread in threading.enumerate():  # requests sent ahead and still running end first
            if thread.name.startswith("sched_accel-exactjobs:"):
                thread.join(5)
        return [key for method, key in self.server.log if method == "GET"]

    def check(
        self, case: ExactCase, every: list[str], sequential: tuple[Any, list[str]], accelerated: tuple[Any, list[str]]
    ) -> None:
        """The same values; every URL the loop asked for reached the server as often as
        sequentially; more only for the items it never reached (it stopped early), within the
        window, each counted as wasted."""
        assert accelerated[0] == sequential[0]
        before, after = Counter(sequential[1]), Counter(accelerated[1])
        assert not before - after  # each request the loop made was made
        extra = after - before
        reached = len(case.items) if case.stop is None else case.stop
        unreached = Counter(every[reached : reached + case.window])
        assert not extra - unreached, (extra, unreached)
        fields = dict(
            re.findall(
                r"(\w+)=(\S+)",
                next(line for line in self.capture if line.startswith("sched_accel.run ")).split(" - ", 1)[0],
            )
        )
        assert sum(extra.values()) <= int(fields["wasted"])


@pytest.fixture
def exact(app: App, monkeypatch: pytest.MonkeyPatch, capture_events: list[str], server: FaultServer) -> ExactHarness:
    return ExactHarness(app, monkeypatch, capture_events, server)


def run_exact(
    exact: ExactHarness, case: ExactCase, library: str, *, stop: int | None, patched: bool
) -> tuple[Any, list[str]]:
    exact.prepare(case, "loop", patched=patched)
    value = exact.jobs.loop(library, case.style, case.items, stop, exact.server.url)
    return value, exact.gets()


#: Found by hypothesis: a ``/`` written into the path splits a segment, so a pattern learned
#: from two items named ``/`` predicted the third's URL with the wrong segments; a ``#`` ends
#: the URL (the client sends it without the rest), so a prediction without it was sent again;
#: ``%`` written into a URL is ``%25`` to yarl, as ``quote`` writes it, so ``:`` was predicted
#: as quote writes it (``%3A``) while yarl keeps it.
SPLIT_BY_A_SLASH = ExactCase(
    items=[{"name": "/", "lat": 0, "id": 1}, {"name": "/", "lat": 1, "id": 0}, {"name": "0", "lat": 0, "id": 0}],
    style="path",
    stop=None,
    concurrency=1,
    window=1,
)
ENDED_BY_A_HASH = ExactCase(
    items=[{"name": "#0", "lat": 0, "id": 1}, {"name": "?", "lat": 0, "id": 0}, {"name": "#0", "lat": 0, "id": 1}],
    style="both",
    stop=None,
    concurrency=1,
    window=1,
)
QUOTED_OR_NOT = ExactCase(items=["0", "%", ":"], style="path", stop=None, concurrency=1, window=1)


@pytest.mark.parametrize("library", ["httpx", "requests", "urllib"])
@EXACT_SETTINGS
@given(case=exact_cases())
@example(case=SPLIT_BY_A_SLASH)
@example(case=ENDED_BY_A_HASH)
@example(case=QUOTED_OR_NOT)
def test_each_url_reaches_the_server_as_often_as_the_loop_asks_for_it(
    exact: ExactHarness, case: ExactCase, library: str
) -> None:
    """Strings with spaces and other scripts, ints, floats, dicts of them, repeats, through httpx,
    requests and urllib, in params, the path or both: no URL is sent more often than sequentially."""
    every = run_exact(exact, case, library, stop=None, patched=False)[1]
    sequential = run_exact(exact, case, library, stop=case.stop, patched=False)
    exact.check(case, every, sequential, run_exact(exact, case, library, stop=case.stop, patched=True))


async def arun_exact(exact: ExactHarness, case: ExactCase, *, stop: int | None, patched: bool) -> tuple[Any, list[str]]:
    exact.prepare(case, "aloop", patched=patched)
    value = await exact.jobs.aloop("aiohttp", case.style, case.items, stop, exact.server.url)
    return value, exact.gets()


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
@pytest.mark.anyio
@EXACT_SETTINGS
@given(case=exact_cases())
@example(case=SPLIT_BY_A_SLASH)
@example(case=ENDED_BY_A_HASH)
@example(case=QUOTED_OR_NOT)
async def test_each_url_reaches_the_server_as_often_as_an_aiohttp_loop_asks_for_it(
    exact: ExactHarness, case: ExactCase
) -> None:
    """The same through aiohttp, whose params yarl encodes."""
    pytest.importorskip("aiohttp")
    every = (await arun_exact(exact, case, stop=None, patched=False))[1]
    sequential = await arun_exact(exact, case, stop=case.stop, patched=False)
    exact.check(case, every, sequential, await arun_exact(exact, case, stop=case.stop, patched=True))
