"""Counts that hold, prefetch side (issue 23 item 5): the run line's figures of HTTP-level and
shadow runs pinned against what an independent counter saw: the test upstream's own (a real
server on 127.0.0.1: each GET per key, in arrival order, with its arrival time) and the loop's
own code (the requests it made, in which thread).

Each of these waits for the upstream to settle before comparing: a request that went out as
the loop ended may arrive a moment after it returned.
"""

from __future__ import annotations

import importlib
import time
from collections import Counter
from typing import Any

import pytest

from ..conftest import App, logged
from ..faultserver import FaultServer
from .test_prefetch_shapes import install


def run_line(captured: list[str]) -> dict[str, Any]:
    """The one run event's fields, as logged (numbers are numbers): what these tests pin."""
    [run] = logged(captured, "run")
    return run.fields


def gets(server: FaultServer) -> Counter[str]:
    """The GETs the upstream saw, per key."""
    with server.lock:
        return Counter(key for method, key in server.log if method == "GET")


def settled(server: FaultServer, done: Any = lambda: True, seconds: float = 2.0) -> Counter[str]:
    """The upstream's GETs once none has arrived for 0.1 s and ``done()`` holds (at most ``seconds``)."""
    deadline = time.monotonic() + seconds
    seen = gets(server)
    while time.monotonic() < deadline:
        time.sleep(0.1)
        now = gets(server)
        if now == seen and done():
            break
        seen = now
    return seen


# -- shadow runs: reads_served, reads_live, shadows_stopped ----------------------------------------

SHADOWED = """
    import threading
    import time

    import requests

    session = requests.Session()
    REAL = []  # the GETs the loop's own calls got an answer to (its thread)
    AHEAD = []  # the GETs shadows got an answer to (the workers' threads)
    STARTED = []  # the shadows that began
    ENDED = []


    def mine():
        return threading.current_thread() is threading.main_thread()


    def get(url):
        data = session.get(url).json()
        (REAL if mine() else AHEAD).append(url)
        return data


    def sync_one(base, token):
        if not mine():
            STARTED.append(token)
        try:
            data = get(f"{base}/item/{token}")
            detail = get(f"{base}/item/detail-{data['value']}")  # named by the first answer
            session.post(f"{base}/item/{token}", json={"seen": data["value"]})  # a write: a shadow stops here
            return data["value"], detail["value"]
        finally:
            if not mine():
                ENDED.append(token)


    def run(tokens, base):
        out = [sync_one(base, token) for token in tokens]
        # The run line is logged as the loop returns: a shadow still running then (the last
        # item's, between its served reads and its POST) stops after it, uncounted. Wait for them.
        deadline = time.monotonic() + 2
        while len(ENDED) < len(STARTED) and time.monotonic() < deadline:
            time.sleep(0.005)
        time.sleep(0.02)  # from the shadow's own finally to its run's count of it
        return out
"""


def test_reads_served_and_live_are_the_loops_reads_split_as_the_upstream_saw_them(
    app: App, monkeypatch: pytest.MonkeyPatch, capture_events: list[str]
) -> None:
    """Each of the loop's reads is either answered from its item's shadow (reads_served) or
    sent by the loop itself (reads_live): together, the GETs its own calls made. What reached
    the upstream is the shadows' reads and the live ones, so reads_live is the upstream's GETs
    less those the shadows got answers to. Every shadow stops (at its POST, or at a read once
    the loop reached its item): shadows_stopped is the shadows that began (the loop waits for
    its shadows to end before it returns: one that stops after the run line is not in it)."""
    app.write("shadowed.py", SHADOWED)
    app.config(
        '[[targets]]\nloop = "shadowed:run"\nitems = "tokens"\nfetch = "shadowed:sync_one"\nshadow = true\n'
        "concurrency = 4\n"
    )
    module: Any = importlib.import_module("shadowed")
    tokens = [f"s{i:02d}" for i in range(12)]
    with FaultServer(latency=0.03) as server:
        plain = module.run(tokens, server.url)
        sequential = gets(server)
        server.reset_counts()
        for kept in (module.REAL, module.AHEAD, module.STARTED, module.ENDED):
            kept.clear()
        install(monkeypatch, capture_events)
        assert module.run(tokens, server.url) == plain
        upstream = settled(server)
    line = run_line(capture_events)
    served, live = line["reads_served"], line["reads_live"]
    assert line["prefetch"] == "shadow" and upstream == sequential  # each read once, as the plain loop sent it
    assert served + live == len(module.REAL) == 2 * len(tokens)
    assert live == upstream.total() - len(module.AHEAD), (line, len(module.AHEAD))
    assert served == len(module.AHEAD) >= 1 and live >= 1  # every read a shadow sent answered its item
    assert line["shadows_stopped"] == len(module.STARTED) >= 1
    assert line["prefetched"] + line["missed"] == line["items"] == len(tokens)
    [stopped] = [entry for entry in capture_events if entry.startswith("sched_accel.shadow_stopped ")]
    assert f"shadows={len(module.STARTED)}" in stopped


