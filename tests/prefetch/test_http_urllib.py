"""HTTP-level prefetch of urllib's requests (``_integrations.urllib``), against the real local
server: a loop of ``urlopen`` calls prints, writes and raises as before, each GET is sent
once, and the answers it gets are ``http.client.HTTPResponse`` objects as ``do_open``
returns them."""

from __future__ import annotations

import importlib
import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sched_accel._integrations import CLIENTS
from sched_accel._integrations.urllib import Kept

from ..conftest import App
from ..faultserver import FaultServer, answer
from .test_http_prefetch import compare, compare_rows, never_served


@pytest.fixture
def server() -> Iterator[FaultServer]:
    with FaultServer(latency=0.02) as running:
        yield running


URLLIB_JOB = """
    import json
    import sqlite3
    import urllib.error
    import urllib.request

    def fetch_and_store(db, token, base):
        # the per-item function legacy code writes: a urlopen, a print, a row
        try:
            with urllib.request.urlopen(f"{base}/item/{token}", timeout=10) as answer:
                value = json.load(answer)["value"]
        except urllib.error.HTTPError as error:  # an error answer: as urllib raises it
            print(f"failed {token}: {error.code} {error.read()!r}")
            return 0
        print(f"stored {token}: {value}")
        db.execute("INSERT INTO prices (token, value) VALUES (?, ?)", (token, value))
        return value

    def refresh(tokens, base, path):
        db = sqlite3.connect(path)
        db.execute("CREATE TABLE IF NOT EXISTS prices (id INTEGER PRIMARY KEY AUTOINCREMENT, token, value)")
        total = sum(fetch_and_store(db, token, base) for token in tokens)
        db.commit()
        db.close()
        return total
"""


@pytest.mark.slow
def test_urlopen_loop_with_writes_and_prints(
    app: App, server: FaultServer, monkeypatch: pytest.MonkeyPatch, capture_events: list[str], tmp_path: Path
) -> None:
    """The same lines, rows and total as the sequential run; each GET once; the later items served."""
    tokens = [f"u{i}" for i in range(30)]
    _, after, fields = compare_rows(app, server, monkeypatch, capture_events, tmp_path, "ujob", URLLIB_JOB, tokens)
    assert set(after.gets.values()) == {1} and len(after.gets) == len(tokens)
    assert fields["prefetch"] == "http"
    assert int(fields["prefetched"]) > 0
    assert int(fields["prefetched"]) + int(fields["missed"]) == len(tokens)
    assert int(fields["peak_requests"]) > 1  # urllib's requests are sent ahead, several at once


def test_an_error_answer_is_raised_as_urllib_raises_it(
    app: App, server: FaultServer, monkeypatch: pytest.MonkeyPatch, capture_events: list[str], tmp_path: Path
) -> None:
    """A 500 sent ahead reaches the loop as urllib's HTTPError, with its body, at the same item."""
    app.write("ujob.py", URLLIB_JOB)
    app.config('[[targets]]\nloop = "ujob:refresh"\nitems = "tokens"\nconcurrency = 4\n')
    ujob = importlib.import_module("ujob")
    tokens = [f"e{i}" for i in range(12)]
    paths = iter([tmp_path / "before.db", tmp_path / "after.db"])

    def call() -> Any:
        server.faults = {"e6": ["500"]}
        return ujob.refresh(tokens, server.url, next(paths))

    before, _, fields = compare(server, monkeypatch, capture_events, call)
    assert 'failed e6: 500 b\'{"error": "unavailable"}\'' in before.printed
    assert int(fields["prefetched"]) > 0


POSTING_JOB = """
    import json
    import urllib.request

    def sync(base, tokens):
        seen = []
        for token in tokens:
            with urllib.request.urlopen(f"{base}/item/{token}") as answer:
                value = json.load(answer)["value"]
            body = json.dumps({"value": value}).encode()
            with urllib.request.urlopen(f"{base}/item/{token}", data=body) as posted:  # a write: never early
                seen.append((value, json.load(posted)["posted"]))
        return seen
"""


def test_a_urlopen_with_data_is_never_sent_early(
    app: App, server: FaultServer, monkeypatch: pytest.MonkeyPatch, capture_events: list[str]
) -> None:
    """Each POST runs as the loop made it, after its own item's GET."""
    app.write("uposter.py", POSTING_JOB)
    app.config('[[targets]]\nloop = "uposter:sync"\nitems = "tokens"\n')
    uposter = importlib.import_module("uposter")
    tokens = [f"up{i}" for i in range(12)]
    _, _, fields = compare(server, monkeypatch, capture_events, lambda: uposter.sync(server.url, tokens))
    assert fields["other"] == "12"  # the POSTs ran as the loop made them
    assert int(fields["prefetched"]) > 0  # the GETs did not
    order = list(server.log)
    for token in tokens:
        assert order.index(("GET", token)) < order.index(("POST", token))


VOLATILE_JOB = """
    import itertools
    import json
    import urllib.request

    COUNTER = itertools.count()

    def poll(base, tokens):
        values = []
        for token in tokens:
            # a header that changes on every request: nothing sent ahead can be served
            request = urllib.request.Request(f"{base}/item/{token}", headers={"X-Sequence": str(next(COUNTER))})
            with urllib.request.urlopen(request) as answer:
                values.append(json.load(answer)["value"])
        return values
"""


def test_a_request_with_a_header_per_item_is_not_served(
    app: App, server: FaultServer, monkeypatch: pytest.MonkeyPatch, capture_events: list[str]
) -> None:
    """A request whose header differs from the one sent ahead is sent by the loop itself."""
    never_served(app, server, monkeypatch, capture_events, "uvolatile", VOLATILE_JOB)


