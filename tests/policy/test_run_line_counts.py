"""Counts that hold (issue 23 item 5): each figure of the run line pinned against what an
independent counter saw: the test upstream's own (a real server on 127.0.0.1), and the loop's
own results.

One run of 40 items at concurrency 8 through httpx, against a server that refuses above its
rate (429 with Retry-After), answers 503 without Retry-After to some keys' first attempts,
resets one, and hangs one past the target's timeout; ``[retry] transient = true`` so that each
kind of failure is retried and counted.
"""

from __future__ import annotations

import pytest

from ..conftest import App
from ..faultserver import FaultServer, answer
from .test_policy_faults import KEYS, install, run_line, run_sync

FAULTS = {"K03": ["503"], "K11": ["503", "503"], "K20": ["reset"], "K30": ["hang"]}


def test_each_field_of_the_run_line_is_what_the_upstream_and_the_loop_saw(
    app: App, monkeypatch: pytest.MonkeyPatch, capture_events: list[str]
) -> None:
    jobs, clients = install(
        app, monkeypatch, top="[retry]\ntransient = true\ninitial = 0.01", options="timeout = 0.5"
    )
    with FaultServer(latency=0.01, per_second=200, burst=8, retry_after="fraction", faults=FAULTS, hang=2.0) as server:
        got = run_sync(jobs, clients, "HttpxApi", server.url)
    fields = run_line(capture_events)
    assert got == [answer(key) for key in KEYS]  # every item served in the end
    seen = sum(server.requests.values())  # the requests that reached the upstream
    assert int(fields["items"]) == int(fields["ok"]) == len(KEYS) and fields["failed"] == "0"
    assert int(fields["prefetched"]) + int(fields["missed"]) == len(KEYS)
    assert int(fields["requests"]) == seen, (fields, server.requests)
    assert int(fields["http_429"]) == server.status[429] >= 1
    assert int(fields["http_503"]) == server.status[503] == 3
    assert int(fields["timeouts"]) == 1  # K30's hang, cut by the timeout (the server still counts it)
    # Each request beyond one per item is a retry; items asked more than once are those retried.
    assert int(fields["retries"]) == seen - len(KEYS)
    assert int(fields["retried"]) == sum(1 for count in server.requests.values() if count > 1)
    assert (fields["gave_up"], fields["lost"], fields["wasted"]) == ("0", "0", "0")
    assert 1 < int(fields["peak_requests"]) <= 8 and server.peak <= 8