# -- stepped_aside: the probe's verdict, as the upstream saw the requests arrive ----------------------

ASIDE = """
    import httpx

    CLIENT = httpx.Client()


    def refresh(tokens, base):
        return [CLIENT.get(f"{base}/item/{token}").json()["value"] for token in tokens]
"""


def one_at_a_time(server: FaultServer) -> int:
    """How many of the upstream's first GETs came one at a time: each after the one before it
    was answered (its arrival at least that one's latency later)."""
    with server.lock:
        arrivals = [(at, key) for at, (method, key) in zip(server.arrived, server.log, strict=True) if method == "GET"]
    alone = 1
    for (at, key), (following, _) in zip(arrivals, arrivals[1:], strict=False):
        if following - at < server.latencies.get(key, server.latency):
            break
        alone += 1
    return min(alone, len(arrivals))


def aside(
    app: App, monkeypatch: pytest.MonkeyPatch, capture: list[str], server: FaultServer, tokens: list[str]
) -> dict[str, Any]:
    """The loop of ASIDE over ``tokens`` patched, against ``server``: its run line, once each
    GET reached the upstream once."""
    from sched_accel._prefetch import _probe

    monkeypatch.setattr(_probe, "PROBE_SECONDS", 0.05)  # a 0-3 ms answer is quick even on a loaded machine
    monkeypatch.setattr(_probe, "RESUME_SECONDS", 0.03)  # and waits below this; 60 ms answers above it
    app.write("aside.py", ASIDE)
    app.config('[[targets]]\nloop = "aside:refresh"\nitems = "tokens"\nconcurrency = 4\n')
    module: Any = importlib.import_module("aside")
    install(monkeypatch, capture)
    try:
        module.refresh(tokens, server.url)
    finally:
        module.CLIENT.close()
    assert settled(server) == Counter(tokens)  # each once
    line = run_line(capture)
    assert line["prefetched"] + line["missed"] == line["items"] == len(tokens)
    return line


def test_stepped_aside_yes_is_a_run_whose_requests_reached_the_upstream_one_at_a_time(
    app: App, monkeypatch: pytest.MonkeyPatch, capture_events: list[str]
) -> None:
    """Answers quicker than fanning out: the probe (the one request sent ahead) is answered
    within its time, the run steps aside for good, and the loop sends the rest itself: the
    upstream saw every request after the one before it was answered."""
    tokens = [f"y{i:02d}" for i in range(30)]
    with FaultServer(latency=0.003) as server:
        line = aside(app, monkeypatch, capture_events, server, tokens)
    assert line["stepped_aside"] == "yes", line
    assert one_at_a_time(server) == len(tokens)
    assert line["prefetched"] <= 1 and line["peak_requests"] == 1


def test_stepped_aside_resumed_is_a_run_that_went_one_at_a_time_then_fanned_out(
    app: App, monkeypatch: pytest.MonkeyPatch, capture_events: list[str]
) -> None:
    """The first answers are quick (the probe steps aside), the next ones slow: the direct
    requests timed after the probe wait long, and prefetching resumes. The upstream saw the
    first requests one at a time, at least the probe's and the RESUME_AFTER timed ones, then
    several at once."""
    from sched_accel._prefetch._probe import RESUME_AFTER

    tokens = [f"r{i:02d}" for i in range(24)]
    with FaultServer(latency=0.06) as server:
        server.latencies.update(dict.fromkeys(tokens[:3], 0.0))
        line = aside(app, monkeypatch, capture_events, server, tokens)
    assert line["stepped_aside"] == "resumed", line
    assert 1 + RESUME_AFTER <= one_at_a_time(server) < len(tokens)
    assert server.peak > 1 and line["peak_requests"] > 1 and line["prefetched"] > 1


def test_no_stepped_aside_is_a_run_that_fanned_out_at_the_probe(
    app: App, monkeypatch: pytest.MonkeyPatch, capture_events: list[str]
) -> None:
    """Answers slower than the probe's time: no stepped_aside in the line, and the upstream saw
    requests together right after the loop's first ones."""
    tokens = [f"n{i:02d}" for i in range(12)]
    with FaultServer(latency=0.06) as server:
        line = aside(app, monkeypatch, capture_events, server, tokens)
    assert "stepped_aside" not in line, line
    assert one_at_a_time(server) <= 4 and server.peak > 1


# -- items = "learned": the requests recorded, and those replayed ------------------------------------

