"""An answer is served only to its own client (issue 24, item 4): what identifies a client
beyond its headers (its TLS context and certificate, its proxy, its transport or adapter, the
per-call ``cert=``/``verify=``) is part of a request's identity."""

from __future__ import annotations

import importlib
import ssl
from collections import Counter
from typing import Any

import httpx
import pytest
import requests

from sched_accel._integrations import CLIENTS

from ..conftest import App
from ..faultserver import FaultServer
from .test_prefetch_shapes import install, run_line


def described(library: str, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...]:
    request = CLIENTS[library].describe(instance, args, kwargs)
    assert request is not None
    return request.extra


def test_requests_sends_that_differ_only_by_cert_or_verify_are_other_requests() -> None:
    """requests: the same prepared GET through the same adapter, with another ``cert`` or
    ``verify`` or ``proxies``, is another request; with the same, the same one."""
    prepared = requests.Request("GET", "http://h.test/item/1").prepare()
    adapter = requests.adapters.HTTPAdapter()
    alice = described("requests", adapter, (prepared,), {"cert": ("alice.crt", "alice.key"), "verify": True})
    bob = described("requests", adapter, (prepared,), {"cert": ("bob.crt", "bob.key"), "verify": True})
    assert alice != bob
    assert alice == described(
        "requests", requests.adapters.HTTPAdapter(), (prepared,), {"cert": ("alice.crt", "alice.key"), "verify": True}
    )
    assert alice != described("requests", adapter, (prepared,), {"cert": ("alice.crt", "alice.key"), "verify": False})
    assert alice != described(
        "requests", adapter, (prepared,), {"cert": ("alice.crt", "alice.key"), "proxies": {"http": "http://p:1"}}
    )


class OwnAdapter(requests.adapters.HTTPAdapter):
    """An adapter of the app's own (it may carry a certificate in its SSL context)."""


def test_an_adapter_of_the_apps_own_is_known_by_its_identity() -> None:
    """Two instances of an app's adapter class are two clients; requests' own adapter is not."""
    prepared = requests.Request("GET", "http://h.test/item/1").prepare()
    assert described("requests", OwnAdapter(), (prepared,), {}) != described("requests", OwnAdapter(), (prepared,), {})


def test_httpx_clients_made_alike_are_one_client_and_other_contexts_are_not(
    app: App, monkeypatch: pytest.MonkeyPatch, capture_events: list[str]
) -> None:
    """httpx: two clients made with the same settings (one per item) are the same client once
    httpx's SSL contexts are tagged; a context the app made (its own certificate) is another."""
    app.write("nothing.py", "def loop(items):\n    return items\n")
    app.config('[[targets]]\nloop = "nothing:loop"\n')
    install(monkeypatch, capture_events)  # the HTTP layers are patched with the first target
    request = httpx.Request("GET", "http://h.test/item/1")
    default_a, default_b = httpx.HTTPTransport(), httpx.HTTPTransport()
    assert described("httpx", default_a, (request,), {}) == described("httpx", default_b, (request,), {})
    alice, bob = ssl.create_default_context(), ssl.create_default_context()
    assert described("httpx", httpx.HTTPTransport(verify=alice), (request,), {}) != described(
        "httpx", httpx.HTTPTransport(verify=bob), (request,), {}
    )
    assert described("httpx", httpx.HTTPTransport(verify=False), (request,), {}) != described(
        "httpx", default_a, (request,), {}
    )
    proxied = httpx.HTTPTransport(proxy="http://proxy.test:3128")
    assert described("httpx", proxied, (request,), {}) != described("httpx", default_a, (request,), {})


TENANTS = """
    import os
    import requests

    HERE = os.path.dirname(os.path.abspath(__file__))
    CERTS = {name: (os.path.join(HERE, f"{name}.crt"), os.path.join(HERE, f"{name}.key")) for name in ("alice", "bob")}

    def sync(base, accounts):
        out = []
        for tenant, account in accounts:
            # the per-call certificate says whose data this is (ignored over plain http)
            out.append(requests.get(f"{base}/item/{account}", cert=CERTS[tenant]).json()["value"])
        return out
"""


