"""The contract every integration keeps (``sched_accel._integrations``, and the drivers of
``_shadow._drivers``): one suite, parametrized over every integration, layer, client and
driver, that each must pass, as ddtrace's shared ``tests/contrib/patch.py`` and
OpenTelemetry's ``BaseInstrumentor`` hold each of theirs to one standard. A new integration
is added to the registry and passes here; nothing in this file names what it does but the
way an app calls its library (:class:`Caller`, one per client) and builds a request for its
layer (:data:`MADE`).

1. its versions are declared, true of the installed library, and the ones the version matrix
   (``noxfile.py``) and ``pyproject.toml`` name;
2. every hook it names exists on the installed library, a coroutine exactly where it says;
3. each layer's ``outgoing`` names the host and port and caps every timeout (and puts back
   what it capped on the app's own objects);
4. each client describes, rebuilds, keeps and serves a real request against a real server on
   127.0.0.1, and a shadow's copy of an answer leaves the app's cookie jar alone;
5. its errors are classified: a refused connection is transient, a 503 with Retry-After is
   rate limited, with the status its library carries;
6. the registry is whole, and imports nothing of ours or of the libraries;
7. the real patching wraps every hook and, removed, puts back the very function it found.
"""

from __future__ import annotations

import abc
import ast
import functools
import http.client
import http.cookiejar
import importlib
import importlib.metadata
import importlib.util
import inspect
import json
import socket
import sys
import tomllib
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import aiohttp
import httpx
import pytest
import requests
import wrapt
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

from sched_accel._companions import patch_closing
from sched_accel._integrations import (
    CLIENTS,
    CLOSES,
    INTEGRATIONS,
    LAYERS,
    MODULES,
    Args,
    Client,
    Hook,
    Integration,
    Kwargs,
    Layer,
    Oversize,
    Request,
    http_status,
    transient,
)
from sched_accel._patching import Patch, is_ours
from sched_accel._policy import classify, patch_http
from sched_accel._shadow import _drivers
from sched_accel._unpatchable import HTTP_LIBRARIES

from ..faultserver import FaultServer, answer

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "src" / "sched_accel" / "_integrations"

#: aiohttp runs on asyncio only; the sync libraries are called from the same tests, unchanged.
ASYNCIO = pytest.mark.parametrize("anyio_backend", ["asyncio"])

BY_INTEGRATION = [pytest.param(integration, id=integration.name) for integration in INTEGRATIONS]
BY_LAYER = sorted(LAYERS)
BY_CLIENT = sorted(CLIENTS)
BY_DRIVER = sorted(_drivers.SUPPORTED)


def owner_of(library: str) -> Integration:
    """The integration whose layer ``library`` is."""
    (found,) = [i for i in INTEGRATIONS if any(layer.library == library for layer in i.layers)]
    return found


def top(library: str) -> str:
    """The top-level module of the library a layer's requests go through."""
    return LAYERS[library].hook.module.partition(".")[0]


# == 1. declared, and true of the installed version ===============================================
def lowest(specifier: str) -> Version | None:
    """The lower bound a pip specifier names (``>=``, ``~=`` or ``==``), if any."""
    bounds = [Version(s.version) for s in SpecifierSet(specifier) if s.operator in (">=", "~=", "==")]
    return max(bounds) if bounds else None


def _mentions_nox(node: ast.AST) -> bool:
    return any(isinstance(n, ast.Name) and n.id == "nox" for n in ast.walk(node)) or (
        isinstance(node, ast.Import) and any(alias.name == "nox" for alias in node.names)
    )


@functools.cache
def matrix_lowest() -> dict[str, Version]:
    """``noxfile.py``'s ``SUPPORTED``: the lowest version of each library the matrix runs, by
    canonical name, as the noxfile itself computes it. The noxfile imports ``nox``, which need
    not be here: its statements that name ``nox`` (the import, the options, the sessions) are
    left out, the rest run as written."""
    path = ROOT / "noxfile.py"
    tree = ast.parse(path.read_text(encoding="utf-8"))
    tree.body = [node for node in tree.body if not _mentions_nox(node)]
    namespace: dict[str, Any] = {"__file__": str(path), "__name__": "noxfile"}
    exec(compile(tree, str(path), "exec"), namespace)
    supported: dict[str, tuple[str, str | None]] = namespace["SUPPORTED"]
    return {canonicalize_name(name): Version(low) for name, (low, _) in supported.items()}


@functools.cache
def pyproject_lowest() -> dict[str, Version]:
    """The lower bounds ``pyproject.toml`` declares for what an app may use: its
    ``dependencies`` and the ``test`` extra (where the client libraries and drivers are), by
    canonical name. (The ``redis`` extra is the coordination backend's own client: not an app's.)"""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    found: dict[str, Version] = {}
    for line in [*project["dependencies"], *project["optional-dependencies"]["test"]]:
        requirement = Requirement(line)
        low = lowest(str(requirement.specifier))
        if low is not None:
            found[canonicalize_name(requirement.name)] = low
    return found


@functools.cache
def distributions() -> dict[str, list[str]]:
    """Top-level module -> the installed distributions that provide it."""
    return dict(importlib.metadata.packages_distributions())


