"""Which requests are reads (``_reads``), and a request described with its body by each HTTP
library's client (``describe(..., reads=...)``) against the real local server."""

from __future__ import annotations

import inspect
import json
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sched_accel._integrations import CLIENTS, Request
from sched_accel._policy import Hosts
from sched_accel._prefetch._reads import BITCOIN_READS, MAX_BODY, Reads, graphql_operations, is_read
from sched_accel._settings import HostSettings, parse_reads

from ..faultserver import FaultServer

JSON = [("Content-Type", "application/json")]


@pytest.fixture
def server() -> Iterator[FaultServer]:
    with FaultServer(latency=0.0) as running:
        yield running


def graphql(document: str, operation: str | None = None, **more: Any) -> bytes:
    """A GraphQL request's JSON body."""
    return json.dumps({"query": document, "variables": {"id": 1}, "operationName": operation, **more}).encode()


def rpc(*methods: str, version: str = "2.0") -> bytes:
    """A JSON-RPC body: one call, or a batch when given several methods."""
    calls = [{"jsonrpc": version, "id": i, "method": m, "params": ["So1"]} for i, m in enumerate(methods)]
    return json.dumps(calls[0] if len(calls) == 1 else calls).encode()


NOTHING_DECLARED = Reads()


def posted(body: bytes, declared: Reads = NOTHING_DECLARED, url: str = "https://api.example.com/graphql") -> bool:
    """Whether a POST of ``body`` is a read."""
    return is_read("POST", url, JSON, body, declared)


# -- methods ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("method", "body", "expected"),
    [
        ("GET", None, True),
        ("head", None, True),
        ("OPTIONS", None, True),
        ("GET", b'{"query": {"match_all": {}}}', True),  # Elasticsearch's GET _search: a read, its body compared
        ("TRACE", None, False),
        ("POST", None, False),
        ("PUT", b"{}", False),
        ("DELETE", None, False),
        ("PATCH", rpc("getBalance"), False),  # a JSON-RPC read only over POST
    ],
)
def test_safe_methods_are_reads_with_or_without_a_body(method: str, body: bytes | None, expected: bool) -> None:
    """GET, HEAD and OPTIONS are reads (a GET's body too); other methods need a body that reads."""
    assert is_read(method, "https://api.example.com/x", [], body) is expected


# -- GraphQL ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("document", "operation", "expected"),
    [
        ("query User($id: ID!) { user(id: $id) { name } }", None, True),
        ("{ user(id: 1) { name } }", None, True),  # the shorthand is a query
        ("mutation Save { save(id: 1) { ok } }", None, False),
        ("subscription OnSave { saved { id } }", None, False),
        ('query Q { search(text: "mutation { drop }") { id } }', None, True),  # the word in a string
        ('query Q { search(text: """ a "quoted" mutation { } """) { id } }', None, True),  # and in a block string
        ('query Q { search(text: """ \\""" mutation """) { id } }', None, True),  # an escaped """ inside it
        ("# mutation Save { save }\nquery Q { a }", None, True),  # and in a comment
        ("query Q { a }, # the end\n", None, True),
        ("query Q { mutation: a { query } }", None, True),  # field names are not keywords
        ("fragment F on User { id name }\nquery Q { user { ...F } }", None, True),
        ("query Q($f: Filter = {and: [{x: 1}]}) @live { a(f: $f) }", None, True),  # brackets in the head
        ("query A { a }\nmutation B { b }", None, False),  # no operationName: every operation counts
        ("query A { a }\nmutation B { b }", "A", True),  # the named one runs
        ("query A { a }\nmutation B { b }", "B", False),
        ("query A { a }", "Missing", False),  # a name the document lacks: an error, not a read
        ("query A { a }\nquery A { b }", "A", False),  # a name given twice: ambiguous
        ("type User { id: ID }", None, False),  # a type-system definition
        ("query Q { a ", None, False),  # unbalanced
        ("query Q { a ) }", None, False),  # mismatched
        ('query Q { a(s: "unterminated) }', None, False),
        ("query Q { a } %", None, False),  # a character GraphQL does not have
        ('query "Q" { a }', None, False),
        ("SELECT * FROM users", None, False),  # not GraphQL
        ("", None, False),
    ],
)
def test_a_graphql_query_is_a_read_and_a_mutation_is_not(document: str, operation: str | None, expected: bool) -> None:
    """Only query operations at definition level count; strings, comments and fields do not."""
    assert posted(graphql(document, operation)) is expected


