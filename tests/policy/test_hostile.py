"""What a hostile or broken upstream can make the policy do is bounded by the owner's settings
(issue 24, item 5): a ``Retry-After`` of a day pauses the host no longer than the retry deadline."""

from __future__ import annotations

import importlib
import time
from typing import Any

import pytest

from sched_accel._prefetch import _probe

from ..conftest import App
from ..faultserver import FaultServer
from ..prefetch.test_prefetch_shapes import install, run_line

pytestmark = pytest.mark.slow

LOOP = """
    import requests

    SESSION = requests.Session()

    def poll(base, keys):
        return [SESSION.get(f"{base}/item/{key}").status_code for key in keys]
"""


def test_a_retry_after_of_a_day_holds_the_host_no_longer_than_the_retry_deadline(
    app: App, monkeypatch: pytest.MonkeyPatch, capture_events: list[str]
) -> None:
    """Every request past the first answered 429 with a long Retry-After (the test server's
    longest, 300 s; a hostile one said a day), to a run that fans out (never steps aside): each
    item gives up at once (the wait does not fit its deadline), and the host's pause is cut to
    the deadline, so the run ends in seconds with the sequential run's answers, not a day later."""
    monkeypatch.setattr(_probe, "PROBE_SECONDS", 0)  # refusals come fast: it would step aside
    app.write("hostile.py", LOOP)
    app.config('[retry]\ndeadline = 1\n\n[[targets]]\nloop = "hostile:poll"\nitems = "keys"\nconcurrency = 4\n')
    module: Any = importlib.import_module("hostile")
    keys = [f"h{i}" for i in range(8)]
    with FaultServer(latency=0.02, per_second=1e-5, burst=1, retry_after="int") as server:
        sequential = module.poll(server.url, keys)
    assert sequential == [200] + [429] * 7
    with FaultServer(latency=0.02, per_second=1e-5, burst=1, retry_after="int") as server:
        install(monkeypatch, capture_events)
        started = time.monotonic()
        accelerated = module.poll(server.url, keys)
        seconds = time.monotonic() - started
    assert accelerated == sequential
    assert seconds < 10, seconds  # not 300 s (the server's Retry-After), nor a day
    # Each at once: the wait did not fit its deadline, so it gave up, or (refused while the run was
    # no more than sequential, as it is under a slow tracer) it was not retried at all.
    line = run_line(capture_events)
    assert line["retries"] == "0" and int(line["gave_up"]) + int(line["ok"]) <= 8, line


def test_refusals_to_a_run_no_more_than_sequential_neither_pause_nor_retry(
    app: App, monkeypatch: pytest.MonkeyPatch, capture_events: list[str]
) -> None:
    """The same refusals to a run that stepped aside (its requests one at a time, as the plain
    loop's): the sequential loop met them too, so each is answered at once, as it was, and no
    Retry-After holds the loop (issue 23, item 4: never slower than the plain loop)."""
    monkeypatch.setattr(_probe, "PROBE_SECONDS", 1.0)  # "quick" even under coverage's tracer: it steps aside
    app.write("hostile.py", LOOP)
    app.config('[retry]\ndeadline = 30\n\n[[targets]]\nloop = "hostile:poll"\nitems = "keys"\nconcurrency = 4\n')
    module: Any = importlib.import_module("hostile")
    keys = [f"h{i}" for i in range(8)]
    with FaultServer(latency=0.02, per_second=1e-5, burst=1, retry_after="int") as server:
        started = time.monotonic()
        sequential = module.poll(server.url, keys)
        plain = time.monotonic() - started
    with FaultServer(latency=0.02, per_second=1e-5, burst=1, retry_after="int") as server:
        install(monkeypatch, capture_events)
        started = time.monotonic()
        accelerated = module.poll(server.url, keys)
        seconds = time.monotonic() - started
        seen = sum(server.requests.values())
    assert accelerated == sequential == [200] + [429] * 7
    line = run_line(capture_events)
    assert (line["stepped_aside"], line["retries"], line["peak_requests"]) == ("yes", "0", "1")
    assert seen == len(keys)  # each request once: none retried
    assert seconds < plain + 1.0, (seconds, plain)  # not a Retry-After (1 s or more) later