@pytest.mark.parametrize("integration", BY_INTEGRATION)
def test_an_integration_supports_the_installed_version(integration: Integration) -> None:
    """``supported`` is "" for the standard library's (every module of it is the stdlib's), else
    a specifier with a lower bound that the installed distribution satisfies; that bound is the
    lowest the version matrix runs (noxfile.py) and pyproject's, where pyproject lists it."""
    if not integration.supported:
        assert integration.modules <= sys.stdlib_module_names
        return
    assert not integration.modules <= sys.stdlib_module_names
    low = lowest(integration.supported)
    assert low is not None, f"{integration.name}: {integration.supported!r} names no lower bound"
    installed = Version(importlib.metadata.version(integration.name))
    assert SpecifierSet(integration.supported).contains(installed, prereleases=True), (
        f"{integration.name} {installed} is not {integration.supported}"
    )
    name = canonicalize_name(integration.name)
    assert matrix_lowest().get(name) == low, f"noxfile.py's SUPPORTED[{name!r}] is not {low}"
    if name in pyproject_lowest():
        assert pyproject_lowest()[name] == low


@pytest.mark.parametrize("name", BY_DRIVER)
def test_a_driver_supports_the_installed_version(name: str) -> None:
    """Each driver's ``SUPPORTED`` names a lower bound that the installed distribution (of the
    module the driver is named after) satisfies, and that pyproject's test extra names too."""
    supported = _drivers.SUPPORTED[name]
    module = importlib.import_module(f"{_drivers.__name__}.{name}")
    assert module.SUPPORTED == supported
    low = lowest(supported)
    assert low is not None, f"{name}: {supported!r} names no lower bound"
    provided = distributions().get(name, [])
    if not provided:
        pytest.skip(f"{name} is not installed")
    for distribution in provided:
        installed = Version(importlib.metadata.version(distribution))
        assert SpecifierSet(supported).contains(installed, prereleases=True), f"{distribution} {installed}"
        listed = pyproject_lowest().get(canonicalize_name(distribution))
        assert listed in (None, low), f"pyproject says {distribution}>={listed}, the driver {supported}"


# == 2. every hook exists on the installed library ================================================
#: The methods that close a client asynchronously.
ASYNC_CLOSES = frozenset({"aclose", "__aexit__"})


def hooks_of(integration: Integration) -> list[tuple[str, Hook, bool]]:
    """Each hook an integration names: its kind, and whether it is a coroutine function."""
    return [
        *(("layer", layer.hook, layer.is_async) for layer in integration.layers),
        *(("wire", hook, is_async) for hook, is_async in integration.wires),
        *(("close", hook, hook.attribute in ASYNC_CLOSES) for hook in integration.closes),
        *(("always", hook, False) for hook, _ in integration.always),  # its wrappers are plain functions
        *(("cookies", hook, False) for hook in integration.stores_cookies),
    ]


BY_HOOK = [
    pytest.param(hook, is_async, id=f"{integration.name}-{kind}-{hook}")
    for integration in INTEGRATIONS
    for kind, hook, is_async in hooks_of(integration)
]


def missing_extra(hook: Hook) -> str | None:
    """Why a hook is absent from the installed library by design, if it is: httpcore's HTTP/2
    connections are stand-ins without ``h2`` (``httpx[http2]``), and none of them is used then."""
    if "HTTP2" in hook.owner and importlib.util.find_spec("h2") is None:
        return f"{hook}: h2 is not installed (httpcore's HTTP/2 classes are stand-ins without it)"
    if hook.attribute == "update_cookies_from_headers" and Version(importlib.metadata.version("aiohttp")) < Version(
        "3.12"
    ):
        return f"{hook}: aiohttp before 3.12 stores an answer's cookies through update_cookies alone"
    return None


def holder(hook: Hook) -> Any:
    """What holds the hook's attribute in the installed library (a class, or the module)."""
    return hook.find(importlib.import_module(hook.module))


@pytest.mark.parametrize(("hook", "is_async"), BY_HOOK)
def test_every_hook_exists_on_the_installed_library(hook: Hook, is_async: bool) -> None:
    """Each layer, wire, close, always-on and cookie-store hook is found on the imported
    library, and is a coroutine function exactly when it says so (layers and wires:
    ``is_async``; closes: ``aclose`` and ``__aexit__``)."""
    found = holder(hook)
    if found is None and (reason := missing_extra(hook)) is not None:
        pytest.skip(reason)
    assert found is not None, f"{hook} is not on the installed {hook.module}"
    assert hook.attribute in vars(found), f"{hook}: inherited, not the owner's own"
    assert inspect.iscoroutinefunction(getattr(found, hook.attribute)) is is_async


@pytest.mark.parametrize("name", BY_DRIVER)
def test_every_driver_hook_imports(name: str) -> None:
    """Each module a driver hooks imports, is its own library's, and its hooks are the
    registry's (``_drivers.HOOKS``)."""
    module = importlib.import_module(f"{_drivers.__name__}.{name}")
    assert module.HOOKS, f"{name} hooks nothing"
    assert set(module.HOOKS) <= set(_drivers.HOOKS)
    if importlib.util.find_spec(name) is None:
        pytest.skip(f"{name} is not installed")
    for hooked, install in module.HOOKS:
        assert hooked.partition(".")[0] == name
        assert callable(install)
        importlib.import_module(hooked)


