"""urllib (the standard library's): ``AbstractHTTPHandler.do_open(http_class, req,
**http_conn_args)``, where ``urlopen`` and every opener send (the handler is the instance,
HTTPHandler or HTTPSHandler). The request's ``timeout`` is capped on the app's ``Request``
for the call, and put back after it (the app may reuse it).

There the request is fully built: the opener's processors have run (its ``addheaders``,
``Host``, the cookie jar's ``Cookie``), and the response goes back through them in the
loop's thread (``HTTPError`` for a 4xx or 5xx, redirects, cookies stored). A request is
sent early when it is a GET or HEAD without data, through a connection class of
``http.client``, by a handler that does not print its traffic (``debuglevel``). Its
identity: every header as ``do_open`` sends it (but tracing ones), the connection class,
the host connected to (a proxy's), the timeout and the connection's arguments (HTTPS: the
SSL context). Asked with ``reads``, any request the test says is a read is described, with
its ``data`` when that is bytes (a file or an iterable: never).

The answer sent ahead is read in full and kept (status, reason, headers, body), up to
``MAX_KEPT`` bytes (``_base``: a longer one is an ``Oversize``, closed); the loop
gets a fresh ``http.client.HTTPResponse`` parsed from it as ``do_open`` returns one
(``.url`` set, ``.msg`` the reason), with the same headers and the same framing.

Closing: an opener keeps no connection (none wrapped). Status: ``HTTPError``'s ``code`` and
``headers``. Transient: a ``URLError`` whose reason is an OSError (refused, reset, DNS, a
timeout).
"""

from __future__ import annotations

import copy
import http.client
import io
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
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
    comparable_headers,
    read_capped,
)

__all__ = ["INTEGRATION", "Kept"]

#: ``do_open``'s own parameters; every other keyword is for the connection class.
_OWN = ("http_class", "req")
_NO_TIMEOUT: Any = object()
#: The most bytes asked for at once when an answer is read ahead.
_CHUNK = 64 * 1024


@dataclass(frozen=True, slots=True)
class Kept:
    """An answer read in full: what a fresh response is parsed from again."""

    status: int
    reason: str
    version: int
    headers: tuple[tuple[str, str], ...]
    body: bytes
    chunked: bool

    def wire(self) -> bytes:
        """The answer as the server sent it (a chunked body in one chunk)."""
        line = f"HTTP/{'1.0' if self.version == 10 else '1.1'} {self.status} {self.reason}\r\n"
        head = "".join(f"{name}: {value}\r\n" for name, value in self.headers)
        body = self.body
        if self.chunked:
            body = (f"{len(body):x}\r\n".encode() + body + b"\r\n" if body else b"") + b"0\r\n\r\n"
        return (line + head + "\r\n").encode("latin-1") + body


class _Wire:
    """The socket a kept answer is read from again (``HTTPResponse`` reads ``makefile()``)."""

    __slots__ = ("_data",)

    def __init__(self, data: bytes) -> None:
        self._data = data

    def makefile(self, mode: str = "rb", *args: Any, **kwargs: Any) -> io.BufferedReader:
        return io.BufferedReader(io.BytesIO(self._data))


def _call(args: Args, kwargs: Kwargs) -> tuple[Any, Any, Kwargs] | None:
    """``do_open``'s ``http_class`` and ``req``, and the connection's keywords."""
    http_class = args[0] if args else kwargs.get("http_class")
    req = args[1] if len(args) > 1 else kwargs.get("req")
    if http_class is None or not isinstance(req, urllib.request.Request):
        return None
    return http_class, req, {k: v for k, v in kwargs.items() if k not in _OWN}


def _body(data: Any) -> Any:
    """``req.data`` as sent: bytes (of anything bytes-like), None, or STREAMED (a file, an iterable)."""
    if data is None:
        return None
    if isinstance(data, bytes | bytearray | memoryview):
        return bytes(data) or None
    return STREAMED


def _ours(http_class: Any) -> bool:
    """A connection class of http.client's, whose responses are http.client's."""
    response_class = getattr(http_class, "response_class", None)
    return (
        isinstance(http_class, type)
        and issubclass(http_class, http.client.HTTPConnection)
        and isinstance(response_class, type)
        and issubclass(response_class, http.client.HTTPResponse)
    )


def _origin(req: urllib.request.Request) -> tuple[str | None, str | None]:
    """The scheme and host of a request's own URL (before any proxy took its place)."""
    parsed = urllib.request.Request(req.full_url)
    return parsed.type, parsed.host


