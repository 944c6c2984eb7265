"""aiohttp (3.9 and later): ``ClientSession._request``, what ``get``, ``request`` and the
others call (private, but it has kept its name and signature through aiohttp 3.x; the version
matrix, ``noxfile.py``, runs our tests on the lowest and the newest).

- **Where**: ``_request(method, str_or_url, **kwargs)``; the URL as aiohttp builds it (the
  session's base URL joined, ``params`` extended with yarl); ``timeout`` (the request's, else
  the session's ``ClientTimeout``) capped limit by limit.
- **Reads and effects**: a GET or HEAD without ``data`` or ``json``, neither chunked nor
  ``expect100``; asked with ``reads``, one whose ``data`` is bytes (or a str, in UTF-8) or whose
  ``json`` the session's own serialiser writes (a form, a ``FormData``, a payload or a stream:
  never).
- **URLs**: a URL string given is quoted as yarl quotes it (``+`` for a space in a query);
  ``params`` as yarl writes them.
- **Answers**: the ``ClientResponse`` itself, its body read (what ``read()`` returns) and its
  connection released; served with a content stream holding the body again.
- **Cookies**: aiohttp fills the session's jar inside ``_request``, our layer: a request sent
  ahead leaves the jar as it is (``CookieJar.update_cookies`` and
  ``update_cookies_from_headers`` do nothing for it), and the answer's cookies are stored when
  it is served to the loop, at the loop's time; a shadow gets a copy, and its cookies never.
- **The client beyond headers**: the session itself (its connector, its jar) and every argument
  of the call but ``params``, ``timeout`` and tracing; the cookies its jar adds (below our
  layer) are part of the request, as httpx's and requests' ``Cookie`` header is.
- **Closing**: none wrapped: a closed session says so (``closed``).
- **Transient**: ``ClientConnectionError`` (refused, reset, disconnected, timed out) and
  ``ClientPayloadError`` (a body cut short); a ``ClientResponseError``'s status and headers are
  read from it.
"""

from __future__ import annotations

import copy
import json
import sys
from collections.abc import Callable
from typing import Any

from ._base import (
    GET_HEAD,
    STREAMED,
    Answer,
    Args,
    Client,
    Hook,
    Integration,
    Kwargs,
    Layer,
    Outgoing,
    Oversize,
    ReadTest,
    Request,
    announced_over,
    capped,
    read_capped_async,
)
from ._base import comparable_headers as _headers

__all__ = ["INTEGRATION", "request_url"]

#: The most bytes asked for at once when an answer is read ahead.
_CHUNK = 64 * 1024
#: aiohttp arguments that do not change what is asked (the rest must be equal).
_ASIDE = frozenset({"params", "timeout", "trace_request_ctx", "read_bufsize", "upload_tracker"})
#: aiohttp arguments compared on their own: the headers one by one, ``data`` and ``json`` as
#: the body's bytes (``Request.body``).
_COMPARED = frozenset({"headers", "data", "json"})


def request_url(session: Any, args: Args, kwargs: Kwargs) -> Any:
    """The absolute ``yarl.URL`` of a ``ClientSession._request(method, str_or_url, ...)``
    call, with its ``params`` (as aiohttp builds it)."""
    import yarl

    raw = args[1] if len(args) > 1 else kwargs["str_or_url"]
    url = raw if isinstance(raw, yarl.URL) else yarl.URL(str(raw))
    base = getattr(session, "_base_url", None)
    if base is not None and not url.is_absolute():
        url = base.join(url)
    params = kwargs.get("params")
    if params:
        url = url.extend_query(params)
    return url


def _timeout(session: Any, value: Any, cap: float) -> Any:
    """The request's ``timeout`` (or the session's) with each of its limits capped."""
    import aiohttp

    timeout = value if isinstance(value, aiohttp.ClientTimeout) else getattr(session, "timeout", None)
    if not isinstance(timeout, aiohttp.ClientTimeout):
        return aiohttp.ClientTimeout(total=cap)
    return aiohttp.ClientTimeout(
        total=capped(timeout.total, cap),
        connect=timeout.connect and min(timeout.connect, cap),
        sock_read=timeout.sock_read and min(timeout.sock_read, cap),
        sock_connect=timeout.sock_connect and min(timeout.sock_connect, cap),
    )


def _outgoing(instance: Any, args: Args, kwargs: Kwargs, cap: float | None) -> Outgoing:
    url = request_url(instance, args, kwargs)
    if cap is not None:
        kwargs = {**kwargs, "timeout": _timeout(instance, kwargs.get("timeout"), cap)}
    return Outgoing(url.host or "", _explicit_port(url), args, kwargs)