# == 3. each layer's outgoing ======================================================================
PORT = 8123
URL = f"http://127.0.0.1:{PORT}/x"
CAP = 2.0


@dataclass
class Made:
    """A layer's call as its library makes it: the instance, the arguments, where its timeouts
    are (``sent``: as these arguments send them; ``own``: as the app's own objects hold them),
    and the slots left unset when another slot bounds the whole request (aiohttp's ``total``)."""

    instance: Any
    args: Args
    kwargs: Kwargs
    sent: Callable[[Args, Kwargs], dict[str, Any]]
    own: Callable[[], dict[str, Any]]
    bounded_by_total: frozenset[str] = frozenset()


HTTPX_SLOTS = ("connect", "read", "write", "pool")
AIOHTTP_SLOTS = ("total", "connect", "sock_read", "sock_connect")


def _httpx_timeouts(args: Args, kwargs: Kwargs) -> dict[str, Any]:
    request = args[0] if args else kwargs["request"]
    return dict(request.extensions["timeout"])


@asynccontextmanager
async def _httpx(url: str, value: float | None) -> AsyncIterator[Made]:
    """``handle_request(request)``, the request as httpx's client builds it (timeouts in its extensions)."""
    request = httpx.Request("GET", url, extensions={"timeout": dict.fromkeys(HTTPX_SLOTS, value)})
    with httpx.HTTPTransport() as transport:
        yield Made(transport, (request,), {}, _httpx_timeouts, lambda: dict(request.extensions["timeout"]))


@asynccontextmanager
async def _httpx_async(url: str, value: float | None) -> AsyncIterator[Made]:
    request = httpx.Request("GET", url, extensions={"timeout": dict.fromkeys(HTTPX_SLOTS, value)})
    async with httpx.AsyncHTTPTransport() as transport:
        yield Made(transport, (request,), {}, _httpx_timeouts, lambda: dict(request.extensions["timeout"]))


@asynccontextmanager
async def _requests(url: str, value: float | None) -> AsyncIterator[Made]:
    """``HTTPAdapter.send(request, **kwargs)`` as ``Session.send`` calls it."""
    prepared = requests.Request("GET", url).prepare()
    kwargs: Kwargs = {"stream": False, "timeout": value, "verify": True, "cert": None, "proxies": {}}
    adapter = requests.adapters.HTTPAdapter()
    try:
        yield Made(
            adapter,
            (prepared,),
            kwargs,
            lambda args, sent: {"timeout": args[2] if len(args) > 2 else sent["timeout"]},
            lambda: {"timeout": kwargs["timeout"]},
        )
    finally:
        adapter.close()


@asynccontextmanager
async def _urllib(url: str, value: float | None) -> AsyncIterator[Made]:
    """``do_open(http_class, req)`` as ``HTTPHandler.http_open`` calls it (the opener set ``req.timeout``)."""
    req = urllib.request.Request(url)
    req.timeout = value  # type: ignore[attr-defined]  # as OpenerDirector.open sets it
    yield Made(
        urllib.request.HTTPHandler(),
        (http.client.HTTPConnection, req),
        {},
        lambda args, kwargs: {"timeout": args[1].timeout},
        lambda: {"timeout": req.timeout},  # type: ignore[attr-defined]
    )


@asynccontextmanager
async def _aiohttp(url: str, value: float | None) -> AsyncIterator[Made]:
    """``ClientSession._request(method, str_or_url, **kwargs)``, with the request's own
    ``timeout``; without one (``value`` None), the session's (here: no limit at all)."""
    timeout = aiohttp.ClientTimeout(**dict.fromkeys(AIOHTTP_SLOTS, value))
    kwargs: Kwargs = {} if value is None else {"timeout": timeout}
    async with aiohttp.ClientSession(timeout=timeout) as session:

        def slots(args: Args, sent: Kwargs) -> dict[str, Any]:
            return {slot: getattr(sent.get("timeout", session.timeout), slot) for slot in AIOHTTP_SLOTS}

        yield Made(
            session,
            ("GET", url),
            kwargs,
            slots,
            lambda: slots((), kwargs),
            bounded_by_total=frozenset(AIOHTTP_SLOTS) - {"total"},
        )


#: How each layer's library calls it, by library name.
MADE: dict[str, Callable[[str, float | None], AbstractAsyncContextManager[Made]]] = {
    "httpx": _httpx,
    "httpx-async": _httpx_async,
    "requests": _requests,
    "urllib": _urllib,
    "aiohttp": _aiohttp,
}


def capped(value: float | None, slot: str, made: Made) -> float | None:
    """What a slot holding ``value`` is sent with under :data:`CAP`."""
    if value is not None and value <= CAP:
        return value  # shorter: left alone
    if value is None and slot in made.bounded_by_total:
        return None  # the capped total bounds it
    return CAP


@ASYNCIO
@pytest.mark.anyio
@pytest.mark.parametrize("value", [30.0, 0.5, None], ids=["longer", "shorter", "none"])
@pytest.mark.parametrize("library", BY_LAYER)
async def test_outgoing_names_the_host_and_caps_every_timeout(library: str, value: float | None) -> None:
    """With a cap, every timeout of the call is at most the cap (none at all becomes the cap),
    a shorter one is left as it is, and the host and port are the URL's."""
    async with MADE[library](URL, value) as made:
        out = LAYERS[library].outgoing(made.instance, made.args, made.kwargs, CAP)
        try:
            assert (out.host, out.port) == ("127.0.0.1", PORT)
            sent = made.sent(out.args, out.kwargs)
            assert sent == {slot: capped(value, slot, made) for slot in sent}
        finally:
            if out.restore is not None:
                out.restore()