@pytest.mark.slow
def test_tenants_that_differ_only_by_certificate_never_get_each_others_answers(
    app: App, monkeypatch: pytest.MonkeyPatch, capture_events: list[str]
) -> None:
    """The review's two tenants: every item switches certificate, so no prediction made with
    one tenant's certificate is ever sent for, or served to, the other's request."""
    app.write("tenants.py", TENANTS)
    for name in ("alice.crt", "alice.key", "bob.crt", "bob.key"):
        app.write(name, "not read over plain http")
    app.config('[[targets]]\nloop = "tenants:sync"\nitems = "accounts"\nconcurrency = 4\n')
    module: Any = importlib.import_module("tenants")
    accounts = [("alice" if i % 2 == 0 else "bob", f"acct{i}") for i in range(10)]
    with FaultServer(latency=0.02) as server:
        before = module.sync(server.url, accounts)
        sequential = Counter(key for _, key in server.log)
        server.reset_counts()
        install(monkeypatch, capture_events)
        assert module.sync(server.url, accounts) == before
        assert Counter(key for _, key in server.log) == sequential  # nothing sent ahead for another tenant
    assert run_line(capture_events)["prefetched"] == "0"


USERS = """
    import urllib.request

    import httpx
    import requests

    def httpx_header(base, users):
        with httpx.Client() as client:
            return [client.get(f"{base}/item/{user}", headers={"Authorization": f"Bearer {token}"}).json()["value"]
                    for user, token in users]

    async def httpx_async_header(base, users):
        async with httpx.AsyncClient() as client:
            out = []
            for user, token in users:
                answer = await client.get(f"{base}/item/{user}", headers={"Authorization": f"Bearer {token}"})
                out.append(answer.json()["value"])
            return out

    async def aiohttp_header(base, users):
        import aiohttp

        async with aiohttp.ClientSession() as session:
            out = []
            for user, token in users:
                async with session.get(f"{base}/item/{user}", headers={"Authorization": f"Bearer {token}"}) as answer:
                    out.append((await answer.json())["value"])
            return out

    def requests_cookie(base, users):
        session = requests.Session()
        out = []
        for user, token in users:
            session.cookies.set("session", token)  # the session's cookie switched to this user's
            out.append(session.get(f"{base}/item/{user}").json()["value"])
        return out

    def urllib_header(base, users):
        out = []
        for user, token in users:
            request = urllib.request.Request(f"{base}/item/{user}", headers={"Authorization": f"Bearer {token}"})
            with urllib.request.urlopen(request) as answer:
                out.append(answer.read())
        return out
"""


def wrong_credentials(server: FaultServer) -> list[tuple[str, str | None, str | None]]:
    """Requests that went out with another user's token (users are ``u<i>``, tokens ``t<i>``)."""
    return [
        (key, auth, cookie)
        for key, auth, cookie in server.credentials
        if (auth is not None and auth != f"Bearer t{key[1:]}")
        or (cookie is not None and cookie != f"session=t{key[1:]}")
    ]


@pytest.mark.slow
@pytest.mark.parametrize("items", ["users", "learned"])
@pytest.mark.parametrize(
    "loop", ["httpx_header", "httpx_async_header", "aiohttp_header", "requests_cookie", "urllib_header"]
)
def test_credentials_switched_per_user_never_go_out_for_another_user(
    app: App, monkeypatch: pytest.MonkeyPatch, capture_events: list[str], loop: str, items: str
) -> None:
    """Tokens or cookies switched per user (the review: 5 of 13 requests went out with one user's
    credentials for another user's data), per client library, with the items as a parameter and
    learned from the run before: each request reaches the upstream once, with its own user's
    credentials, and the loop's results are the plain run's."""
    import anyio

    app.write("users.py", USERS)
    app.config(f'[[targets]]\nloop = "users:{loop}"\nitems = "{items}"\nconcurrency = 4\n')
    module: Any = importlib.import_module("users")
    users = [(f"u{i}", f"t{i}") for i in range(13)]

    def call(base: str) -> Any:
        function = getattr(module, loop)  # looked up at each call: patched once installed
        return (
            anyio.run(function, base, users)
            if loop in ("httpx_async_header", "aiohttp_header")
            else function(base, users)
        )

    with FaultServer(latency=0.01) as server:
        before = call(server.url)
        install(monkeypatch, capture_events)
        for _ in range(2):  # the second run replays what the first learned
            server.credentials.clear()
            assert call(server.url) == before
            assert wrong_credentials(server) == []
            assert Counter(key for key, _, _ in server.credentials) == Counter(user for user, _ in users)
            assert "sched_accel.run " in "".join(capture_events)  # it ran patched