class _Urllib(Client):
    library = "urllib"

    def describe(
        self,
        instance: Any,
        args: Args,
        kwargs: Kwargs,
        methods: frozenset[str] = GET_HEAD,
        *,
        reads: ReadTest | None = None,
    ) -> Request | None:
        call = _call(args, kwargs)
        if call is None:
            return None
        http_class, req, options = call
        method = req.get_method()
        if (reads is None and (method not in methods or req.data is not None)) or not _ours(http_class):
            return None
        if getattr(instance, "_debuglevel", 0):
            return None  # it prints each request and answer: they must stay in the loop's order
        # The headers as do_open sends them: the unredirected ones first, then the others.
        sent = dict(req.unredirected_hdrs)
        sent.update({k: v for k, v in req.headers.items() if k not in sent})
        body = None
        if reads is not None:
            body = _body(req.data)
            if body is STREAMED or not reads(method, req.get_full_url(), sent, body):
                return None
        extra = (
            *comparable_headers(sent.items()),
            ("<connection>", http_class),
            ("<host>", req.host),
            ("<timeout>", getattr(req, "timeout", _NO_TIMEOUT)),
            *sorted((f"<{name}>", value) for name, value in options.items()),
        )
        return Request(method, req.get_full_url(), extra, (http_class, req), options, body)

    def rebuild(self, request: Request, instance: Any, url: str) -> Request | None:
        http_class, original = request.args
        new = copy.copy(original)  # its method, timeout, origin and subclass too
        new.headers, new.unredirected_hdrs = dict(original.headers), dict(original.unredirected_hdrs)
        new.full_url = url
        if (new.type, new.host) != _origin(original):
            return None  # another host: its Host header, proxy and cookies would not be these
        if original._tunnel_host:  # HTTPS through a proxy: the same CONNECT
            new.host = original.host
        elif original.has_proxy():  # HTTP through a proxy: the whole URL is the selector
            new.type, new.host, new.selector = original.type, original.host, new.full_url
        return self.describe(instance, (http_class, new), request.kwargs, frozenset({request.method}))

    def announced(self, response: Any, args: Args = ()) -> int | None:
        # ``length``: the Content-Length, 0 for a HEAD, a 204 or a 304, None when chunked
        return announced_over(response.length, None, response.status)

    def keep(self, response: Any, args: Args = ()) -> Kept | Oversize:
        try:
            chunked = response.chunked is True
            over = self.announced(response, args)
            body = over if over is not None else read_capped(iter(lambda: response.read(_CHUNK), b""))
            if isinstance(body, int):
                return Oversize(response.status, body, over is not None)
            return Kept(
                response.status, response.reason, response.version, tuple(response.headers.items()), body, chunked
            )
        finally:
            response.close()

    def status(self, kept: Kept) -> Answer:
        headers = http.client.HTTPMessage()
        for name, value in kept.headers:
            headers[name] = value  # added, not replaced: every Set-Cookie stays
        return Answer(kept.status, headers)

    def serve(self, kept: Kept, instance: Any, args: Args, kwargs: Kwargs) -> Any:
        """A fresh ``HTTPResponse``, as ``HTTPConnection.getresponse`` makes it and
        ``do_open`` returns it."""
        call = _call(args, kwargs)
        assert call is not None  # described before it was served
        http_class, req, _ = call
        response: Any = http_class.response_class(_Wire(kept.wire()), method=req.get_method())
        response.begin()
        response.url = req.get_full_url()
        response.msg = response.reason  # do_open's: urllib's callers read the reason in .msg
        return response

    def named(self, args: Args, kwargs: Kwargs) -> tuple[str, str] | None:
        call = _call(args, kwargs)
        return None if call is None else (call[1].get_method(), call[1].get_full_url())


def _outgoing(instance: Any, args: Args, kwargs: Kwargs, cap: float | None) -> Outgoing:
    request = args[1] if len(args) > 1 else kwargs["req"]  # do_open(http_class, req, **conn_args)
    parts = urllib.parse.urlsplit(f"//{request.host}")
    host = parts.hostname or request.host
    if cap is None:
        return Outgoing(host, parts.port, args, kwargs)
    # The default is socket._GLOBAL_DEFAULT_TIMEOUT, an object: no timeout at all. The app's
    # Request object gets its own timeout back afterwards (it may be reused).
    timeout = request.timeout
    request.timeout = min(timeout, cap) if isinstance(timeout, int | float) and timeout > 0 else cap

    def restore() -> None:
        request.timeout = timeout

    return Outgoing(host, parts.port, args, kwargs, restore=restore)


def _status(exc: BaseException) -> tuple[int, Any] | None:
    return (exc.code, exc.headers) if isinstance(exc, urllib.error.HTTPError) else None


def _transient(exc: BaseException) -> bool | None:
    if isinstance(exc, urllib.error.HTTPError):
        return None  # a status: read by ``status``
    return isinstance(exc.reason, OSError) if isinstance(exc, urllib.error.URLError) else None


INTEGRATION = Integration(
    name="urllib",
    modules=frozenset({"urllib", "http"}),
    supported="",
    layers=(Layer("urllib", Hook("urllib.request", "AbstractHTTPHandler", "do_open"), False, _outgoing),),
    clients=(_Urllib(),),
    status=_status,
    transient=_transient,
)