@ASYNCIO
@pytest.mark.anyio
@pytest.mark.parametrize("library", BY_LAYER)
async def test_outgoing_without_a_cap_leaves_the_timeouts_alone(library: str) -> None:
    """With no cap (a target without ``timeout``), the call goes with the app's own timeouts."""
    async with MADE[library](URL, 30.0) as made:
        out = LAYERS[library].outgoing(made.instance, made.args, made.kwargs, None)
        assert (out.host, out.port) == ("127.0.0.1", PORT)
        assert set(made.sent(out.args, out.kwargs).values()) == {30.0}
        assert out.restore is None
        assert set(made.own().values()) == {30.0}


@ASYNCIO
@pytest.mark.anyio
@pytest.mark.parametrize("library", BY_LAYER)
async def test_the_apps_own_objects_get_their_timeouts_back(library: str) -> None:
    """Once the call is done (``restore()``, where the layer gives one), the objects the app
    made and may reuse (a Request, its kwargs, a ClientTimeout) hold the app's own timeouts."""
    async with MADE[library](URL, 30.0) as made:
        out = LAYERS[library].outgoing(made.instance, made.args, made.kwargs, CAP)
        assert CAP in made.sent(out.args, out.kwargs).values()
        if out.restore is not None:
            out.restore()
        assert set(made.own().values()) == {30.0}


URLS = {
    "ip-and-port": "http://127.0.0.1:8123/x",
    "ipv6": "http://[::1]:8123/x",
    "upper-case": "http://API.Example.test:8123/x",
    "no-port": "http://api.example.test/x",
    "https-no-port": "https://api.example.test/x",
    "idn": "http://bücher.example:8123/x",
}


@ASYNCIO
@pytest.mark.anyio
@pytest.mark.parametrize(
    ("case", "library"),
    [pytest.param(case, library, id=f"{case}-{library}") for case in URLS for library in BY_LAYER],
)
async def test_one_url_is_one_host_and_port_at_every_layer(case: str, library: str) -> None:
    """The same URL names the same host and port at every layer: the host as the URL writes it
    (in lower case), the port only where the URL has one, as ``[hosts."host:port"]`` is looked up."""
    url = URLS[case]
    parts = urllib.parse.urlsplit(url)
    async with MADE[library](url, None) as made:
        out = LAYERS[library].outgoing(made.instance, made.args, made.kwargs, None)
    assert (out.host, out.port) == (parts.hostname, parts.port)


# == 4. each client, against a real server =========================================================
@dataclass(frozen=True)
class Got:
    """An answer as the app reads it through the library's normal API."""

    status: int
    body: bytes
    headers: tuple[tuple[str, str], ...]  # names in lower case

    def header(self, name: str) -> list[str]:
        return [value for key, value in self.headers if key == name]


def got(status: int, body: bytes, headers: Any) -> Got:
    return Got(status, body, tuple((str(k).lower(), str(v)) for k, v in headers))


class Caller(abc.ABC):
    """How an app calls one library: its client or session, through its normal API. Every
    step is a coroutine, for one suite over sync and async clients: a sync library's call is
    made as it is, blocking (the server answers from its own thread)."""

    #: Whether the library fills its cookie jar above the layer we answer at (from the answer's
    #: headers, or its ``raw``), else at the layer itself (aiohttp's ``_request``): there a send
    #: ahead must leave it alone (the policy's ``KEPT_FOR_LOOP``: tests/prefetch/test_cookies_in_time.py)
    #: and ``serve`` fill it. Either way a served answer's cookies reach it, and a shadow's never.
    jar_above_layer: ClassVar[bool] = True

    async def __aenter__(self) -> Caller:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @abc.abstractmethod
    async def open(self) -> None: ...

    @abc.abstractmethod
    async def close(self) -> None: ...

    @abc.abstractmethod
    async def get(self, url: str) -> Got: ...

    @abc.abstractmethod
    async def post(self, url: str, body: bytes) -> Got: ...

    @abc.abstractmethod
    async def error(self, url: str) -> BaseException:
        """The library's own error for an error answer (``raise_for_status`` and the like)."""

    @abc.abstractmethod
    def cookies(self) -> list[str]:
        """The names of the cookies in the client's jar."""

    @abc.abstractmethod
    def forget_cookies(self) -> None: ...


class HttpxCaller(Caller):
    client: httpx.Client

    async def open(self) -> None:
        self.client = httpx.Client()

    async def close(self) -> None:
        self.client.close()

    async def get(self, url: str) -> Got:
        response = self.client.get(url)
        return got(response.status_code, response.content, response.headers.multi_items())

    async def post(self, url: str, body: bytes) -> Got:
        response = self.client.post(url, content=body)
        return got(response.status_code, response.content, response.headers.multi_items())

    async def error(self, url: str) -> BaseException:
        try:
            self.client.get(url).raise_for_status()
        except httpx.HTTPStatusError as exc:
            return exc
        raise AssertionError(f"no error for {url}")

    def cookies(self) -> list[str]:
        return list(self.client.cookies.keys())

    def forget_cookies(self) -> None:
        self.client.cookies.clear()


