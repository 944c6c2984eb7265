"""The wrappers around the loop's callees (``_interceptors``): a ``returned-by`` call shared by
two targets gives each of them its items."""

from __future__ import annotations

import importlib
import re
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from ..conftest import App
from ..faultserver import FaultServer
from .test_prefetch_shapes import install


@pytest.fixture
def server() -> Iterator[FaultServer]:
    with FaultServer(latency=0.02) as running:
        yield running


SHARED = """
    import httpx

    import repo


    def prices(base):
        with httpx.Client() as client:
            return [client.get(f"{base}/item/price-{token}").json()["value"] for token in repo.active()]


    def volumes(base):
        with httpx.Client() as client:
            return [client.get(f"{base}/item/volume-{token}").json()["value"] for token in repo.active()]
"""
REPO = """
    def active():
        return [f"tok{i}" for i in range(10)]
"""
TARGETS = """
    [[targets]]
    loop = "shared:prices"
    items = "returned-by:repo:active"
    concurrency = 4

    [[targets]]
    loop = "shared:volumes"
    items = "returned-by:repo:active"
    concurrency = 4
"""


def run_lines(captured: list[str]) -> dict[str, dict[str, str]]:
    """The fields of each ``sched_accel.run`` line, by target."""
    lines = [
        dict(re.findall(r"(\w+)=(\S+)", line.split(" - ", 1)[0]))
        for line in captured
        if line.startswith("sched_accel.run ")
    ]
    return {fields["target"]: fields for fields in lines}


@pytest.mark.slow
def test_two_targets_naming_the_same_returned_by_call_each_get_their_items(
    app: App, server: FaultServer, monkeypatch: pytest.MonkeyPatch, capture_events: list[str]
) -> None:
    """Both loops call ``repo.active()``: each run takes its own items, and each is prefetched."""
    app.write("repo.py", REPO)
    app.write("shared.py", SHARED)
    app.config(TARGETS)
    shared: Any = importlib.import_module("shared")
    server.reset_counts()
    before = (shared.prices(server.url), shared.volumes(server.url))
    gets_before = Counter(key for method, key in server.log if method == "GET")
    install(monkeypatch, capture_events)
    server.reset_counts()
    assert (shared.prices(server.url), shared.volumes(server.url)) == before
    assert Counter(key for method, key in server.log if method == "GET") == gets_before
    lines = run_lines(capture_events)
    assert lines["shared:prices"]["prefetched"] == "8" and lines["shared:volumes"]["prefetched"] == "8"
    assert not any("first item: none" in line for line in capture_events)
