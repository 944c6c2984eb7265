"""A loop that refuses some items before requesting them (an access check): what is sent
ahead is only what its own code asks for (issue 24, item 7). The first run that shows it
(items passed without being asked for) stops sending ahead; its next runs, in this process
or another, send ahead only what the run before asked for."""

from __future__ import annotations

import importlib
import os
from collections import Counter
from typing import Any

import pytest

import sched_accel

from ..conftest import App
from ..faultserver import FaultServer
from .test_prefetch_shapes import install, run_line

ACL = """
    import httpx

    DENIED = {"u3", "u4", "u7", "u11"}

    def sync(base, users):
        out = []
        with httpx.Client() as client:
            for user in users:
                if user in DENIED:  # refused before any request is made for it
                    out.append(None)
                    continue
                out.append(client.get(f"{base}/item/{user}").json()["value"])
        return out

    def everyone(base, users):
        with httpx.Client() as client:
            return [client.get(f"{base}/item/{user}").json()["value"] for user in users]
"""
USERS = [f"u{i}" for i in range(16)]
DENIED = {"u3", "u4", "u7", "u11"}


def asked(server: FaultServer) -> Counter[str]:
    return Counter(key for _, key in server.log)


@pytest.mark.slow
def test_refused_items_are_not_sent_ahead_once_the_loop_is_seen_refusing(
    app: App, monkeypatch: pytest.MonkeyPatch, capture_events: list[str]
) -> None:
    app.write("acl.py", ACL)
    app.config('[[targets]]\nloop = "acl:sync"\nitems = "users"\nconcurrency = 4\n')
    module: Any = importlib.import_module("acl")
    with FaultServer(latency=0.02) as server:
        plain = module.sync(server.url, USERS)
        expected = asked(server)
        assert not set(expected) & DENIED
        install(monkeypatch, capture_events)
        server.reset_counts()
        assert module.sync(server.url, USERS) == plain  # the first run sees it refuse items
        first = run_line(capture_events)
        assert int(first["not_asked"]) >= 1  # items it moved past, whose requests had gone ahead
        for fresh_process in (False, True):
            if fresh_process:  # another process of the app: the record is on disk
                sched_accel.reset()
                install(monkeypatch, capture_events)
            capture_events.clear()
            server.reset_counts()
            assert module.sync(server.url, USERS) == plain
            assert asked(server) == expected  # nothing for a refused item, nothing twice
            line = run_line(capture_events)
            assert "not_asked" not in line and int(line["prefetched"]) >= 8 and line["ahead"] == "asked_before"


def test_a_loop_that_refuses_nothing_keeps_no_record(
    app: App, monkeypatch: pytest.MonkeyPatch, capture_events: list[str]
) -> None:
    app.write("acl.py", ACL)
    app.config('[[targets]]\nloop = "acl:everyone"\nitems = "users"\nconcurrency = 4\n')
    module: Any = importlib.import_module("acl")
    install(monkeypatch, capture_events)
    with FaultServer(latency=0.02) as server:
        module.everyone(server.url, USERS)
        module.everyone(server.url, USERS)
        assert asked(server) == Counter({user: 2 for user in USERS})
    learned = app.state(here=True) / "learned"
    assert not learned.exists() or not [name for name in os.listdir(learned) if "asked" in name]


SHADOWED = """
    import httpx

    DENIED = {"u3", "u4", "u7", "u11"}

    def profile(client, base, user):
        return client.get(f"{base}/item/{user}").json()["value"]

    def sync(base, users):
        out = []
        with httpx.Client() as client:
            for user in users:
                if user in DENIED:  # refused in the loop's body, before the per-item function is called
                    continue
                out.append(profile(client, base, user))
        return out
"""


@pytest.mark.slow
@pytest.mark.parametrize("level", ["shadow", "pure"])
def test_items_the_loop_body_refuses_are_not_run_ahead_from_the_next_run_on(
    app: App, monkeypatch: pytest.MonkeyPatch, capture_events: list[str], level: str
) -> None:
    """Function level (a shadow of the per-item function, or its value served with pure =
    true): the first run that passes refused items stops running calls ahead; the next runs,
    in this process or another, run ahead only calls the run before made: no read of a refused
    item, none twice."""
    app.write("acl2.py", SHADOWED)
    extra = "pure = true\n" if level == "pure" else ""
    app.config(f'[[targets]]\nloop = "acl2:sync"\nfetch = "acl2:profile"\nitems = "users"\nconcurrency = 4\n{extra}')
    module: Any = importlib.import_module("acl2")
    base: list[str] = []

    with FaultServer(latency=0.02) as server:
        base.append(server.url)
        plain = module.sync(server.url, USERS)
        expected = asked(server)
        install(monkeypatch, capture_events)
        server.reset_counts()
        assert module.sync(server.url, USERS) == plain
        assert int(run_line(capture_events).get("not_asked", "0")) >= 1
        for fresh_process in (False, True):
            if fresh_process:
                sched_accel.reset()
                install(monkeypatch, capture_events)
            capture_events.clear()
            server.reset_counts()
            assert module.sync(server.url, USERS) == plain
            assert asked(server) == expected
            line = run_line(capture_events)
            assert line["ahead"] == "asked_before" and int(line["prefetched"]) >= 8, line


COUNTED = """
    import threading
    import time
    from collections import Counter

    CALLS = Counter()
    LOCK = threading.Lock()
    REFUSED = {"u3", "u4"}

    def score(user):
        with LOCK:
            CALLS[user] += 1
        time.sleep(0.02)  # a slow read: worth running ahead
        return len(user)

    def sync(users):
        out = []
        for user in users:
            if user in REFUSED:
                continue
            out.append(score(user))
        return out
"""


def test_calls_held_in_place_keep_the_items_order_with_repeats_and_new_items(
    app: App, monkeypatch: pytest.MonkeyPatch, capture_events: list[str]
) -> None:
    """After a run that refused items, the next runs hold in place (never send) the calls its
    last run did not make: with repeated items and items new to it, every call is made once,
    in the loop's order (a call held in place runs directly when the loop makes it)."""
    app.write("counted.py", COUNTED)
    app.config(
        '[[targets]]\nloop = "counted:sync"\nfetch = "counted:score"\nitems = "users"\nconcurrency = 3\npure = true\n'
    )
    module: Any = importlib.import_module("counted")
    install(monkeypatch, capture_events)
    first = [f"u{i}" for i in range(10)]
    module.sync(first)  # it refuses u3 and u4: recorded
    for users in (["u1", "u2", "u1", "u9", "new1", "u2", "u3", "new2", "u5", "u1", "new1", "u8"], first):
        module.CALLS.clear()
        capture_events.clear()
        assert module.sync(users) == [len(u) for u in users if u not in {"u3", "u4"}]
        assert module.CALLS == Counter(u for u in users if u not in {"u3", "u4"})  # each once, none refused
        line = run_line(capture_events)
        assert line["ahead"] == "asked_before" and int(line["prefetched"]) + int(line["missed"]) == int(line["items"])