class HttpxAsyncCaller(Caller):
    client: httpx.AsyncClient

    async def open(self) -> None:
        self.client = httpx.AsyncClient()

    async def close(self) -> None:
        await self.client.aclose()

    async def get(self, url: str) -> Got:
        response = await self.client.get(url)
        return got(response.status_code, response.content, response.headers.multi_items())

    async def post(self, url: str, body: bytes) -> Got:
        response = await self.client.post(url, content=body)
        return got(response.status_code, response.content, response.headers.multi_items())

    async def error(self, url: str) -> BaseException:
        try:
            (await self.client.get(url)).raise_for_status()
        except httpx.HTTPStatusError as exc:
            return exc
        raise AssertionError(f"no error for {url}")

    def cookies(self) -> list[str]:
        return list(self.client.cookies.keys())

    def forget_cookies(self) -> None:
        self.client.cookies.clear()


class RequestsCaller(Caller):
    session: requests.Session

    async def open(self) -> None:
        self.session = requests.Session()

    async def close(self) -> None:
        self.session.close()

    async def get(self, url: str) -> Got:
        response = self.session.get(url, timeout=10)
        return got(response.status_code, response.content, response.headers.items())

    async def post(self, url: str, body: bytes) -> Got:
        response = self.session.post(url, data=body, timeout=10)
        return got(response.status_code, response.content, response.headers.items())

    async def error(self, url: str) -> BaseException:
        try:
            self.session.get(url, timeout=10).raise_for_status()
        except requests.HTTPError as exc:
            return exc
        raise AssertionError(f"no error for {url}")

    def cookies(self) -> list[str]:
        return list(self.session.cookies.keys())

    def forget_cookies(self) -> None:
        self.session.cookies.clear()


class UrllibCaller(Caller):
    """An opener with a cookie jar, as an app that keeps a session with urllib builds one."""

    jar: http.cookiejar.CookieJar
    opener: urllib.request.OpenerDirector

    async def open(self) -> None:
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))

    async def close(self) -> None:
        self.opener.close()

    async def get(self, url: str) -> Got:
        with self.opener.open(url, timeout=10) as response:
            return got(response.status, response.read(), response.headers.items())

    async def post(self, url: str, body: bytes) -> Got:
        with self.opener.open(urllib.request.Request(url, data=body), timeout=10) as response:
            return got(response.status, response.read(), response.headers.items())

    async def error(self, url: str) -> BaseException:
        try:
            self.opener.open(url, timeout=10).close()
        except urllib.error.HTTPError as exc:
            exc.close()  # its body is not needed: its code and headers stay
            return exc
        raise AssertionError(f"no error for {url}")

    def cookies(self) -> list[str]:
        return [cookie.name for cookie in self.jar]

    def forget_cookies(self) -> None:
        self.jar.clear()


class AiohttpCaller(Caller):
    """A session whose jar takes cookies from an IP address's answers (127.0.0.1 here)."""

    jar_above_layer = False  # ClientSession._request fills it: the layer itself (serve does, for a served answer)
    session: aiohttp.ClientSession

    async def open(self) -> None:
        self.session = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))

    async def close(self) -> None:
        await self.session.close()

    async def get(self, url: str) -> Got:
        async with self.session.get(url) as response:
            return got(response.status, await response.read(), response.headers.items())

    async def post(self, url: str, body: bytes) -> Got:
        async with self.session.post(url, data=body) as response:
            return got(response.status, await response.read(), response.headers.items())

    async def error(self, url: str) -> BaseException:
        async with self.session.get(url) as response:
            try:
                response.raise_for_status()
            except aiohttp.ClientResponseError as exc:
                return exc
        raise AssertionError(f"no error for {url}")

    def cookies(self) -> list[str]:
        return [cookie.key for cookie in self.session.cookie_jar]

    def forget_cookies(self) -> None:
        self.session.cookie_jar.clear()


#: How an app calls each client's library, by client name.
CALLERS: dict[str, type[Caller]] = {
    "httpx": HttpxCaller,
    "httpx-async": HttpxAsyncCaller,
    "requests": RequestsCaller,
    "urllib": UrllibCaller,
    "aiohttp": AiohttpCaller,
}


@dataclass(frozen=True)
class Call:
    """One call of a layer, as the library made it: the bound method, and its arguments."""

    wrapped: Callable[..., Any]
    instance: Any
    args: Args
    kwargs: Kwargs


@contextmanager
def at_layer(layer: Layer, answer: Callable[[Any, Args, Kwargs], Any] | None = None) -> Iterator[list[Call]]:
    """Each call of ``layer`` in the block, as it is made; sent as made, or, with ``answer``,
    answered by ``answer(instance, args, kwargs)`` instead (as a prefetch run answers it)."""
    owner = holder(layer.hook)
    attribute = layer.hook.attribute
    original = vars(owner)[attribute]
    calls: list[Call] = []

    def sync(wrapped: Callable[..., Any], instance: Any, args: Args, kwargs: Kwargs) -> Any:
        calls.append(Call(wrapped, instance, args, kwargs))
        return wrapped(*args, **kwargs) if answer is None else answer(instance, args, kwargs)

    async def async_(wrapped: Callable[..., Any], instance: Any, args: Args, kwargs: Kwargs) -> Any:
        calls.append(Call(wrapped, instance, args, kwargs))
        return await wrapped(*args, **kwargs) if answer is None else answer(instance, args, kwargs)

    setattr(owner, attribute, wrapt.FunctionWrapper(original, async_ if layer.is_async else sync))
    try:
        yield calls
    finally:
        setattr(owner, attribute, original)


