"""The cookies an answer sets reach the app's jar when the loop gets that answer, never
earlier: aiohttp fills a session's jar inside ``ClientSession._request``, the layer we send
and answer at, so a request sent ahead (or a shadow's read) used to fill it before the loop
asked, and an answer served to the loop never did. ``_integrations.aiohttp``: ``stores_cookies``
left alone while a request is kept for the loop, the cookies stored by ``serve``.

The upstream here sets one cookie per item (``seen_<key>=1``); each loop notes the jar's
cookies before each of its requests: accelerated, the same as sequentially, item by item.
Set for another path, the cookies change nothing the requests carry: they are sent ahead and
served. Set for the requests' own path, each request carries one more cookie than the last:
the loop's credentials change from item to item, so nothing is sent ahead with an earlier
item's (at HTTP level none at all; shadows stop at the first real call that shows it, the
reads of those that ran before it wasted), the cookies' jar as above.
"""

from __future__ import annotations

import importlib
import json
import threading
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import anyio
import pytest

from ..conftest import App
from .test_prefetch_shapes import install, run_line

pytest.importorskip("aiohttp")

KEYS = [f"k{i}" for i in range(10)]

JOB = """
import aiohttp


async def fetch(session, base, key):
    async with session.get(f"{base}/item/{key}") as answer:
        return (await answer.read()).decode()


async def http_level(base, keys):
    out = []
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:  # an IP address: unsafe
        for key in keys:
            jar = sorted(cookie.key for cookie in session.cookie_jar)
            async with session.get(f"{base}/item/{key}") as answer:
                out.append((jar, (await answer.read()).decode()))
    return out


async def shadowed(base, keys):
    out = []
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:  # an IP address: unsafe
        for key in keys:
            jar = sorted(cookie.key for cookie in session.cookie_jar)
            out.append((jar, await fetch(session, base, key)))
    return out
"""


class _Upstream(BaseHTTPRequestHandler):
    counts: Counter[str]
    lock: threading.Lock
    cookie_path: str

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        key = self.path.rsplit("/", 1)[-1]
        with self.lock:
            self.counts[key] += 1
        anyio.run(anyio.sleep, 0.02)  # a little latency: the loop's requests are worth sending ahead
        body = json.dumps({"key": key}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Set-Cookie", f"seen_{key}=1; Path={self.cookie_path}")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(params=["/seen", "/"], ids=["cookies-elsewhere", "cookies-sent"])
def upstream(request: pytest.FixtureRequest) -> Iterator[tuple[str, Counter[str]]]:
    counts: Counter[str] = Counter()
    handler = type("Upstream", (_Upstream,), {"counts": counts, "lock": threading.Lock(), "cookie_path": request.param})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", counts
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize(
    ("loop", "declared"),
    [
        pytest.param("http_level", "", id="http_level"),
        pytest.param("shadowed", 'fetch = "cookiejob:fetch"\n', id="shadowed"),
    ],
)
def test_each_cookie_reaches_the_jar_when_the_loop_gets_its_answer(
    app: App,
    monkeypatch: pytest.MonkeyPatch,
    capture_events: list[str],
    upstream: tuple[str, Counter[str]],
    loop: str,
    declared: str,
    request: pytest.FixtureRequest,
) -> None:
    """Before each item's request the jar holds the cookies of the items before it, and no
    more, accelerated as sequentially; each item is asked for once."""
    base, counts = upstream
    app.write("cookiejob.py", JOB)
    app.config(f'[[targets]]\nloop = "cookiejob:{loop}"\nitems = "keys"\n{declared}concurrency = 4\n')
    module: Any = importlib.import_module("cookiejob")
    before = anyio.run(getattr(module, loop), base, KEYS)
    assert [jar for jar, _ in before] == [sorted(f"seen_{k}" for k in KEYS[:i]) for i in range(len(KEYS))]
    counts.clear()
    install(monkeypatch, capture_events)
    assert anyio.run(getattr(module, loop), base, KEYS) == before
    line = run_line(capture_events)
    if request.node.callspec.id.startswith("cookies-elsewhere"):
        assert counts == Counter(KEYS)  # each once
        assert int(line["prefetched"]) >= 5, line  # sent ahead: the jar was at stake
    elif loop == "http_level":
        assert counts == Counter(KEYS) and line["prefetched"] == "0", line
    else:
        assert line["credentials_changed"] == "yes", line
        # Wasted: the reads of shadows that ran before the loop's next real call showed it (those
        # of the first items' shadows, about one or two turns of ``concurrency``).
        assert set(counts) == set(KEYS) and sum(counts.values()) - len(KEYS) <= 2 * 4, (counts, line)