REPLAYED = """
    import httpx

    CLIENT = httpx.Client()  # open across runs: a request a worker started always reaches the upstream
    ASKED = []  # the GETs the loop made, in order
    SKIP = set()  # items the loop passes over this time


    def refresh(tokens, base):
        out = []
        for token in tokens:
            if token in SKIP:
                continue
            ASKED.append(token)
            out.append(CLIENT.get(f"{base}/item/{token}").json()["value"])
        return out
"""


def test_learned_and_a_replays_counts_are_the_loops_requests_and_the_upstreams(
    app: App, monkeypatch: pytest.MonkeyPatch, capture_events: list[str]
) -> None:
    """``items = "learned"`` (nothing declared): the first run sends nothing ahead and records
    the GETs the loop made (learned=); the second replays them, and the loop now passes over
    some items. learned is again the loop's own GETs, prefetched + missed too, and wasted is
    what the upstream saw beyond them: the replayed requests the loop never made."""
    app.write("replayed.py", REPLAYED)
    app.config('[[targets]]\nloop = "replayed:refresh"\nconcurrency = 4\n')
    module: Any = importlib.import_module("replayed")
    tokens = [f"l{i:02d}" for i in range(20)]
    install(monkeypatch, capture_events)
    try:
        with FaultServer(latency=0.02) as server:
            module.refresh(tokens, server.url)
            first, upstream = run_line(capture_events), settled(server)
            assert upstream == Counter(module.ASKED) == Counter(tokens)
            assert (first["learned"], first["prefetched"], first["missed"]) == (len(tokens), 0, len(tokens))
            capture_events.clear()
            server.reset_counts()
            module.ASKED.clear()
            module.SKIP.update({"l05", "l11", "l12", "l17"})
            module.refresh(tokens, server.url)
            second, upstream = run_line(capture_events), settled(server)
    finally:
        module.CLIENT.close()
    asked = Counter(module.ASKED)
    assert not asked - upstream  # every GET the loop made reached the upstream ...
    assert set(upstream) <= set(tokens) and max(upstream.values()) == 1  # ... once, and nothing else did
    assert second["learned"] == second["prefetched"] + second["missed"] == len(module.ASKED)
    assert second["wasted"] == (upstream - asked).total() >= 1, (second, upstream - asked)
    assert second["prefetched"] >= 1 and second["requests"] == upstream.total()


# -- not_asked: items the loop refused whose requests had gone ahead ----------------------------------

REFUSING = """
    import httpx

    CLIENT = httpx.Client()  # open after the loop: a request a worker started always reaches the upstream
    DENIED = {"u3", "u4", "u7", "u11"}


    def sync(base, users):
        out = []
        for user in users:
            if user in DENIED:  # refused before any request is made for it
                out.append(None)
                continue
            out.append(CLIENT.get(f"{base}/item/{user}").json()["value"])
        return out
"""


def test_not_asked_is_the_refused_items_requests_that_reached_the_upstream(
    app: App, monkeypatch: pytest.MonkeyPatch, capture_events: list[str]
) -> None:
    """A loop that refuses some items before requesting them (an access check): the plain loop
    never requests a refused item, so each GET of one the upstream saw was sent ahead, and the
    run line counts it in not_asked (and in wasted: none other is)."""
    app.write("refusing.py", REFUSING)
    app.config('[[targets]]\nloop = "refusing:sync"\nitems = "users"\nconcurrency = 4\n')
    module: Any = importlib.import_module("refusing")
    users = [f"u{i}" for i in range(16)]
    try:
        with FaultServer(latency=0.02) as server:
            plain = module.sync(server.url, users)
            assert not set(gets(server)) & module.DENIED
            server.reset_counts()
            install(monkeypatch, capture_events)
            assert module.sync(server.url, users) == plain
            upstream = settled(server)
    finally:
        module.CLIENT.close()
    line = run_line(capture_events)
    refused = sum(count for key, count in upstream.items() if key in module.DENIED)
    assert line["not_asked"] == refused >= 1, (line, upstream)
    assert line["wasted"] == refused
    assert all(upstream[user] == 1 for user in users if user not in module.DENIED)


# -- mismatched: a request sent ahead that the loop made with other headers ---------------------------

CHANGING = """
    import httpx

    CLIENT = httpx.Client()
    ODD = []  # the requests the loop made with the other header


    def poll(base, tokens):
        out = []
        for token in tokens:
            headers = {"X-Region": "eu" if token == "m06" else "us"}  # one item's request differs
            if token == "m06":
                ODD.append(token)
            out.append(CLIENT.get(f"{base}/item/{token}", headers=headers).json()["value"])
        return out
"""