async def settled(value: Any) -> Any:
    """``value``, awaited when a coroutine's (an async client's step)."""
    return await value if inspect.isawaitable(value) else value


async def sent_ahead(client: Client, call: Call, request: Request) -> Any:
    """``request`` sent through the layer of ``call`` (its instance), its answer kept."""
    response = await settled(call.wrapped(*request.args, **request.kwargs))
    assert client.announced(response, request.args) is None  # a short answer: kept
    kept = await settled(client.keep(response, request.args))
    assert not isinstance(kept, Oversize)
    return kept


async def one_call(library: str, caller: Caller, url: str) -> Call:
    """The layer's call of an app's GET of ``url``."""
    with at_layer(LAYERS[library]) as calls:
        await caller.get(url)
    (call,) = calls
    return call


def described(client: Client, call: Call) -> Request:
    request = client.describe(call.instance, call.args, call.kwargs)
    assert request is not None
    return request


def body_of(key: str) -> bytes:
    return json.dumps(answer(key)).encode()


def busy(library: str) -> str:
    """The key whose first request a server of this module answers 503 (one per client)."""
    return f"busy-{library}"


@pytest.fixture(scope="module")
def server() -> Iterator[FaultServer]:
    """One server for the module (each test's keys are its client's: ``<key>-<library>``)."""
    with FaultServer(latency=0.0, faults={busy(library): ["503"] for library in CLIENTS}) as running:
        yield running


@ASYNCIO
@pytest.mark.anyio
@pytest.mark.parametrize("library", BY_CLIENT)
async def test_a_get_is_described_rebuilt_sent_kept_and_served(library: str, server: FaultServer) -> None:
    """A GET at the layer is described by its method and URL (as ``named`` says); rebuilt for
    another URL, it is the same request there (equal ``extra``: headers and client); sent
    through the layer and kept, its status is the server's; served, the app reads through the
    library's own API what a direct request reads, and the server sees nothing more."""
    client = CLIENTS[library]
    keys = (f"first-{library}", f"second-{library}", busy(library))
    first, second, refusing = (f"{server.url}/item/{key}" for key in keys)
    async with CALLERS[library]() as caller:
        call = await one_call(library, caller, first)
        request = described(client, call)
        assert (request.method, request.url) == ("GET", first) == client.named(call.args, call.kwargs)
        assert client.what(call.args, call.kwargs) == f"GET {first}"
        assert request.body is None

        other = client.rebuild(request, call.instance, second)
        assert other is not None
        assert (other.method, other.url, other.extra) == ("GET", second, request.extra)
        assert client.named(other.args, other.kwargs) == ("GET", second)

        kept = await sent_ahead(client, call, other)
        assert client.status(kept).status_code == 200
        refused = client.rebuild(request, call.instance, refusing)
        assert refused is not None
        assert client.status(await sent_ahead(client, call, refused)).status_code == 503
        assert server.requests[keys[1]] == 1

        with at_layer(LAYERS[library], lambda i, a, k: client.serve(kept, i, a, k)) as served_calls:
            served = await caller.get(second)
        assert len(served_calls) == 1 and server.requests[keys[1]] == 1  # answered: not sent again
        direct = await caller.get(second)
    assert server.requests[keys[1]] == 2
    assert (served.status, served.body) == (direct.status, direct.body) == (200, body_of(keys[1]))
    assert served.header("content-type") == direct.header("content-type") == ["application/json"]


@ASYNCIO
@pytest.mark.anyio
@pytest.mark.parametrize("library", BY_CLIENT)
async def test_rebuild_never_takes_a_request_to_another_host(library: str, server: FaultServer) -> None:
    """A request rebuilt for another host is None: its Host header, cookies and credentials
    are the first host's."""
    client = CLIENTS[library]
    async with CALLERS[library]() as caller:
        call = await one_call(library, caller, f"{server.url}/item/first-{library}")
    assert client.rebuild(described(client, call), call.instance, "http://elsewhere.test/item/first") is None


@ASYNCIO
@pytest.mark.anyio
@pytest.mark.parametrize("library", BY_CLIENT)
async def test_a_post_is_described_only_when_reads_says_so(library: str, server: FaultServer) -> None:
    """A POST with a body is not described by default; with ``reads``, it is asked with the
    request's method, URL and body, and described as a read with the very bytes the server
    received; not, when ``reads`` says it is no read."""
    client = CLIENTS[library]
    url, body = f"{server.url}/item/posted-{library}", b'{"query": "{ user(id: 1) { name } }"}'
    async with CALLERS[library]() as caller:
        with at_layer(LAYERS[library]) as calls:
            posted = await caller.post(url, body)
    (call,) = calls
    received = json.loads(posted.body)["body"].encode()
    assert received == body
    assert client.describe(call.instance, call.args, call.kwargs) is None
    asked: list[tuple[str, str, bytes | None]] = []

    def reads(method: str, url: str, headers: Any, body: bytes | None) -> bool:
        asked.append((method, url, body))
        return True

    read = client.describe(call.instance, call.args, call.kwargs, reads=reads)
    assert read is not None
    assert asked == [("POST", url, received)]
    assert (read.method, read.url, read.body) == ("POST", url, received)
    assert ("<body>", received) in read.extra
    assert client.describe(call.instance, call.args, call.kwargs, reads=lambda *a: False) is None


