"""Each HTTP library, as HTTP-level prefetch needs it: what a request is, the same request
for another URL, its answer kept, and that answer handed to the loop as the library's own.

The layers are the ones ``_policy._http`` wraps: httpx's transports (the request fully
built: cookies, auth and the client's headers in it; the client's own redirects, hooks and
cookie handling then run on the served response in the loop's thread), requests'
``HTTPAdapter.send`` (the same, for a ``PreparedRequest``) and aiohttp's
``ClientSession._request``; urllib's ``AbstractHTTPHandler.do_open`` is in ``_urllib_client``.

A request is sent early only when its method is allowed (GET and HEAD), it has no body
and the loop does not stream it (requests' ``stream=True``). Its identity is the method,
the URL as the library sends it, and :attr:`Request.extra`: every header (aiohttp: every
argument, and the session) except the per-request tracing headers in :data:`VOLATILE`.

Asked with ``reads`` (``describe(..., reads=test)``), a client describes any request the test
says is a read, with its body as the library sends it: httpx's ``request.content`` (a
``content=``, ``data=`` or ``json=`` body; a stream, a file or multipart files: not), the
``PreparedRequest.body`` of requests (bytes, or a str as urllib3 encodes it: UTF-8; a file or
a generator: not), aiohttp's ``data`` (bytes, or a str in UTF-8) or its ``json`` serialised by
the session's own ``json_serialize`` as aiohttp does (a form, a ``FormData``, a payload or a
stream: not); urllib's in ``_urllib_client``.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from time import monotonic as _monotonic
from typing import Any

from .._engine import Cancelled
from .._policy import TLS_MADE, aiohttp_url, status_of
from ._adapter import (
    GET_HEAD,
    STREAMED,
    VOLATILE,
    Answer,
    Client,
    Oversize,
    ReadTest,
    Request,
    announced_over,
    read_capped,
    read_capped_async,
)
from ._adapter import comparable_headers as _headers
from ._closing import sending, sent
from ._urllib_client import Urllib

__all__ = [
    "CLIENTS",
    "RETRIED",
    "VOLATILE",
    "Answer",
    "Client",
    "Oversize",
    "Refused",
    "Request",
    "direct_fetcher",
    "fetcher",
]

Args = tuple[Any, ...]
Kwargs = dict[str, Any]
#: The most bytes asked for at once when an answer is read ahead (requests, aiohttp, urllib).
_CHUNK = 64 * 1024


# -- httpx ------------------------------------------------------------------------------------
def _has_body(raw: list[tuple[bytes, bytes]]) -> bool:
    """Whether httpx's raw headers announce a body (a length other than 0, or chunks)."""
    for name, value in raw:
        lower = name.lower()
        if lower == b"transfer-encoding" or (lower == b"content-length" and value.strip() != b"0"):
            return True
    return False


class _Httpx(Client):
    library = "httpx"

    def describe(
        self,
        instance: Any,
        args: Args,
        kwargs: Kwargs,
        methods: frozenset[str] = GET_HEAD,
        *,
        reads: ReadTest | None = None,
    ) -> Request | None:
        request = args[0] if args else kwargs.get("request")
        if request is None:
            return None
        raw = request.headers.raw  # (name, value) bytes as sent: no decoding, no case folding
        body = None
        if reads is None:
            if request.method not in methods or _has_body(raw):
                return None  # a body: never sent early
        else:
            body = _httpx_body(request)
            if body is STREAMED or not reads(request.method, str(request.url), raw, body):
                return None
        return Request(
            request.method, str(request.url), lambda: (*_headers(raw), _httpx_client(instance)), (request,), {}, body
        )

    def rebuild(self, request: Request, instance: Any, url: str) -> Request | None:
        import httpx

        original = request.args[0]
        new = httpx.Request(original.method, url, headers=original.headers, extensions=original.extensions)
        if new.url.host != original.url.host:
            return None
        return self.describe(instance, (new,), {}, frozenset({original.method}))

    def announced(self, response: Any, args: Args = ()) -> int | None:
        request = args[0] if args else None  # the transport's response does not know its request yet
        return announced_over(
            response.headers.get("content-length"), getattr(request, "method", None), response.status_code
        )

    def keep(self, response: Any, args: Args = ()) -> Any:
        try:
            over = self.announced(response, args)
            raw = over if over is not None else read_capped(response.iter_raw())
        finally:
            response.close()
        if isinstance(raw, int):
            return Oversize(response.status_code, raw, over is not None)
        return _kept_httpx(response, raw)

    def status(self, kept: Any) -> Answer:
        return Answer(kept[0], kept[1])

    def serve(self, kept: Any, instance: Any, args: Args, kwargs: Kwargs) -> Any:
        import httpx

        status, headers, raw, extensions = kept
        return httpx.Response(status, headers=headers.raw, stream=httpx.ByteStream(raw), extensions=dict(extensions))


def _kept_httpx(response: Any, raw: bytes) -> tuple[int, Any, bytes, dict[str, Any]]:
    extensions = {k: v for k, v in response.extensions.items() if k in ("http_version", "reason_phrase")}
    return (response.status_code, response.headers, raw, extensions)