def _explicit_port(url: Any) -> int | None:
    """The port the URL names, None without one (yarl's ``port`` says the scheme's default: the
    other layers say None, and ``[hosts."name:443"]`` must mean the same to each of them)."""
    explicit = getattr(url, "explicit_port", _MISSING)  # yarl 1.9 and later
    if explicit is not _MISSING:
        return explicit  # type: ignore[no-any-return]
    return url.port if url.port != {"http": 80, "https": 443}.get(url.scheme) else None


_MISSING: Any = object()


class _Aiohttp(Client):
    library = "aiohttp"
    is_async = True

    def describe(
        self,
        instance: Any,
        args: Args,
        kwargs: Kwargs,
        methods: frozenset[str] = GET_HEAD,
        *,
        reads: ReadTest | None = None,
    ) -> Request | None:
        method = str(args[0] if args else kwargs.get("method", "")).upper()
        if reads is None and (
            method not in methods or kwargs.get("data") is not None or kwargs.get("json") is not None
        ):
            return None
        if kwargs.get("chunked") or kwargs.get("expect100"):
            return None
        url = request_url(instance, args, kwargs)
        headers: Any = kwargs.get("headers")
        items = list(headers.items() if hasattr(headers, "items") else headers or ())
        body = None
        if reads is not None:
            body = _body(instance, kwargs.get("data"), kwargs.get("json"))
            if body is STREAMED or not reads(method, str(url), items, body):
                return None
        others = tuple(sorted((k, repr(v)) for k, v in kwargs.items() if k not in _ASIDE and k not in _COMPARED))
        jar = _jar_cookies(instance, url)  # now: what this request carries when it is sent now
        extra = (("<session>", id(instance)), *_headers(items), *((("cookie", jar),) if jar else ()), *others)
        return Request(method, str(url), extra, args, kwargs, body)

    def rebuild(self, request: Request, instance: Any, url: str) -> Request | None:
        import yarl

        new = yarl.URL(url, encoded=True)
        if new.host != yarl.URL(request.url).host:
            return None
        kwargs = {k: v for k, v in request.kwargs.items() if k not in ("params", "str_or_url", "method")}
        return self.describe(instance, (request.method, new), kwargs, frozenset({request.method}))

    def announced(self, response: Any, args: Args = ()) -> int | None:
        return announced_over(response.headers.get("Content-Length"), response.method, response.status)

    async def keep(self, response: Any, args: Args = ()) -> Any:
        try:
            over = self.announced(response, args)
            body = over if over is not None else await read_capped_async(response.content.iter_chunked(_CHUNK))
            if isinstance(body, int):
                response.close()  # the rest unread: the connection is closed, not reused
                return Oversize(response.status, body, over is not None)
            response._body = body  # what read() would have read: it now only waits for the release
            await response.read()
        finally:
            response.release()
        return response

    def status(self, kept: Any) -> Answer:
        return Answer(kept.status, kept.headers)

    def serve(self, kept: Any, instance: Any, args: Args, kwargs: Kwargs) -> Any:
        _refill(kept)
        _store_cookies(instance, kept)
        return kept

    def for_shadow(self, kept: Any, instance: Any, args: Args, kwargs: Kwargs) -> Any:
        shadowed = copy.copy(kept)  # apart from the loop's, and its cookies never stored
        _refill(shadowed)
        return shadowed

    def quoted(self, url: str, where: str) -> str | None:
        import yarl

        try:
            parsed = yarl.URL(url)
        except Exception:  # noqa: BLE001 - a URL yarl refuses
            return None
        return str(parsed.raw_path if where == "path" else parsed.raw_query_string)

    def whole_url(self, text: str) -> str | None:
        import yarl

        try:
            return str(yarl.URL(text))
        except Exception:  # noqa: BLE001 - refused
            return None

    def param_ways(self) -> dict[str, Callable[[str], str]]:
        return _PARAMS

    def named(self, args: Args, kwargs: Kwargs) -> tuple[str, str] | None:
        method = args[0] if args else kwargs.get("method")
        url = args[1] if len(args) > 1 else kwargs.get("str_or_url")
        return (method.upper(), str(url)) if isinstance(method, str) and url is not None else None


def _yarl(text: str) -> str:
    """A value in aiohttp's ``params``, as yarl writes it (``+`` for a space; ``/``, ``?``,
    ``'`` and ``!`` kept)."""
    import yarl

    return str(yarl.URL("http://h/").with_query({"q": text}).raw_query_string[2:])


_PARAMS: dict[str, Callable[[str], str]] = {"yarl": _yarl}


