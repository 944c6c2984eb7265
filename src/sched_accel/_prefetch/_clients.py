"""Each HTTP library, as HTTP-level prefetch needs it: what a request is, the same request
for another URL, its answer kept, and that answer handed to the loop as the library's own.

The layers are the ones ``_policy._http`` wraps: httpx's transports (the request fully
built: cookies, auth and the client's headers in it; the client's own redirects, hooks and
cookie handling then run on the served response in the loop's thread), requests'
``HTTPAdapter.send`` (the same, for a ``PreparedRequest``) and aiohttp's
``ClientSession._request``. urllib's requests are never sent early.

A request is sent early only when its method is allowed (GET and HEAD), it has no body
and the loop does not stream it (requests' ``stream=True``). Its identity is the method,
the URL as the library sends it, and :attr:`Request.extra`: every header (aiohttp: every
argument, and the session) except the per-request tracing headers in :data:`VOLATILE`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .._engine import Cancelled
from .._policy import aiohttp_url
from ._closing import sending, sent

__all__ = ["CLIENTS", "RETRIED", "VOLATILE", "Answer", "Client", "Refused", "Request", "fetcher"]

Args = tuple[Any, ...]
Kwargs = dict[str, Any]

#: Headers that differ on every request without changing its answer (tracing, request ids):
#: not compared. Every other header must be equal for a prefetched answer to be served.
VOLATILE = frozenset(
    {
        "traceparent",
        "tracestate",
        "baggage",
        "sentry-trace",
        "x-request-id",
        "x-correlation-id",
        "request-id",
        "x-amzn-trace-id",
        "x-b3-traceid",
        "x-b3-spanid",
        "x-b3-parentspanid",
        "x-b3-sampled",
        "x-datadog-trace-id",
        "x-datadog-parent-id",
    }
)


def _headers(items: Any) -> tuple[tuple[str, str], ...]:
    """Headers as a comparable value: lower-cased names, sorted, tracing headers left out."""
    pairs = []
    for name, value in items:
        name = name.decode("latin-1") if isinstance(name, bytes) else str(name)
        value = value.decode("latin-1") if isinstance(value, bytes) else str(value)
        lower = name.lower()
        if lower not in VOLATILE:
            pairs.append((lower, value))
    return tuple(sorted(pairs))


@dataclass(frozen=True, slots=True)
class Request:
    """One request as the loop makes it (or as we would send it): its identity, and the
    arguments of the wrapped call that sends it."""

    method: str
    url: str
    extra: tuple[Any, ...]
    args: Args
    kwargs: Kwargs

    def differs(self, other: Request) -> str:
        """What differs between two requests with the same method and URL, for the log."""
        mine, theirs = dict(_pairs(self.extra)), dict(_pairs(other.extra))
        names = sorted({k for k in mine.keys() | theirs.keys() if mine.get(k) != theirs.get(k)})
        return ", ".join(names[:5]) or "the request's other arguments"


def _pairs(extra: tuple[Any, ...]) -> list[tuple[str, Any]]:
    return [p for p in extra if isinstance(p, tuple) and len(p) == 2 and isinstance(p[0], str)]


class Answer:
    """What classify() reads from a refused answer: ``status_code`` and ``headers``."""

    __slots__ = ("headers", "status_code")

    def __init__(self, status_code: int, headers: Any) -> None:
        self.status_code = status_code
        self.headers = headers


class Client:
    """One library's layer. Subclasses fill in each step."""

    library = ""
    is_async = False

    def describe(self, instance: Any, args: Args, kwargs: Kwargs, methods: frozenset[str]) -> Request | None:
        """The request of this call, or None when it is never sent early."""
        raise NotImplementedError

    def rebuild(self, request: Request, instance: Any, url: str) -> Request | None:
        """The same request for ``url`` (the same headers, cookies and options)."""
        raise NotImplementedError

    def keep(self, response: Any) -> Any:
        """Read a sent request's answer in full (in a worker), releasing its connection."""
        raise NotImplementedError

    def status(self, kept: Any) -> Answer:
        raise NotImplementedError

    def serve(self, kept: Any, instance: Any, args: Args, kwargs: Kwargs) -> Any:
        """The kept answer as the response the library gives the loop for its own call."""
        raise NotImplementedError


# -- httpx ------------------------------------------------------------------------------------
class _Httpx(Client):
    library = "httpx"

    def describe(self, instance: Any, args: Args, kwargs: Kwargs, methods: frozenset[str]) -> Request | None:
        request = args[0] if args else kwargs.get("request")
        if request is None or request.method not in methods:
            return None
        headers = request.headers
        if headers.get("transfer-encoding") or headers.get("content-length", "0") != "0":
            return None  # a body: never sent early
        return Request(request.method, str(request.url), _headers(headers.multi_items()), (request,), {})

    def rebuild(self, request: Request, instance: Any, url: str) -> Request | None:
        import httpx

        original = request.args[0]
        new = httpx.Request(original.method, url, headers=original.headers, extensions=original.extensions)
        if new.url.host != original.url.host:
            return None
        return self.describe(instance, (new,), {}, frozenset({original.method}))

    def keep(self, response: Any) -> Any:
        try:
            raw = b"".join(response.iter_raw())
        finally:
            response.close()
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