def _httpx_body(request: Any) -> Any:
    """The body of an httpx request: bytes, None without one, STREAMED when it is a stream
    (httpx reads a ``content``, ``data`` or ``json`` body when the request is made)."""
    import httpx

    try:
        return request.content or None
    except httpx.RequestNotRead:
        return STREAMED


class _HttpxAsync(_Httpx):
    library = "httpx-async"
    is_async = True

    async def keep(self, response: Any, args: Args = ()) -> Any:
        try:
            over = self.announced(response, args)
            raw = over if over is not None else await read_capped_async(response.aiter_raw())
        finally:
            await response.aclose()
        if isinstance(raw, int):
            return Oversize(response.status_code, raw, over is not None)
        return _kept_httpx(response, raw)


def _httpx_client(transport: Any) -> tuple[str, Any]:
    """What identifies the client beyond headers: its TLS context (the certificate it presents,
    what it verifies) and its proxy. httpx's own transport made from its settings is known by
    them (``TLS_MADE``), so clients made alike (one per item) are one client; a context the app
    made, or a transport of its own, by its identity."""
    httpx = sys.modules.get("httpx")
    if httpx is None or type(transport) not in (httpx.HTTPTransport, httpx.AsyncHTTPTransport):
        return ("<client>", ("transport", id(transport)))
    pool = getattr(transport, "_pool", None)
    context = getattr(pool, "_ssl_context", None)
    made = getattr(context, TLS_MADE, None)
    tls = made if made is not None else ("context", id(context))
    return ("<client>", (tls, repr(getattr(pool, "_proxy_url", None)), repr(getattr(pool, "_proxy_headers", None))))


# -- requests ---------------------------------------------------------------------------------
def _requests_client(adapter: Any, args: Args, kwargs: Kwargs) -> tuple[str, Any]:
    """What identifies the client beyond headers: the ``verify``, ``cert`` and ``proxies`` the
    session passes per call (``send(request, stream, timeout, verify, cert, proxies)``), and an
    adapter of the app's own by its identity (it may hold a certificate)."""
    verify = args[3] if len(args) > 3 else kwargs.get("verify", True)
    cert = args[4] if len(args) > 4 else kwargs.get("cert")
    proxies = args[5] if len(args) > 5 else kwargs.get("proxies")
    own = type(adapter).__module__ != "requests.adapters"
    shown = (
        tuple(sorted((str(k), str(v)) for k, v in (proxies or {}).items()))
        if isinstance(proxies, dict)
        else repr(proxies)
    )
    return ("<client>", (repr(verify), repr(cert), shown, id(adapter) if own else None))


class _Requests(Client):
    library = "requests"

    def describe(
        self,
        instance: Any,
        args: Args,
        kwargs: Kwargs,
        methods: frozenset[str] = GET_HEAD,
        *,
        reads: ReadTest | None = None,
    ) -> Request | None:
        prepared = args[0] if args else kwargs.get("request")
        stream = args[1] if len(args) > 1 else kwargs.get("stream", False)
        if prepared is None or stream:
            return None
        headers = prepared.headers
        body = None
        if reads is None:
            if prepared.method not in methods or prepared.body is not None:
                return None
        else:
            body = _requests_body(prepared.body)
            if body is STREAMED or not reads(prepared.method, prepared.url, headers, body):
                return None
        return Request(
            prepared.method,
            prepared.url,
            lambda: (*_headers(headers.items()), _requests_client(instance, args, kwargs)),
            args,
            kwargs,
            body,
        )

    def rebuild(self, request: Request, instance: Any, url: str) -> Request | None:
        original = request.args[0] if request.args else request.kwargs["request"]
        new = original.copy()
        new.prepare_url(url, None)
        args = (new, *request.args[1:]) if request.args else ()
        kwargs = request.kwargs if request.args else {**request.kwargs, "request": new}
        return self.describe(instance, args, kwargs, frozenset({original.method}))

    def announced(self, response: Any, args: Args = ()) -> int | None:
        method = getattr(response.request, "method", None)
        return announced_over(response.headers.get("content-length"), method, response.status_code)

    def keep(self, response: Any, args: Args = ()) -> Any:
        if response.raw is None or response.status_code == 0:
            response.content  # noqa: B018 - no body to read: requests makes it None
            return response
        over = self.announced(response, args)
        body = over if over is not None else read_capped(response.iter_content(_CHUNK))  # decoded, as .content is
        if isinstance(body, int):
            response.close()  # the rest unread: the connection is closed, not reused
            return Oversize(response.status_code, body, over is not None)
        response._content = body  # what .content would have read (the connection is given back)
        return response

    def status(self, kept: Any) -> Answer:
        return Answer(kept.status_code, kept.headers)

    def serve(self, kept: Any, instance: Any, args: Args, kwargs: Kwargs) -> Any:
        kept.request = args[0] if args else kwargs["request"]
        return kept


def _requests_body(body: Any) -> Any:
    """A ``PreparedRequest.body`` as sent: bytes (a str as urllib3 encodes it), None, or STREAMED."""
    if body is None or isinstance(body, bytes):
        return body or None
    if isinstance(body, str):
        return body.encode("utf-8") or None
    return STREAMED  # a file, a generator, an iterable: read as it is sent


