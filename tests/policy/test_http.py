"""_http.py: the adapters that put each HTTP request of an attempt through its host's limits.

httpx's ``MockTransport`` answers in place of the network; the same adapters against a real
server on 127.0.0.1, through install(), are in test_policy_faults.py.
"""

from __future__ import annotations

import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpcore
import httpx
import pytest
import requests

from sched_accel._patching import Patch, is_ours
from sched_accel._policy import ATTEMPT, Hosts, Policy, Tries, _http, _policy, patch_http
from sched_accel._settings import HostSettings, Target
from sched_accel._targets import TargetSpec


def make_policy(timeout: float | None = None, hosts: Hosts | None = None) -> Policy:
    """A run's policy for a target with this per-attempt timeout."""
    target = Target(loop=TargetSpec.parse("jobs:loop"), mode="prefetch", concurrency=4, timeout=timeout)
    return Policy(target, hosts if hosts is not None else Hosts())


@contextmanager
def attempt(policy: Policy) -> Iterator[Tries]:
    """Run the block as an attempt of a per-item call of ``policy``'s run."""
    tries = Tries(0.0, 1)
    token = ATTEMPT.set((policy, tries))
    try:
        yield tries
    finally:
        ATTEMPT.reset(token)


class Seen:
    """A MockTransport handler that answers ``status`` and keeps what it was sent."""

    def __init__(self, status: int = 200, headers: dict[str, str] | None = None) -> None:
        self.status = status
        self.headers = headers or {}
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        # As sent: the request's extensions are the app's own again once the call returns.
        self.requests.append(
            httpx.Request(request.method, request.url, headers=request.headers, extensions=dict(request.extensions))
        )
        return httpx.Response(self.status, headers=self.headers, text="ok")


def request(url: str = "http://api.test:8080/pairs/1", read: float | None = 30.0) -> httpx.Request:
    """A request as httpx's client builds it, with its timeouts in the extensions."""
    timeout = {"connect": 5.0, "read": read, "write": 5.0, "pool": 5.0}
    return httpx.Request("GET", url, extensions={"timeout": timeout})


def test_httpx_request_outside_an_attempt_is_untouched() -> None:
    """The app's own requests (no attempt current) go through as they are, and are not counted."""
    seen, policy = Seen(), make_policy(timeout=1.0)
    response = _http.SENDERS["httpx"](httpx.MockTransport(seen).handle_request, None, (request(),), {})
    assert response.status_code == 200
    assert seen.requests[0].extensions["timeout"]["read"] == 30.0
    assert policy.stats.requests == 0


def test_httpx_request_in_an_attempt_is_counted_capped_and_named() -> None:
    """Inside an attempt a request passes its host's limiter, gets its timeouts capped, and names its host."""
    seen, policy = Seen(), make_policy(timeout=2.0)
    with attempt(policy) as tries:
        response = _http.SENDERS["httpx"](httpx.MockTransport(seen).handle_request, None, (request(read=None),), {})
    assert response.status_code == 200
    assert seen.requests[0].extensions["timeout"] == {"connect": 2.0, "read": 2.0, "write": 2.0, "pool": 2.0}
    assert tries.host == "api.test"
    assert policy.stats.snapshot()["requests"] == 1
    assert policy.hosts.get("api.test", 8080).limiter.statistics().requests == 1


def test_httpx_answer_of_429_teaches_the_host() -> None:
    """A 429 with Retry-After is counted for the run and the host; the limiter's place is given back."""
    seen, policy = Seen(429, {"Retry-After": "1"}), make_policy()
    with attempt(policy):
        response = _http.SENDERS["httpx"](httpx.MockTransport(seen).handle_request, None, (request(),), {})
    assert response.status_code == 429
    assert policy.stats.snapshot()["http_429"] == 1
    stats = policy.hosts.get("api.test", 8080).limiter.statistics()
    assert (stats.rate_limited, stats.in_flight) == (1, 0)


def test_host_and_port_settings_win_over_the_host_alone() -> None:
    """A request to host:port uses ``[hosts."host:port"]`` when declared."""
    hosts = Hosts({"api.test:8080": HostSettings(concurrency=1), "api.test": HostSettings(concurrency=5)})
    policy = make_policy(hosts=hosts)
    with attempt(policy) as tries:
        _http.SENDERS["httpx"](httpx.MockTransport(Seen()).handle_request, None, (request(),), {})
    assert tries.host == "api.test:8080"


def test_connection_errors_count_against_the_circuit() -> None:
    """A request that raises a transient error is recorded as a failure of its host, and re-raised."""
    hosts = Hosts({"api.test": HostSettings(breaker_failures=2)})
    policy = make_policy(hosts=hosts)

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    with attempt(policy):
        for _ in range(2):
            with pytest.raises(httpx.ConnectError):
                _http.SENDERS["httpx"](
                    httpx.MockTransport(refuse).handle_request, None, (request("http://api.test/x"),), {}
                )
    assert hosts.get("api.test").circuit.state == "open"
    assert policy.stats.snapshot()["requests"] == 2