def test_graphql_operations_lists_each_with_its_name() -> None:
    """Fragments are left out; anonymous operations have no name."""
    found = graphql_operations("fragment F on T { id }\n{ a }\nquery ($x: Int) { b }\nmutation M @d(if: true) { c }")
    assert found == [("query", None), ("query", None), ("mutation", "M")]


def test_graphql_batches_and_raw_documents() -> None:
    """A batch reads only when each request does; an application/graphql body is the document."""
    queries = [{"query": "query A { a }"}, {"query": "{ b }", "operationName": None}]
    assert posted(json.dumps(queries).encode())
    assert not posted(json.dumps([*queries, {"query": "mutation M { m }"}]).encode())
    assert not posted(b"[]")
    raw = [("content-type", "application/graphql; charset=utf-8")]
    assert is_read("POST", "https://api.example.com/graphql", raw, b"query Q { a }", Reads())
    assert not is_read("POST", "https://api.example.com/graphql", raw, b"mutation M { a }", Reads())


@pytest.mark.parametrize(
    "body",
    [
        json.dumps(
            {"operationName": "Q", "extensions": {"persistedQuery": {"sha256Hash": "ab"}}}
        ).encode(),  # no document
        json.dumps({"query": "query Q { a }", "operationName": 3}).encode(),
        json.dumps({"query": ["query Q { a }"]}).encode(),
        b'{"query": "query Q { a }", "query": "mutation M { a }"}',  # a repeated key: servers differ on which counts
        b"query=query+Q+%7B+a+%7D",  # a form
        b'{"query": "query Q { a }"',  # malformed JSON
        b"\xff\xfe\x00",
        b"[" * 100_000,  # too deep
    ],
)
def test_bodies_we_cannot_read_whole_are_not_reads(body: bytes) -> None:
    """A persisted query by hash, a wrong type, a repeated key, a form, malformed JSON: not reads."""
    assert not posted(body)


# -- JSON-RPC --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (rpc("eth_getBalance"), True),
        (rpc("eth_call", "eth_blockNumber", "eth_chainId", "net_version"), True),
        (rpc("getTokenAccountsByOwner", "getTokenAccountBalance"), True),  # Solana
        (rpc("getblock", "getrawtransaction", version="1.0"), True),  # Bitcoin Core
        (json.dumps({"method": "getbalance", "params": [], "id": "curl"}).encode(), True),  # JSON-RPC 1.0, no version
        (json.dumps({"version": "1.1", "method": "getblockcount", "params": [], "id": 1}).encode(), True),
        (rpc("eth_getBalance", "eth_sendRawTransaction"), False),  # one write in the batch
        (rpc("sendTransaction"), False),
        (rpc("requestAirdrop"), False),
        (rpc("getnewaddress", version="1.0"), False),  # takes a key from the wallet's keypool
        (rpc("getrawchangeaddress", version="1.0"), False),
        (rpc("eth_getFilterChanges"), False),  # each call moves the filter on
        (rpc("getbalance", version="3.0"), False),
        (rpc("GetBalance"), False),  # case counts
        (json.dumps({"jsonrpc": "2.0", "id": 1}).encode(), False),  # no method
        (json.dumps({"method": "getbalance", "id": 1, "user": "x"}).encode(), False),  # not a bare 1.0 call
        (json.dumps([rpc("eth_getBalance").decode(), 1]).encode(), False),
    ],
)
def test_json_rpc_reads_only_when_every_call_is_on_the_read_list(body: bytes, expected: bool) -> None:
    """Single calls and batches: a read only when every method is a known (or declared) read."""
    assert posted(body, url="https://rpc.example.com/") is expected