@pytest.fixture(scope="module")
def cookie_server() -> Iterator[FaultServer]:
    with FaultServer(latency=0.0, tell={"Set-Cookie": "session=s3cr3t; Path=/"}) as running:
        yield running


@ASYNCIO
@pytest.mark.anyio
@pytest.mark.parametrize("library", BY_CLIENT)
async def test_a_shadows_answer_sets_no_cookie_in_the_apps_jar(library: str, cookie_server: FaultServer) -> None:
    """An answer with ``Set-Cookie`` served by ``for_shadow`` reads as served, but leaves the
    client's jar empty (and has no ``Set-Cookie`` where the default ``for_shadow`` applies);
    the same answer served to the loop (``serve``) does fill it, where the library fills its
    jar above the layer: the check sees cookies when they come."""
    client, layer = CLIENTS[library], LAYERS[library]
    key = f"k-{library}"
    url = f"{cookie_server.url}/item/{key}"
    async with CALLERS[library]() as caller:
        call = await one_call(library, caller, url)
        assert caller.cookies() == ["session"]  # the jar takes this server's cookies
        caller.forget_cookies()
        request = described(client, call)

        kept = await sent_ahead(client, call, request)
        if not caller.jar_above_layer:  # sent here without the policy's hooks: filled by the send itself
            caller.forget_cookies()
        with at_layer(layer, lambda i, a, k: client.for_shadow(kept, i, a, k)):
            shadowed = await caller.get(url)
        assert (shadowed.status, shadowed.body) == (200, body_of(key))
        assert caller.cookies() == []
        if type(client).for_shadow is Client.for_shadow:
            assert shadowed.header("set-cookie") == []

        kept = await sent_ahead(client, call, request)
        caller.forget_cookies()
        with at_layer(layer, lambda i, a, k: client.serve(kept, i, a, k)):
            served = await caller.get(url)
        assert (served.status, served.body) == (200, body_of(key))
        assert served.header("set-cookie") == ["session=s3cr3t; Path=/"]
        assert caller.cookies() == ["session"]


# == 5. transient and status ======================================================================
@pytest.fixture
def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (bound, then closed)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def raised(call: Awaitable[Any]) -> Exception:
    try:
        await call
    except Exception as exc:  # noqa: BLE001 - whatever the library raises is the point
        return exc
    raise AssertionError("nothing raised")


@ASYNCIO
@pytest.mark.anyio
@pytest.mark.parametrize("library", BY_CLIENT)
async def test_a_refused_connection_is_transient(library: str, closed_port: int) -> None:
    """A real connection refused, raised by the library as its own error, is transient by the
    registry, and ``classify`` retries it as such (no status)."""
    async with CALLERS[library]() as caller:
        exc = await raised(caller.get(f"http://127.0.0.1:{closed_port}/item/k"))
    assert type(exc).__module__.partition(".")[0] == top(library), repr(exc)
    assert transient(exc) is True
    failure = classify(exc)
    assert failure is not None
    assert (failure.kind, failure.status) == ("transient", None)


@pytest.fixture(scope="module")
def busy_server() -> Iterator[FaultServer]:
    refusing = {busy(library): ["503"] for library in CLIENTS}
    with FaultServer(latency=0.0, faults=refusing, tell={"Retry-After": "1"}) as running:
        yield running


@ASYNCIO
@pytest.mark.anyio
@pytest.mark.parametrize("library", BY_CLIENT)
async def test_a_503_with_retry_after_is_rate_limited(library: str, busy_server: FaultServer) -> None:
    """A real 503 with ``Retry-After: 1``, as the library's own error, is rate limited with its
    status and wait. Its status and headers are read by the integration that says it reads
    them (``status``: urllib's ``HTTPError``, aiohttp's ``ClientResponseError``), else from the
    error's ``.response`` (httpx's, requests')."""
    async with CALLERS[library]() as caller:
        exc = await caller.error(f"{busy_server.url}/item/{busy(library)}")
    assert busy_server.requests[busy(library)] == 1
    failure = classify(exc)
    assert failure is not None
    assert (failure.kind, failure.status, failure.retry_after) == ("rate_limited", 503, 1.0)
    found = http_status(exc)
    if owner_of(library).status is not None:
        assert found is not None
        status, headers = found
        assert (status, headers.get("Retry-After")) == (503, "1")
    else:
        assert found is None
        response: Any = getattr(exc, "response", None)  # what the policy reads
        assert response.status_code == 503