def test_an_open_circuit_sends_requests_around_the_limits() -> None:
    """While the host's circuit is open, a request goes straight through and the attempt is marked bypassed."""
    hosts = Hosts({"api.test": HostSettings(breaker_failures=1)})
    hosts.get("api.test").circuit.record(False)
    policy = make_policy(hosts=hosts)
    with attempt(policy) as tries:
        _http.SENDERS["httpx"](httpx.MockTransport(Seen()).handle_request, None, (request("http://api.test/x"),), {})
    assert tries.bypassed
    assert policy.stats.snapshot()["requests"] == 0


@pytest.mark.anyio
async def test_httpx_async_request_in_an_attempt() -> None:
    """The async adapter drives the same plan: counted, capped, host named."""
    seen, policy = Seen(503), make_policy(timeout=1.5)
    with attempt(policy) as tries:
        response = await _http.SENDERS["httpx-async"](
            httpx.MockTransport(seen).handle_async_request, None, (request(),), {}
        )
    assert response.status_code == 503
    assert seen.requests[0].extensions["timeout"]["read"] == 1.5
    assert tries.host == "api.test"
    assert policy.stats.snapshot()["http_503"] == 1


def test_requests_send_caps_a_connect_read_pair() -> None:
    """requests' ``send(request, stream, timeout)``: a (connect, read) timeout is capped element by element."""
    prepared = requests.Request("GET", "http://api.test:81/x").prepare()
    got: dict[str, Any] = {}

    def send(request: requests.PreparedRequest, stream: bool = False, timeout: Any = None, **rest: Any) -> Any:
        got["timeout"] = timeout
        response = requests.Response()
        response.status_code = 200
        return response

    policy = make_policy(timeout=3.0)
    with attempt(policy) as tries:
        _http.SENDERS["requests"](send, None, (prepared, False, (10.0, 60.0)), {})
        _http.SENDERS["requests"](send, None, (prepared,), {"timeout": None})
    assert got["timeout"] == 3.0
    assert tries.host == "api.test"
    assert policy.stats.snapshot()["requests"] == 2


def test_requests_send_keeps_a_shorter_timeout() -> None:
    """A timeout shorter than the cap stays as the app set it."""
    prepared = requests.Request("GET", "http://api.test/x").prepare()
    got: list[Any] = []

    def send(request: requests.PreparedRequest, **kwargs: Any) -> Any:
        got.append(kwargs["timeout"])
        return requests.Response()

    with attempt(make_policy(timeout=3.0)):
        _http.SENDERS["requests"](send, None, (prepared,), {"timeout": (1.0, 2.0)})
    assert got == [(1.0, 2.0)]


def test_urllib_gets_the_cap_and_its_own_timeout_back() -> None:
    """urllib's Request gets the capped timeout for the request, and its own back afterwards (it may be reused)."""
    req = urllib.request.Request("http://api.test:8081/x")
    req.timeout = 50.0  # type: ignore[attr-defined]
    during: list[float | None] = []

    def do_open(http_class: object, request: urllib.request.Request, **rest: Any) -> str:
        during.append(request.timeout)  # type: ignore[attr-defined]
        return "response"

    policy = make_policy(timeout=4.0)
    with attempt(policy) as tries:
        assert _http.SENDERS["urllib"](do_open, None, (object(), req), {}) == "response"
    assert during == [4.0]
    assert req.timeout == 50.0  # type: ignore[attr-defined]
    assert tries.host == "api.test"


def test_patch_http_wraps_each_library_and_comes_off() -> None:
    """patch_http wraps httpx, requests and urllib at their send methods; removing the patch restores them."""
    patch = Patch("<http>")
    patch_http(patch, lambda name, callback: callback(__import__(name, fromlist=["_"])))
    try:
        assert is_ours(httpx.HTTPTransport.__dict__["handle_request"])
        assert is_ours(httpx.AsyncHTTPTransport.__dict__["handle_async_request"])
        assert is_ours(requests.adapters.HTTPAdapter.__dict__["send"])
        assert is_ours(urllib.request.AbstractHTTPHandler.__dict__["do_open"])
    finally:
        patch.remove()
    assert not is_ours(httpx.HTTPTransport.__dict__["handle_request"])
    assert not is_ours(urllib.request.AbstractHTTPHandler.__dict__["do_open"])


def paced_policy(per_second: float = 5.0) -> Policy:
    """A run's policy for a host at ``per_second`` with a burst of 1."""
    return make_policy(hosts=Hosts({"127.0.0.1": HostSettings(per_second=per_second, burst=1)}))