class _HttpxAsync(_Httpx):
    library = "httpx-async"
    is_async = True

    async def keep(self, response: Any) -> Any:
        try:
            raw = b"".join([chunk async for chunk in response.aiter_raw()])
        finally:
            await response.aclose()
        return _kept_httpx(response, raw)


# -- requests ---------------------------------------------------------------------------------
class _Requests(Client):
    library = "requests"

    def describe(self, instance: Any, args: Args, kwargs: Kwargs, methods: frozenset[str]) -> Request | None:
        prepared = args[0] if args else kwargs.get("request")
        stream = args[1] if len(args) > 1 else kwargs.get("stream", False)
        if prepared is None or prepared.method not in methods or prepared.body is not None or stream:
            return None
        return Request(prepared.method, prepared.url, _headers(prepared.headers.items()), args, kwargs)

    def rebuild(self, request: Request, instance: Any, url: str) -> Request | None:
        original = request.args[0] if request.args else request.kwargs["request"]
        new = original.copy()
        new.prepare_url(url, None)
        args = (new, *request.args[1:]) if request.args else ()
        kwargs = request.kwargs if request.args else {**request.kwargs, "request": new}
        return self.describe(instance, args, kwargs, frozenset({original.method}))

    def keep(self, response: Any) -> Any:
        response.content  # noqa: B018 - reads the body and gives the connection back
        return response

    def status(self, kept: Any) -> Answer:
        return Answer(kept.status_code, kept.headers)

    def serve(self, kept: Any, instance: Any, args: Args, kwargs: Kwargs) -> Any:
        kept.request = args[0] if args else kwargs["request"]
        return kept


# -- aiohttp ----------------------------------------------------------------------------------
#: aiohttp arguments that do not change what is asked (the rest must be equal).
_AIOHTTP_ASIDE = frozenset({"params", "timeout", "trace_request_ctx", "read_bufsize", "upload_tracker"})


class _Aiohttp(Client):
    library = "aiohttp"
    is_async = True

    def describe(self, instance: Any, args: Args, kwargs: Kwargs, methods: frozenset[str]) -> Request | None:
        method = str(args[0] if args else kwargs.get("method", "")).upper()
        if method not in methods or kwargs.get("data") is not None or kwargs.get("json") is not None:
            return None
        if kwargs.get("chunked") or kwargs.get("expect100"):
            return None
        url = aiohttp_url(instance, args, kwargs)
        headers: Any = kwargs.get("headers")
        items = headers.items() if hasattr(headers, "items") else headers or ()
        others = tuple(sorted((k, repr(v)) for k, v in kwargs.items() if k not in _AIOHTTP_ASIDE and k != "headers"))
        extra = (("<session>", id(instance)), *_headers(items), *others)
        return Request(method, str(url), extra, args, kwargs)

    def rebuild(self, request: Request, instance: Any, url: str) -> Request | None:
        import yarl

        new = yarl.URL(url, encoded=True)
        if new.host != yarl.URL(request.url).host:
            return None
        kwargs = {k: v for k, v in request.kwargs.items() if k not in ("params", "str_or_url", "method")}
        return self.describe(instance, (request.method, new), kwargs, frozenset({request.method}))

    async def keep(self, response: Any) -> Any:
        try:
            await response.read()
        finally:
            response.release()
        return response

    def status(self, kept: Any) -> Answer:
        return Answer(kept.status, kept.headers)

    def serve(self, kept: Any, instance: Any, args: Args, kwargs: Kwargs) -> Any:
        _refill(kept)
        return kept


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
CLIENTS: dict[str, Client] = {c.library: c for c in (_Httpx(), _HttpxAsync(), _Requests(), _Aiohttp())}

#: The statuses after which a request sent early is tried again, as a per-item call would be.
RETRIED = frozenset({429, 502, 503, 504})


class Refused(Exception):
    """A prefetched request answered with a status worth another try; the policy retries it
    (``.response`` is what classify reads), and the loop gets the last answer if it gives up."""

    def __init__(self, kept: Any, answer: Answer) -> None:
        super().__init__(f"HTTP {answer.status_code}")
        self.kept = kept
        self.response = answer


def fetcher(client: Client, send: Callable[..., Any]) -> Callable[..., Any]:
    """The function a worker runs for a request sent early: send, keep, refuse."""
    import time

    if client.is_async:

        async def afetch(wrapped: Any, instance: Any, args: Args, kwargs: Kwargs) -> Any:
            if not sending(instance):
                raise Cancelled()  # the loop sends it itself, through the client it uses now
            try:
                kept = await client.keep(await send(client.library, wrapped, instance, args, kwargs))
            finally:
                close = sent(instance)
                if close is not None:
                    await close()
            answer = client.status(kept)
            if answer.status_code in RETRIED:
                raise Refused(kept, answer)
            return kept, time.monotonic()

        return afetch

    def fetch(wrapped: Any, instance: Any, args: Args, kwargs: Kwargs) -> Any:
        if not sending(instance):
            raise Cancelled()
        try:
            kept = client.keep(send(client.library, wrapped, instance, args, kwargs))
        finally:
            close = sent(instance)
            if close is not None:
                close()
        answer = client.status(kept)
        if answer.status_code in RETRIED:
            raise Refused(kept, answer)
        return kept, time.monotonic()

    return fetch