# == 6. the registry ==============================================================================
def test_layers_and_clients_name_the_same_libraries() -> None:
    """Each integration has a client per layer, by the same name; names are unique across the
    registry, and this suite knows how an app calls each."""
    for integration in INTEGRATIONS:
        assert [c.library for c in integration.clients] == [layer.library for layer in integration.layers]
    assert sum(len(i.layers) for i in INTEGRATIONS) == len(LAYERS) == len(CLIENTS)
    assert set(LAYERS) == set(CLIENTS) == set(MADE) == set(CALLERS)


@pytest.mark.parametrize("library", BY_CLIENT)
def test_a_client_is_async_as_its_layer(library: str) -> None:
    """A client's ``is_async`` is its layer's, and so are its steps that wait on the network."""
    client = CLIENTS[library]
    assert client.is_async is LAYERS[library].is_async
    assert inspect.iscoroutinefunction(client.keep) is client.is_async


@pytest.mark.parametrize("integration", BY_INTEGRATION)
def test_an_integrations_modules_are_importable_top_level_names(integration: Integration) -> None:
    """``modules`` are top-level module names, each importable here, and its hooks' modules
    are among them."""
    assert integration.modules
    for name in integration.modules:
        assert "." not in name and importlib.util.find_spec(name) is not None, name
    for _, hook, _ in hooks_of(integration):
        assert hook.module.partition(".")[0] in integration.modules, hook


def test_modules_are_the_http_libraries_a_fetch_may_name() -> None:
    """``MODULES`` is every integration's modules, and what ``_unpatchable`` lets a fetch name."""
    assert MODULES == HTTP_LIBRARIES == frozenset().union(*(i.modules for i in INTEGRATIONS))


def test_every_close_belongs_to_a_library_in_the_registry() -> None:
    """``CLOSES`` is every integration's closes, each of a module of the integration naming it."""
    assert list(CLOSES) == [hook for i in INTEGRATIONS for hook in i.closes]
    for integration in INTEGRATIONS:
        for hook in integration.closes:
            assert hook.module.partition(".")[0] in integration.modules, hook


def test_an_error_of_no_library_is_none_of_theirs() -> None:
    """``transient`` and ``http_status`` answer None for an exception no integration owns."""
    for exc in (ValueError("x"), ConnectionRefusedError(111, "refused"), KeyError("status")):
        assert transient(exc) is None
        assert http_status(exc) is None


def imports_at_import_time(tree: ast.Module) -> Iterator[ast.Import | ast.ImportFrom]:
    """The imports a module runs as it is imported: not those inside a function, nor under
    ``if TYPE_CHECKING:``."""
    pending: list[ast.AST] = list(tree.body)
    while pending:
        node = pending.pop()
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        elif isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            pending.extend(node.orelse)
        else:
            pending.extend(ast.iter_child_nodes(node))


@pytest.mark.parametrize("path", sorted(PACKAGE.glob("*.py")), ids=lambda path: path.name)
def test_the_registry_imports_nothing_else_of_ours_nor_the_libraries(path: Path) -> None:
    """Within ``_integrations`` only relative imports of the package itself (``from ._base``,
    ``from . import ...``), never ``sched_accel``'s; at import time, nothing but the standard
    library: each library is read from ``sys.modules`` or imported inside a call."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level:
            assert node.level == 1 and node.module in (None, "_base"), ast.unparse(node)
        elif isinstance(node, ast.ImportFrom | ast.Import):
            names = [node.module or ""] if isinstance(node, ast.ImportFrom) else [a.name for a in node.names]
            assert not any(n == "sched_accel" or n.startswith("sched_accel.") for n in names), ast.unparse(node)
    for node in imports_at_import_time(tree):
        if isinstance(node, ast.ImportFrom) and node.level:
            continue
        names = [node.module or ""] if isinstance(node, ast.ImportFrom) else [a.name for a in node.names]
        for name in names:
            assert name.partition(".")[0] in sys.stdlib_module_names | {"__future__"}, ast.unparse(node)


# == 7. patched and unpatched by the same handle ===================================================
@pytest.mark.parametrize("integration", BY_INTEGRATION)
def test_the_patch_wraps_every_hook_and_puts_back_what_it_found(integration: Integration) -> None:
    """The real patching (``patch_http``: layers, wires, always-on and cookie-store hooks;
    ``patch_closing``: closes) wraps each hook of the integration with a wrapper of ours; removing the patch puts
    back the very function object that was there."""
    for other in INTEGRATIONS:  # every library imported: each hook is wrapped now, none awaited
        for _, hook, _ in hooks_of(other):
            importlib.import_module(hook.module)
    found = [(hook, owner) for _, hook, _ in hooks_of(integration) if (owner := holder(hook)) is not None]
    assert all(missing_extra(hook) for _, hook, _ in hooks_of(integration) if holder(hook) is None)
    assert found
    before = {hook: vars(owner)[hook.attribute] for hook, owner in found}
    assert not any(is_ours(function) for function in before.values())
    patch = Patch("<contract>")
    try:
        patch_http(patch, lambda name, callback: callback(importlib.import_module(name)))
        patch_closing(patch)
        for hook, owner in found:
            now = vars(owner)[hook.attribute]
            assert is_ours(now) and now is not before[hook], hook
            assert now.__wrapped__ is before[hook], hook
    finally:
        patch.remove()
    assert {hook: vars(owner)[hook.attribute] for hook, owner in found} == before
    for hook, owner in found:
        assert vars(owner)[hook.attribute] is before[hook], hook
