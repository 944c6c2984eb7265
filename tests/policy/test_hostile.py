"""What a hostile or broken upstream can make the policy do is bounded by the owner's settings
(issue 24, item 5): a ``Retry-After`` of a day pauses the host no longer than the retry deadline."""

from __future__ import annotations

import importlib
import time
from typing import Any

import pytest

from ..conftest import App
from ..faultserver import FaultServer
from ..prefetch.test_prefetch_shapes import install, run_line

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
    longest, 300 s; a hostile one said a day): each item
    gives up at once (the wait does not fit its deadline), and the host's pause is cut to the
    deadline, so the run ends in seconds with the sequential run's answers, not a day later."""
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
    assert run_line(capture_events)["gave_up"] == "7"  # each at once: the wait did not fit its deadline