def test_the_read_lists_leave_out_the_wallet_writes_named_get() -> None:
    """getnewaddress and getrawchangeaddress write to the wallet: not on Bitcoin Core's list."""
    assert {"getnewaddress", "getrawchangeaddress", "getblocktemplate"}.isdisjoint(BITCOIN_READS)
    assert {"getblock", "getbalance", "getrawtransaction"} <= BITCOIN_READS


# -- what a host declares --------------------------------------------------------------------------
def test_declared_requests_and_json_rpc_methods() -> None:
    """A method on a path (exact, or a prefix with *) with any body; JSON-RPC methods by glob."""
    declared = parse_reads(["POST /sso/login", "post /search/*", "jsonrpc:custom_get*", " jsonrpc:ping "])
    assert declared.requests == (("POST", "/sso/login", False), ("POST", "/search/", True))
    assert declared.jsonrpc == ("custom_get*", "ping")
    login = "https://api.example.com/sso/login?next=/home"
    assert is_read(
        "POST", login, [("Content-Type", "application/x-www-form-urlencoded")], b"user=a&password=b", declared
    )
    assert not is_read("POST", login, [], b"user=a", Reads())  # not declared there
    assert not is_read("POST", "https://api.example.com/sso/login/", [], b"user=a", declared)  # exact: not this one
    assert not is_read("PUT", login, [], b"user=a", declared)  # nor another method
    assert is_read("POST", "https://api.example.com/search/users?q=x", [], None, declared)
    assert posted(rpc("custom_getThing", "ping", "eth_call"), declared)
    assert not posted(rpc("custom_setThing"), declared)
    assert not posted(b"x" * (MAX_BODY + 1), parse_reads(["POST /graphql"]))  # the cap holds for declared reads too


@pytest.mark.parametrize(
    "value",
    [
        "POST /graphql",
        ["POST graphql"],
        ["POST /a b"],
        ["/graphql"],
        ["POST /a?b=1"],
        ["POST /a*b"],
        ["jsonrpc:"],
        ["jsonrpc:get balance"],
        [3],
        [["POST /x"]],
    ],
)
def test_declarations_that_say_nothing_clear_are_refused(value: object) -> None:
    """Not a list of "METHOD /path" and "jsonrpc:method" entries: ValueError saying what is allowed."""
    with pytest.raises(ValueError, match='"METHOD /path"'):
        parse_reads(value)


def test_each_host_state_holds_its_declared_reads() -> None:
    """hosts.get(host, port).reads is what [hosts."..."] reads declares (host:port first); others declare nothing."""
    hosts = Hosts(
        {"api.example.com": HostSettings(reads=parse_reads(["POST /graphql"])), "api.example.com:8443": HostSettings()}
    )
    assert hosts.get("api.example.com").reads.request("POST", "/graphql")
    assert hosts.get("api.example.com", 8443).reads == Reads()
    assert hosts.get("other.example.com").reads == Reads()


# -- bounds ----------------------------------------------------------------------------------------
def test_a_body_over_the_cap_is_not_a_read() -> None:
    """1 MiB is read; a byte more is not, even for a GET."""
    query = graphql("query Q { a }")
    padded = query[:-1] + b" " * (MAX_BODY - len(query)) + b"}"
    assert len(padded) == MAX_BODY and posted(padded)
    assert not posted(padded + b" ")
    assert is_read("GET", "https://x.test/", [], b"x" * MAX_BODY)
    assert not is_read("GET", "https://x.test/", [], b"x" * (MAX_BODY + 1))