# -- the served response itself -------------------------------------------------------------------
def _sent(url: str, method: str = "GET") -> tuple[Any, Kept, Any]:
    """A request sent through urllib's default handler as urlopen would, kept: (handler, kept, request)."""
    handler = urllib.request.HTTPHandler()
    req = urllib.request.Request(url, method=method)
    req.timeout = 10  # type: ignore[attr-defined]  # set by the opener
    kept = CLIENTS["urllib"].keep(handler.do_open(http_class(), req))
    return handler, kept, req


def http_class() -> Any:
    import http.client

    return http.client.HTTPConnection


def _served(kept: Kept, req: Any) -> Any:
    return CLIENTS["urllib"].serve(kept, urllib.request.HTTPHandler(), (http_class(), req), {})


def test_the_served_response_reads_like_the_real_one(server: FaultServer) -> None:
    """read(), getcode(), headers, url, msg and json as urlopen's own response gives them."""
    with urllib.request.urlopen(f"{server.url}/item/k1", timeout=10) as real:
        real_body, real_headers = real.read(), real.headers
        real_fields = (real.status, real.getcode(), real.reason, real.msg, real.version, real.url, real.geturl())
    _, kept, req = _sent(f"{server.url}/item/k1")
    with _served(kept, req) as served:
        assert (
            served.status,
            served.getcode(),
            served.reason,
            served.msg,
            served.version,
            served.url,
            served.geturl(),
        ) == real_fields
        assert served.headers["Content-Type"] == real_headers["Content-Type"] == "application/json"
        assert served.info().get("content-length") == str(len(real_body))
        assert [name for name, _ in served.headers.items()] == [name for name, _ in real_headers.items()]
        assert json.load(served) == answer("k1") == json.loads(real_body)
        assert served.read() == b""
    assert served.isclosed() and served.closed
    again = _served(kept, req)  # each call gets a fresh response
    assert again.read() == real_body and again.read() == b""


def test_the_served_response_reads_line_by_line_and_in_parts() -> None:
    """readline(), iteration, read(n), read1 and peek work on the body, within its length."""
    body = b"first\nsecond\nthird\n"
    kept = Kept(200, "OK", 11, (("Content-Type", "text/plain"), ("Content-Length", str(len(body)))), body, False)
    req = urllib.request.Request("http://example.test/lines")
    served = _served(kept, req)
    assert served.readline() == b"first\n"
    assert list(served) == [b"second\n", b"third\n"]
    served = _served(kept, req)
    assert served.read(3) == b"fir" and served.peek(1)[:1] == b"s" and served.read1(2) == b"st"
    assert served.readlines() == [b"\n", b"second\n", b"third\n"]
    assert served.url == "http://example.test/lines"


def test_a_chunked_answer_keeps_its_headers_and_body() -> None:
    """A chunked answer is served with its Transfer-Encoding and the whole body."""
    kept = Kept(
        200,
        "OK",
        11,
        (("Transfer-Encoding", "chunked"), ("Set-Cookie", "a=1"), ("Set-Cookie", "b=2")),
        b"x" * 70000,
        True,
    )
    served = _served(kept, urllib.request.Request("http://example.test/big"))
    assert served.chunked and served.headers.get_all("Set-Cookie") == ["a=1", "b=2"]
    assert served.read() == b"x" * 70000
    empty = _served(Kept(204, "No Content", 10, (), b"", True), urllib.request.Request("http://example.test/none"))
    assert (empty.status, empty.version, empty.read()) == (204, 10, b"")
    assert CLIENTS["urllib"].status(kept).headers.get("transfer-encoding") == "chunked"


def test_a_head_answer_has_no_body(server: FaultServer) -> None:
    """HEAD is sent early too; its served answer has the GET's headers and no body."""
    _, kept, req = _sent(f"{server.url}/item/h", method="HEAD")
    served = _served(kept, req)
    assert served.status == 200 and served.headers["Content-Length"] != "0" and served.read() == b""


def test_what_is_never_sent_early_and_the_same_request_elsewhere(server: FaultServer) -> None:
    """Data, other methods and a printing handler are never described; another host is never rebuilt."""
    client, methods = CLIENTS["urllib"], frozenset({"GET", "HEAD"})
    handler = urllib.request.HTTPHandler()
    req = urllib.request.Request(f"{server.url}/item/a", headers={"Authorization": "Bearer s", "Traceparent": "00-1"})
    req.timeout = 5  # type: ignore[attr-defined]
    req.add_unredirected_header("Host", "127.0.0.1")
    described = client.describe(handler, (http_class(), req), {}, methods)
    assert described is not None and described.method == "GET" and described.url == f"{server.url}/item/a"
    assert ("authorization", "Bearer s") in described.extra and ("<timeout>", 5) in described.extra
    assert not any(name == "traceparent" for name, _ in described.extra)  # tracing: not compared
    other = client.rebuild(described, handler, f"{server.url}/item/b")
    assert other is not None and other.extra == described.extra and other.url == f"{server.url}/item/b"
    assert other.args[1] is not req and other.args[1].timeout == 5 and other.args[1].headers == req.headers
    assert client.rebuild(described, handler, "http://elsewhere.test/item/b") is None
    posted = urllib.request.Request(f"{server.url}/item/a", data=b"{}")
    assert client.describe(handler, (http_class(), posted), {}, methods) is None
    deleted = urllib.request.Request(f"{server.url}/item/a", method="DELETE")
    assert client.describe(handler, (http_class(), deleted), {}, methods) is None
    assert client.describe(urllib.request.HTTPHandler(debuglevel=1), (http_class(), req), {}, methods) is None
    assert client.describe(handler, (object, req), {}, methods) is None  # not http.client's connection