def wrong_tenant(server: FaultServer) -> list[tuple[str, str | None, str | None]]:
    """Requests that went out with the other tenant's token: users u0-u5 are tenant A's, the rest B's."""

    def token(key: str) -> str:
        return "tenant-A" if int(key[1:]) < 6 else "tenant-B"

    return [
        (key, auth, cookie)
        for key, auth, cookie in server.credentials
        if (auth is not None and auth != f"Bearer {token(key)}")
        or (cookie is not None and cookie != f"session={token(key)}")
    ]


@pytest.mark.slow
@pytest.mark.parametrize("loop", ["httpx_header", "requests_cookie", "urllib_header"])
def test_a_tenant_switch_after_a_run_of_items_is_kept_from_the_next_run_on(
    app: App, monkeypatch: pytest.MonkeyPatch, capture_events: list[str], loop: str
) -> None:
    """Six users of tenant A, then seven of tenant B, each item holding its tenant's token: a
    template learned on A's requests would send B's with A's token. Its credentials carry a value
    of the item they were made for, so a copy of A's request is sent ahead only for items that
    hold A's token: none of B's goes out with A's, in the first run too (issue 24 item 4). From
    the next run on, in this process or another, only the requests the run before asked for, with
    the same credentials, are sent ahead: none with the other tenant's, none twice."""
    import sched_accel

    app.write("users.py", USERS)
    app.config(f'[[targets]]\nloop = "users:{loop}"\nitems = "users"\nconcurrency = 4\n')
    module: Any = importlib.import_module("users")
    users = [(f"u{i}", "tenant-A" if i < 6 else "tenant-B") for i in range(13)]

    def function(base: str, users: list[tuple[str, str]]) -> Any:
        return getattr(module, loop)(base, users)  # looked up at each call: patched once installed

    with FaultServer(latency=0.01) as server:
        before = function(server.url, users)
        install(monkeypatch, capture_events)
        server.credentials.clear()
        assert function(server.url, users) == before
        assert wrong_tenant(server) == []  # the first run: none with the other tenant's token
        first = run_line(capture_events)
        assert int(first["prefetched"]) >= 4, first  # A's sent ahead, and B's after the loop's first of B's
        for fresh_process in (False, True):
            if fresh_process:
                sched_accel.reset()
                install(monkeypatch, capture_events)
            capture_events.clear()
            server.credentials.clear()
            assert function(server.url, users) == before
            assert wrong_tenant(server) == []
            assert Counter(key for key, _, _ in server.credentials) == Counter(user for user, _ in users)
            assert run_line(capture_events)["ahead"] == "asked_before"


LOOKUP = """
    import httpx

    #: Each user's tenant, looked up by the loop: nothing of the token is in the item.
    TENANT_OF = {f"u{i}": "tenant-A" if i < 6 else "tenant-B" for i in range(13)}


    def lookup_header(base, users):
        with httpx.Client() as client:
            return [
                client.get(f"{base}/item/{user}", headers={"Authorization": f"Bearer {TENANT_OF[user]}"}).json()["value"]
                for user in users
            ]
"""


@pytest.mark.slow
def test_a_tenant_switch_by_lookup_costs_the_first_run_at_most_a_turn_of_concurrency(
    app: App, monkeypatch: pytest.MonkeyPatch, capture_events: list[str]
) -> None:
    """Six users of tenant A, then seven of tenant B, each request's token looked up by the loop
    (nothing of it is in the item): a template learned on A's requests cannot know which item
    is B's. In the first run, requests copied with credentials made from nothing of the item are
    sent at most ``concurrency`` ahead of the loop (not the whole window), so at most that many
    of B's go out with A's token, and are not served (their credentials differ from the loop's
    own); from the next run on, only what the run before asked for, with the same credentials."""
    app.write("users.py", LOOKUP)
    app.config('[[targets]]\nloop = "users:lookup_header"\nitems = "users"\nconcurrency = 4\n')
    module: Any = importlib.import_module("users")
    users = [f"u{i}" for i in range(13)]

    with FaultServer(latency=0.02) as server:
        before = module.lookup_header(server.url, users)
        install(monkeypatch, capture_events)
        server.credentials.clear()
        assert module.lookup_header(server.url, users) == before
        first = run_line(capture_events)
        assert len(wrong_tenant(server)) <= 4, (wrong_tenant(server), first)  # was 7 (all of B's) with the window
        assert int(first["prefetched"]) >= 3, first  # A's: sent ahead
        capture_events.clear()
        server.credentials.clear()
        assert module.lookup_header(server.url, users) == before
        assert wrong_tenant(server) == []
        assert Counter(key for key, _, _ in server.credentials) == Counter(users)
