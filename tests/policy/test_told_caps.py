"""A rate an upstream tells is taken only as far as the plain loop would be held (issue 24, item 5).

A hostile or broken upstream says ``RateLimit-Policy: "x";q=1;w=5`` (one request per 5 s) on
every answer, while it serves each request at once. Followed, 12 items would take a minute; the
plain loop takes a quarter of a second. Against a real server on 127.0.0.1:

- fields alone, every request served: paced no slower than the plain loop (one request per
  median latency of the host's answers), and not kept for the next run;
- the same rate enforced by a 429: followed further, but no slower than 10 latencies apart, and
  kept for the next run (which starts at it as at an enforced one).
"""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest

from ..conftest import App
from ..faultserver import FaultServer, answer
from .test_policy_faults import install, run_line
from .test_told import HOST, collect, told

pytestmark = pytest.mark.slow

KEYS = [f"L{i:02d}" for i in range(12)]
EXPECTED = [answer(key) for key in KEYS]
LATENCY = 0.02
LIE = {"RateLimit-Policy": '"x";q=1;w=5'}  # 0.2 requests a second


def liar(**options: Any) -> FaultServer:
    return FaultServer(latency=LATENCY, tell=LIE, **options)


def kept(app: App) -> dict[str, Any]:
    path = app.state(here=True) / "hosts.json"
    return json.loads(path.read_text())["hosts"] if path.exists() else {}


def plain_seconds() -> float:
    """The plain loop's wall time against the same server: its requests one after the other."""
    with liar() as upstream, httpx.Client(base_url=upstream.url, timeout=5) as client:
        started = time.monotonic()
        assert [client.get(f"/item/{key}").json() for key in KEYS] == EXPECTED
        return time.monotonic() - started


def test_a_rate_told_on_answers_all_served_paces_no_slower_than_the_plain_loop(
    app: App, monkeypatch: pytest.MonkeyPatch, capture_events: list[str]
) -> None:
    jobs, clients = install(app, monkeypatch, concurrency=4)
    with liar() as upstream:
        started = time.monotonic()
        assert collect(jobs, clients, upstream.url, keys=KEYS) == EXPECTED
        seconds = time.monotonic() - started
    assert told() == pytest.approx(0.2)  # it was read: the cap, not deafness, keeps the run fast
    assert upstream.ok == {key: 1 for key in KEYS}
    assert run_line(capture_events)["outcome"] == "ok"
    # Followed, 11 intervals of 5 s; capped at the plain loop's pace: about 12 latencies at most.
    assert seconds < len(KEYS) * LATENCY * 3 + 1.0, seconds
    assert HOST not in kept(app)  # never enforced: the next run does not start at it


def test_the_capped_run_is_no_slower_than_the_plain_one(
    app: App, monkeypatch: pytest.MonkeyPatch, capture_events: list[str]
) -> None:
    jobs, clients = install(app, monkeypatch, concurrency=4)
    plain = plain_seconds()
    with liar() as upstream:
        started = time.monotonic()
        assert collect(jobs, clients, upstream.url, keys=KEYS) == EXPECTED
        seconds = time.monotonic() - started
    assert seconds < plain * 1.25 + 0.2, (seconds, plain)


def test_a_told_rate_the_host_enforced_is_held_to_ten_latencies_and_kept(
    app: App, monkeypatch: pytest.MonkeyPatch, capture_events: list[str]
) -> None:
    """One 429 (its Retry-After 0.05 s) makes the lie an enforced limit: it paces further, but at
    most 10 latencies apart (12 items: about 2.4 s, not 55 s), and it is kept for the next run."""
    jobs, clients = install(app, monkeypatch, concurrency=4)
    with liar(faults={KEYS[2]: ["429"]}) as upstream:
        started = time.monotonic()
        assert collect(jobs, clients, upstream.url, keys=KEYS) == EXPECTED  # the refused item retried
        seconds = time.monotonic() - started
    line = run_line(capture_events)
    assert (line["lost"], line["http_429"]) == ("0", "1")
    assert seconds < len(KEYS) * 10 * LATENCY * 2 + 1.0, seconds
    assert kept(app)[HOST]["per_second"] == pytest.approx(0.2)