def _jar_cookies(session: Any, url: Any) -> str | None:
    """The cookies of the session's jar that aiohttp adds to a request for ``url`` (inside
    ``_request``, below what we see), as a ``Cookie`` header would hold them: part of the
    request, as the ``Cookie`` header httpx and requests send is (a jar that changes from item
    to item then shows as the loop's credentials changing: nothing is sent ahead with another
    item's). None when there are none."""
    jar = getattr(session, "_cookie_jar", None)
    if jar is None:
        return None
    try:
        found = jar.filter_cookies(url)
    except Exception:  # noqa: BLE001 - a jar of the app's own that refuses: the session identifies it
        return None
    return "; ".join(sorted(f"{name}={morsel.coded_value}" for name, morsel in found.items())) or None


def _body(session: Any, data: Any, value: Any) -> Any:
    """The bytes aiohttp sends for ``data`` or ``json=value`` (``ClientSession._request``: a
    str in UTF-8, ``json`` through the session's serialiser), None without a body, else STREAMED."""
    if data is not None and value is not None:
        return STREAMED  # aiohttp refuses it: left to the loop
    if value is not None:
        try:
            dumps_bytes = getattr(session, "_json_serialize_bytes", None)  # aiohttp 3.13+
            if dumps_bytes is not None:
                return bytes(dumps_bytes(value))
            return str(getattr(session, "_json_serialize", json.dumps)(value)).encode("utf-8")
        except Exception:  # noqa: BLE001 - the serialiser refuses it: the loop gets that error itself
            return STREAMED
    if isinstance(data, bytes | bytearray | memoryview):
        return bytes(data) or None
    if isinstance(data, str):
        return data.encode("utf-8") or None
    return None if data is None else STREAMED  # a form, FormData, a payload, a stream


def _store_cookies(session: Any, response: Any) -> None:
    """Store the cookies the answer (and each redirect before it) set in the session's jar, as
    ``_request`` does once it has its answer: the request was sent ahead, when the jar was left
    as it was (``stores_cookies``), and the loop is served it now, at its own time."""
    jar = getattr(session, "_cookie_jar", None)
    if jar is None:
        return
    for answer in (*getattr(response, "history", ()), response):
        raw = getattr(answer, "_raw_cookie_headers", None)  # aiohttp 3.12 and later
        if raw is not None and callable(getattr(jar, "update_cookies_from_headers", None)):
            if raw:
                jar.update_cookies_from_headers(raw, answer.url)
        elif answer.cookies:
            jar.update_cookies(answer.cookies, answer.url)


def _refill(response: Any) -> None:
    """Give a read response a content stream holding its body again, for a loop that reads
    ``response.content`` itself (``read()``, ``text()`` and ``json()`` use the body kept), and
    no longer marked released: ``keep`` gave its connection back with ``release()``, after which
    aiohttp's ``read()`` refuses a body it holds ("Connection closed"), as for a response the
    app released itself (found by the shared suite, ``tests/integrations``)."""
    if getattr(response, "_released", False):
        response._released = False  # the body is all here: nothing is read from the connection
    try:
        from aiohttp import streams

        body = response._body or b""
        reader = streams.StreamReader(_Quiet(), 2**16, loop=response._loop)  # type: ignore[arg-type]
        reader.feed_data(body)
        reader.feed_eof()
        response.content = reader
    except Exception:  # an aiohttp without these internals: read(), text() and json() still work
        pass


class _Quiet:
    """The flow control a stream fed in one piece never needs."""

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


def _status(exc: BaseException) -> tuple[int, Any] | None:
    """A ``ClientResponseError``'s ``.status`` and ``.headers``."""
    if not type(exc).__module__.startswith("aiohttp."):
        return None
    status, headers = getattr(exc, "status", None), getattr(exc, "headers", None)
    if isinstance(status, int) and callable(getattr(headers, "get", None)):
        return status, headers
    return None


def _transient(exc: BaseException) -> bool | None:
    aiohttp = sys.modules.get("aiohttp")
    if aiohttp is not None and isinstance(exc, aiohttp.ClientConnectionError | aiohttp.ClientPayloadError):
        return True  # refused, reset, disconnected, timed out, a body cut short
    return None


INTEGRATION = Integration(
    name="aiohttp",
    modules=frozenset({"aiohttp"}),
    supported=">=3.9.0",
    layers=(Layer("aiohttp", Hook("aiohttp", "ClientSession", "_request"), True, _outgoing),),
    stores_cookies=(
        Hook("aiohttp", "CookieJar", "update_cookies"),
        Hook("aiohttp", "CookieJar", "update_cookies_from_headers"),  # 3.12 and later
    ),
    clients=(_Aiohttp(),),
    status=_status,
    transient=_transient,
)