def test_mismatched_is_the_loops_requests_that_differ_from_the_one_sent_ahead(
    app: App, monkeypatch: pytest.MonkeyPatch, capture_events: list[str]
) -> None:
    """One item's request carries another header than the pattern learned: what was sent ahead
    for it is not served (mismatched: the one request the loop made so), and the pattern
    retires. What the upstream saw beyond the loop's own requests is what was sent for nothing
    (wasted)."""
    app.write("changing.py", CHANGING)
    app.config('[[targets]]\nloop = "changing:poll"\nitems = "tokens"\nconcurrency = 4\n')
    module: Any = importlib.import_module("changing")
    tokens = [f"m{i:02d}" for i in range(14)]
    try:
        with FaultServer(latency=0.03) as server:
            install(monkeypatch, capture_events)
            module.poll(server.url, tokens)
            upstream = settled(server)
    finally:
        module.CLIENT.close()
    line = run_line(capture_events)
    assert line["mismatched"] == len(module.ODD) == 1, line
    assert line["wasted"] == (upstream - Counter(tokens)).total()
    assert not Counter(tokens) - upstream and line["prefetched"] >= 1


# -- stale: answers sent ahead that had aged past max_age when the loop asked -------------------------

PAUSING = """
    import time

    import httpx

    CLIENT = httpx.Client()


    def poll(base, tokens):
        out = []
        for token in tokens:
            if token == "a04":
                time.sleep(0.3)  # longer than max_age: what was sent ahead for the rest went stale
            out.append(CLIENT.get(f"{base}/item/{token}").json()["value"])
        return out
"""


def test_stale_is_the_answers_the_upstream_gave_twice_once_they_aged(
    app: App, monkeypatch: pytest.MonkeyPatch, capture_events: list[str]
) -> None:
    """A loop that pauses longer than max_age: each answer sent ahead that was older than that
    when the loop asked is not served (stale), and the loop asks the upstream again: stale is
    the GETs the upstream saw twice, each sent ahead for nothing (wasted), and its item one the
    loop requested itself (missed, not prefetched)."""
    app.write("pausing.py", PAUSING)
    app.config('[[targets]]\nloop = "pausing:poll"\nitems = "tokens"\nconcurrency = 4\nmax_age = 0.1\n')
    module: Any = importlib.import_module("pausing")
    tokens = [f"a{i:02d}" for i in range(12)]
    try:
        with FaultServer(latency=0.02) as server:
            install(monkeypatch, capture_events)
            module.poll(server.url, tokens)
            upstream = settled(server)
    finally:
        module.CLIENT.close()
    line = run_line(capture_events)
    twice = (upstream - Counter(tokens)).total()
    assert set(upstream) == set(tokens) and line["stale"] == line["wasted"] == twice >= 1, (line, upstream)
    assert line["missed"] >= twice and line["prefetched"] <= len(tokens) - twice


REFUSING_CALLS = """
    import httpx

    CLIENT = httpx.Client()  # open after the loop: a call a worker started always reaches the upstream
    DENIED = {"u3", "u4", "u7", "u11"}
    PASSED = []  # the items the loop refused


    def profile(base, user):
        return CLIENT.get(f"{base}/item/{user}").json()["value"]


    def sync(base, users):
        out = []
        for user in users:
            if user in DENIED:  # refused in the loop's body, before the per-item function is called
                PASSED.append(user)
                continue
            out.append(profile(base, user))
        return out
"""


@pytest.mark.parametrize("level", ["pure", "shadow"])
def test_not_asked_of_a_function_level_run_is_the_refused_items_it_had_predicted(
    app: App, monkeypatch: pytest.MonkeyPatch, capture_events: list[str], level: str
) -> None:
    """Function level: every item is predicted once the probe has decided (the window holds
    them all), so each item the loop refuses after that is one it moved past with its call
    predicted: not_asked is the loop's own count of them. Those calls that had started are
    wasted, and only they reached the upstream (a shadow's may be stopped before its read)."""
    app.write("refusing_calls.py", REFUSING_CALLS)
    extra = "pure = true\n" if level == "pure" else "shadow = true\n"
    app.config(
        f'[[targets]]\nloop = "refusing_calls:sync"\nfetch = "refusing_calls:profile"\nitems = "users"\n'
        f"concurrency = 4\n{extra}"
    )
    module: Any = importlib.import_module("refusing_calls")
    users = [f"u{i}" for i in range(16)]
    try:
        with FaultServer(latency=0.02) as server:
            plain = module.sync(server.url, users)
            server.reset_counts()
            module.PASSED.clear()
            install(monkeypatch, capture_events)
            assert module.sync(server.url, users) == plain
            upstream = settled(server)
    finally:
        module.CLIENT.close()
    line = run_line(capture_events)
    refused = sum(count for key, count in upstream.items() if key in module.DENIED)
    assert line["not_asked"] == len(module.PASSED) == len(module.DENIED), line
    if level == "pure":
        assert line["wasted"] == refused
    else:
        assert line["wasted"] >= refused
    assert all(upstream[user] == 1 for user in users if user not in module.DENIED)