def test_a_pooled_transport_takes_the_token_as_the_request_is_written() -> None:
    """httpx's own transport: the admission holds a place, httpcore's connection takes the rate's
    token once connected (``DUE``), so time spent connecting is not spent holding a token."""
    from tests.faultserver import FaultServer

    patch = Patch("<http>")
    patch_http(patch, lambda name, callback: callback(__import__(name, fromlist=["_"])))
    try:
        assert is_ours(httpcore.HTTP11Connection.__dict__["_send_request_headers"])
        policy = paced_policy()
        limiter = policy.hosts.get("127.0.0.1", None).limiter
        taken: list[float] = []
        real = limiter.take_token

        def take_token(number: int = 0) -> float:
            taken.append(real(number))
            return taken[-1]

        limiter.take_token = take_token  # type: ignore[method-assign]
        with FaultServer(latency=0.0) as server, httpx.Client(base_url=server.url) as client, attempt(policy):
            started = time.monotonic()
            assert [client.get(f"/item/{i}").status_code for i in range(3)] == [200, 200, 200]
            elapsed = time.monotonic() - started
        assert taken.count(0.0) == 3 and _policy.DUE.get() is None
        assert elapsed >= 2 / 5 * 0.9  # still paced: 3 requests at 5/s, a burst of 1
    finally:
        patch.remove()
    assert not is_ours(httpcore.HTTP11Connection.__dict__["_send_request_headers"])


def test_a_transport_that_skips_httpcore_is_charged_after_sending() -> None:
    """A transport that looks pooled but never reaches an httpcore connection: its token is
    taken once the answer is in, so the rate still counts every request."""

    class Pooled(httpx.MockTransport):
        _pool = object()

    policy = paced_policy(per_second=1.0)
    limiter = policy.hosts.get("127.0.0.1", None).limiter
    transport = Pooled(Seen())
    with attempt(policy):
        _http.SENDERS["httpx"](transport.handle_request, transport, (request("http://127.0.0.1/x"),), {})
    assert _policy.DUE.get() is None
    assert limiter.try_acquire() > 0.5  # the one token was charged: the next waits ~1 s


@pytest.mark.slow
@pytest.mark.anyio
async def test_the_async_connection_takes_the_token_too() -> None:
    from tests.faultserver import FaultServer

    patch = Patch("<http>")
    patch_http(patch, lambda name, callback: callback(__import__(name, fromlist=["_"])))
    try:
        policy = paced_policy(per_second=20.0)
        with FaultServer(latency=0.0) as server:
            async with httpx.AsyncClient(base_url=server.url) as client:
                with attempt(policy):
                    answers = [(await client.get(f"/item/{i}")).status_code for i in range(4)]
        assert answers == [200] * 4 and server.status[429] == 0
        assert policy.hosts.get("127.0.0.1", None).limiter.statistics().requests == 4
    finally:
        patch.remove()


@pytest.mark.slow
@pytest.mark.parametrize("keepalive", [5.0, 0.05], ids=["handed-on", "expired"])
def test_a_connection_waiting_for_its_token_is_not_idle_in_the_pool(keepalive: float) -> None:
    """While a request waits on its connection for the host's token, httpcore's pool must see
    that connection in use: neither handed to another request nor closed as idle or expired by
    another thread's pass (it would be closed under the request once it is sent: EBADF)."""
    import threading

    from tests.faultserver import FaultServer

    patch = Patch("<http>")
    patch_http(patch, lambda name, callback: callback(__import__(name, fromlist=["_"])))
    policy = paced_policy(per_second=2.0)  # a burst of 1: the second request waits ~0.5 s
    limits = httpx.Limits(keepalive_expiry=keepalive)
    first_done = threading.Event()
    addresses: list[Any] = []

    def sent(response: httpx.Response) -> Any:
        return response.extensions["network_stream"].get_extra_info("client_addr")

    def paced(client: httpx.Client) -> None:
        with attempt(policy):
            addresses.append(sent(client.get("/item/a")))
            first_done.set()
            addresses.append(sent(client.get("/item/b")))  # handed the idle connection, then waits

    try:
        with FaultServer(latency=0.0) as server, httpx.Client(base_url=server.url, limits=limits) as client:
            worker = threading.Thread(target=paced, args=(client,))
            worker.start()
            assert first_done.wait(5)
            time.sleep(0.2)  # the second request is waiting for its token, on its connection
            other = sent(client.get("/item/other"))  # another thread's pass of the pool
            worker.join(5)
        assert len(addresses) == 2
        assert addresses[1] == addresses[0] != other  # sent on the connection it was handed, alone
    finally:
        patch.remove()