@settings(max_examples=300, deadline=None)
@given(
    method=st.sampled_from(["GET", "POST", "PUT", "post"]),
    body=st.one_of(st.none(), st.binary(max_size=300), st.text(max_size=300).map(lambda t: graphql(t))),
    headers=st.one_of(st.none(), st.just(JSON), st.just({"content-type": "application/graphql"}), st.just([(b"X", 1)])),
)
def test_is_read_never_raises(method: str, body: bytes | None, headers: Any) -> None:
    """Whatever the body and headers, the answer is a bool."""
    assert is_read(method, "https://x.test/graphql", headers, body, parse_reads(["POST /other"])) in (True, False)


# -- describe() through each client, against the real server ----------------------------------------
def captured(
    monkeypatch: pytest.MonkeyPatch, owner: type, name: str
) -> list[tuple[Any, tuple[Any, ...], dict[str, Any]]]:
    """Each call of the layer ``owner.name`` (the one ``_policy._http`` wraps), as it is made."""
    calls: list[tuple[Any, tuple[Any, ...], dict[str, Any]]] = []
    original = getattr(owner, name)

    def layer(self: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append((self, args, kwargs))
        return original(self, *args, **kwargs)

    async def async_layer(self: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append((self, args, kwargs))
        return await original(self, *args, **kwargs)

    monkeypatch.setattr(owner, name, async_layer if inspect.iscoroutinefunction(original) else layer)
    return calls


#: The same call twice, then one byte apart (the address): equal, then different identities.
CALLS = [
    {"jsonrpc": "2.0", "id": 1, "method": "getBalance", "params": ["So1aaa"]},
    {"jsonrpc": "2.0", "id": 1, "method": "getBalance", "params": ["So1aaa"]},
    {"jsonrpc": "2.0", "id": 1, "method": "getBalance", "params": ["So1aab"]},
]
WRITE = {"jsonrpc": "2.0", "id": 1, "method": "sendTransaction", "params": ["AQAB"]}


def identities(library: str, calls: list[tuple[Any, tuple[Any, ...], dict[str, Any]]], echoed: list[str]) -> None:
    """The three reads are described with the bytes the server received, the first two alike,
    the third apart by its body only; the write, and any POST without ``reads``, are not described."""
    client = CLIENTS[library]
    first, again, other, write = calls
    described = [client.describe(*call, reads=is_read) for call in (first, again, other)]
    assert all(isinstance(r, Request) for r in described)
    one, two, three = (r for r in described if r is not None)
    assert [r.body.decode() if r.body else None for r in (one, two, three)] == echoed[:3]
    assert (one.method, one.url, one.extra) == (two.method, two.url, two.extra)
    assert (one.method, one.url) == (three.method, three.url) and one.extra != three.extra
    assert one.differs(three) == "<body>"
    assert client.describe(*write, reads=is_read) is None  # not a read
    assert client.describe(*first) is None  # the default: GET and HEAD without a body, as before


def test_httpx_describes_a_post_with_its_body(server: FaultServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """httpx's Client: the request's content, as sent."""
    import httpx

    calls = captured(monkeypatch, httpx.HTTPTransport, "handle_request")
    with httpx.Client() as client:
        echoed = [client.post(f"{server.url}/item/k", json=body).json()["body"] for body in [*CALLS, WRITE]]
    identities("httpx", calls, echoed)


@pytest.mark.slow
@pytest.mark.anyio
async def test_httpx_async_describes_a_post_with_its_body(server: FaultServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """httpx's AsyncClient: the same."""
    import httpx

    calls = captured(monkeypatch, httpx.AsyncHTTPTransport, "handle_async_request")
    async with httpx.AsyncClient() as client:
        echoed = [(await client.post(f"{server.url}/item/k", json=body)).json()["body"] for body in [*CALLS, WRITE]]
    identities("httpx-async", calls, echoed)


def test_requests_describes_a_post_with_its_body(server: FaultServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """requests' Session: the PreparedRequest's body."""
    import requests

    calls = captured(monkeypatch, requests.adapters.HTTPAdapter, "send")
    with requests.Session() as session:
        echoed = [session.post(f"{server.url}/item/k", json=body).json()["body"] for body in [*CALLS, WRITE]]
    identities("requests", calls, echoed)


def test_urllib_describes_a_post_with_its_body(server: FaultServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """urllib's urlopen: the request's data."""
    calls = captured(monkeypatch, urllib.request.AbstractHTTPHandler, "do_open")
    echoed = []
    for body in [*CALLS, WRITE]:
        req = urllib.request.Request(
            f"{server.url}/item/k", data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(req, timeout=10) as answer:
            echoed.append(json.load(answer)["body"])
    identities("urllib", calls, echoed)


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
@pytest.mark.anyio
async def test_aiohttp_describes_a_post_with_its_body(server: FaultServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """aiohttp's ClientSession: ``json=`` serialised as the session does."""
    import aiohttp

    calls = captured(monkeypatch, aiohttp.ClientSession, "_request")
    echoed = []
    async with aiohttp.ClientSession() as session:
        for body in [*CALLS, WRITE]:
            async with session.post(f"{server.url}/item/k", json=body) as answer:
                echoed.append((await answer.json())["body"])
    identities("aiohttp", calls, echoed)


def test_streamed_bodies_are_never_described() -> None:
    """A body read as it is sent (an iterator, a file, multipart files) cannot be matched: None."""
    import httpx
    import requests

    def chunks() -> Iterator[bytes]:
        yield rpc("getBalance")

    url = "https://rpc.example.com/"
    streamed = httpx.Request("POST", url, content=chunks())
    assert CLIENTS["httpx"].describe(None, (streamed,), {}, reads=is_read) is None
    files = httpx.Request("POST", url, files={"f": b"x"})
    assert CLIENTS["httpx"].describe(None, (files,), {}, reads=lambda *a: True) is None
    prepared = requests.Request("POST", url, data=chunks()).prepare()
    assert CLIENTS["requests"].describe(None, (prepared,), {}, reads=lambda *a: True) is None
    text = requests.Request("POST", url, data=rpc("getBalance").decode()).prepare()  # a str body
    assert CLIENTS["requests"].describe(None, (text,), {}, reads=is_read) is not None
    big = requests.Request("POST", url, data=b" " * MAX_BODY + rpc("getBalance")).prepare()
    assert CLIENTS["requests"].describe(None, (big,), {}, reads=is_read) is None  # over the cap
    req = urllib.request.Request(url, data=iter([rpc("getBalance")]))
    import http.client

    assert (
        CLIENTS["urllib"].describe(
            urllib.request.HTTPHandler(), (http.client.HTTPConnection, req), {}, reads=lambda *a: True
        )
        is None
    )


def test_aiohttp_bodies_it_can_and_cannot_describe() -> None:
    """bytes and str data, json through the session's serialiser; a form, both, or a failing serialiser: None."""
    from sched_accel._integrations.aiohttp import _body as _aiohttp_body

    class Session:
        _json_serialize = staticmethod(lambda value: json.dumps(value, separators=(",", ":")))

    assert _aiohttp_body(Session(), None, {"a": 1}) == b'{"a":1}'
    assert _aiohttp_body(Session(), bytearray(b"ab"), None) == b"ab"
    assert _aiohttp_body(Session(), "é", None) == "é".encode()
    assert _aiohttp_body(Session(), None, None) is None and _aiohttp_body(Session(), b"", None) is None
    assert (
        CLIENTS["aiohttp"].describe(Session(), ("POST", "https://x.test/"), {"data": {"a": "1"}}, reads=lambda *a: True)
        is None
    )
    assert (
        CLIENTS["aiohttp"].describe(
            Session(), ("POST", "https://x.test/"), {"data": b"a", "json": 1}, reads=lambda *a: True
        )
        is None
    )
    assert (
        CLIENTS["aiohttp"].describe(Session(), ("POST", "https://x.test/"), {"json": {1j}}, reads=lambda *a: True)
        is None
    )