# -- aiohttp ----------------------------------------------------------------------------------
#: aiohttp arguments that do not change what is asked (the rest must be equal).
_AIOHTTP_ASIDE = frozenset({"params", "timeout", "trace_request_ctx", "read_bufsize", "upload_tracker"})
#: aiohttp arguments compared on their own: the headers one by one, ``data`` and ``json`` as
#: the body's bytes (``Request.body``).
_AIOHTTP_COMPARED = frozenset({"headers", "data", "json"})


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
        url = aiohttp_url(instance, args, kwargs)
        headers: Any = kwargs.get("headers")
        items = list(headers.items() if hasattr(headers, "items") else headers or ())
        body = None
        if reads is not None:
            body = _aiohttp_body(instance, kwargs.get("data"), kwargs.get("json"))
            if body is STREAMED or not reads(method, str(url), items, body):
                return None
        others = tuple(
            sorted((k, repr(v)) for k, v in kwargs.items() if k not in _AIOHTTP_ASIDE and k not in _AIOHTTP_COMPARED)
        )
        extra = (("<session>", id(instance)), *_headers(items), *others)
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
        return kept


def _aiohttp_body(session: Any, data: Any, value: Any) -> Any:
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


def _refill(response: Any) -> None:
    """Give a read response a content stream holding its body again, for a loop that reads
    ``response.content`` itself (``read()``, ``text()`` and ``json()`` use the body kept)."""
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


#: Every library whose requests may be sent early, by the name ``_policy._http`` gives it.
CLIENTS: dict[str, Client] = {c.library: c for c in (_Httpx(), _HttpxAsync(), _Requests(), Urllib(), _Aiohttp())}

#: The statuses after which a request sent early is tried again, as a per-item call would be.
RETRIED = frozenset({429, 502, 503, 504})


class Refused(Exception):
    """A prefetched request answered with a status worth another try; the policy retries it
    (``.response`` is what classify reads), and the loop gets the last answer if it gives up."""

    def __init__(self, kept: Any, answer: Answer) -> None:
        super().__init__(f"HTTP {answer.status_code}")
        self.kept = kept
        self.response = answer
        self.finished = _monotonic()  # a refusal too is never served past max_age


def fetcher(client: Client, send: Callable[..., Any]) -> Callable[..., Any]:
    """The function a worker runs for a request sent early: send, keep, refuse. An answer
    over the cap is kept as its :class:`Oversize` (never retried, never served)."""
    import time

    if client.is_async:

        async def afetch(wrapped: Any, instance: Any, args: Args, kwargs: Kwargs) -> Any:
            if not sending(instance):
                raise Cancelled()  # the loop sends it itself, through the client it uses now
            try:
                kept = await client.keep(await send(client.library, wrapped, instance, args, kwargs), args)
            finally:
                close = sent(instance)
                if close is not None:
                    await close()
            if isinstance(kept, Oversize):
                return kept, time.monotonic()
            answer = client.status(kept)
            if answer.status_code in RETRIED:
                raise Refused(kept, answer)
            return kept, time.monotonic()

        return afetch

    def fetch(wrapped: Any, instance: Any, args: Args, kwargs: Kwargs) -> Any:
        if not sending(instance):
            raise Cancelled()
        try:
            kept = client.keep(send(client.library, wrapped, instance, args, kwargs), args)
        finally:
            close = sent(instance)
            if close is not None:
                close()
        if isinstance(kept, Oversize):
            return kept, time.monotonic()
        answer = client.status(kept)
        if answer.status_code in RETRIED:
            raise Refused(kept, answer)
        return kept, time.monotonic()

    return fetch


def direct_fetcher(client: Client, send: Callable[..., Any]) -> Callable[..., Any]:
    """The function the policy runs for a GET or HEAD the loop sends itself: its response
    as the library returns it, untouched; only an answer the policy retries (429, 502-504)
    is read and kept, so that the loop gets the last one if the policy gives up. One whose
    body is over the cap is not retried: announced, the loop gets it unread; found while
    reading, it was closed there, and the request is sent once more for the loop to read."""
    if client.is_async:

        async def afetch(wrapped: Any, instance: Any, args: Args, kwargs: Kwargs) -> Any:
            response = await send(client.library, wrapped, instance, args, kwargs)
            if status_of(response) in RETRIED and client.announced(response, args) is None:
                kept = await client.keep(response, args)
                if isinstance(kept, Oversize):
                    return await send(client.library, wrapped, instance, args, kwargs)
                raise Refused(kept, client.status(kept))
            return response

        return afetch

    def fetch(wrapped: Any, instance: Any, args: Args, kwargs: Kwargs) -> Any:
        response = send(client.library, wrapped, instance, args, kwargs)
        if status_of(response) in RETRIED and client.announced(response, args) is None:
            kept = client.keep(response, args)
            if isinstance(kept, Oversize):
                return send(client.library, wrapped, instance, args, kwargs)
            raise Refused(kept, client.status(kept))
        return response

    return fetch
