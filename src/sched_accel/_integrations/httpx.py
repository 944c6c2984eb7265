"""httpx (0.27 and later): its transports, where every request of a ``Client`` or an
``AsyncClient`` is sent fully built.

- **Where**: ``HTTPTransport.handle_request`` and ``AsyncHTTPTransport.handle_async_request``
  (public API; a custom transport that wraps httpx's is covered too). The request's own
  timeouts are in its extensions, as the client puts them: capped there.
- **Reads and effects**: a GET or HEAD without a body; asked with ``reads``, a request whose
  body httpx read when it was made (``content=``, ``data=``, ``json=``; a stream, a file or
  multipart files: never).
- **URLs**: a URL string given is quoted httpx's own way (``%20`` for a space, ``'`` and ``!``
  kept); ``params`` as the installed httpx writes them (0.27: a space ``%20``; 0.28 on: as
  ``urlencode``).
- **Answers**: read raw (``iter_raw``: still encoded, as the client decodes it) and served as
  an ``httpx.Response`` holding those bytes: the client's own redirects, hooks and cookie
  handling then run on it in the loop's thread.
- **The client beyond headers**: its TLS context (what ``create_ssl_context`` made it from,
  tagged as it is made: clients made alike, one per item, are one client) and its proxy.
- **Closing**: the transport's ``close`` / ``__exit__`` (what ``with httpx.Client()`` and
  ``httpx.get`` call) and their async twins.
- **Transient**: ``httpx.TransportError`` but ``UnsupportedProtocol`` and ``LocalProtocolError``
  (our side's mistakes). An ``HTTPStatusError`` carries its ``.response``: read by the policy.
"""

from __future__ import annotations

import functools
import os
import string
import sys
import urllib.parse
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
    read_capped,
    read_capped_async,
    request_named,
)
from ._base import comparable_headers as _headers

__all__ = ["INTEGRATION", "TLS_MADE"]

#: The attribute an SSL context httpx made from its own settings carries: what it was made from
#: (``verify`` and ``cert`` as given, ``trust_env`` and the variables it reads), so that two
#: clients made alike (one per item) are known as the same client, and two made with different
#: certificates never are (an answer is served only to its own client).
TLS_MADE = "_sched_accel_made"


def _outgoing(instance: Any, args: Args, kwargs: Kwargs, cap: float | None) -> Outgoing:
    request = args[0] if args else kwargs["request"]
    url = request.url
    own = request.extensions
    timeouts = own.get("timeout")
    if cap is None or not isinstance(timeouts, dict):
        return Outgoing(url.host, url.port, args, kwargs, pooled=_pooled(instance))
    # The request's own timeouts, in its extensions as httpx's client puts them: capped for this
    # send (httpcore takes them from the dict it is given, the body's reads too), and the app's
    # own put back after it (a request it built may be sent again: ``client.send(request)``).
    request.extensions = {**own, "timeout": {k: capped(v, cap) for k, v in timeouts.items()}}

    def restore() -> None:
        request.extensions = own

    return Outgoing(url.host, url.port, args, kwargs, pooled=_pooled(instance), restore=restore)


def _pooled(transport: Any) -> bool:
    """Whether the transport sends through httpcore's connections (httpx's own, and those
    built on it), whose connections take the request's token as it goes out (``httpcore``)."""
    return getattr(transport, "_pool", None) is not None and "httpcore" in sys.modules


def _tag_ssl_context(wrapped: Any, instance: Any, args: Args, kwargs: Kwargs) -> Any:
    """httpx's ``create_ssl_context(verify, cert, trust_env)``: the context, tagged with what it
    was made from when httpx made it (a context the app made and passed in is left untagged:
    it is known by its identity)."""
    context = wrapped(*args, **kwargs)
    verify = args[0] if args else kwargs.get("verify", True)
    if isinstance(verify, bool | str):
        cert = args[1] if len(args) > 1 else kwargs.get("cert")
        trust_env = bool(args[2] if len(args) > 2 else kwargs.get("trust_env", True))
        made: tuple[object, ...] = (repr(verify), repr(cert), trust_env)
        if trust_env:
            made += (os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR"))
        try:
            setattr(context, TLS_MADE, made)
        except AttributeError:  # a context that takes no attribute: known by its identity
            pass
    return context


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
            body = _body(request)
            if body is STREAMED or not reads(request.method, str(request.url), raw, body):
                return None
        return Request(
            request.method, str(request.url), lambda: (*_headers(raw), _client(instance)), (request,), {}, body
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
        return _kept(response, raw)

    def status(self, kept: Any) -> Answer:
        return Answer(kept[0], kept[1])

    def serve(self, kept: Any, instance: Any, args: Args, kwargs: Kwargs) -> Any:
        import httpx

        status, headers, raw, extensions = kept
        return httpx.Response(status, headers=headers.raw, stream=httpx.ByteStream(raw), extensions=dict(extensions))

    def quoted(self, url: str, where: str) -> str | None:
        import httpx

        try:
            parsed = httpx.URL(url)
        except Exception:  # noqa: BLE001 - a URL httpx refuses: the loop could not ask for it either
            return None
        return (parsed.raw_path if where == "path" else parsed.query).decode("ascii")

    def whole_url(self, text: str) -> str | None:
        import httpx

        try:
            return str(httpx.URL(text))
        except Exception:  # noqa: BLE001 - refused
            return None

    def param_ways(self) -> dict[str, Callable[[str], str]]:
        return _PARAMS if _params_differ() else {}

    def named(self, args: Args, kwargs: Kwargs) -> tuple[str, str] | None:
        return request_named(args, kwargs)


def _params(text: str) -> str:
    """A value in httpx's ``params``, as the installed httpx writes it (0.27 writes a space
    ``%20``, 0.28 on ``+``, as ``urlencode``: found by the version matrix, ``noxfile.py``)."""
    import httpx

    return str(httpx.QueryParams({"q": text}))[2:]


_PARAMS: dict[str, Callable[[str], str]] = {"httpx_params": _params}


@functools.cache
def _params_differ() -> bool:
    """Whether the installed httpx writes ``params`` other than ``quote_plus`` does (0.27 does;
    from 0.28 on they agree, and every value would be written twice the same way), judged once
    on every printable ASCII character and a few beyond."""
    return any(_params(c) != urllib.parse.quote_plus(c) for c in string.printable.strip() + " é€")


def _kept(response: Any, raw: bytes) -> tuple[int, Any, bytes, dict[str, Any]]:
    extensions = {k: v for k, v in response.extensions.items() if k in ("http_version", "reason_phrase")}
    return (response.status_code, response.headers, raw, extensions)


def _body(request: Any) -> Any:
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
        return _kept(response, raw)


def _client(transport: Any) -> tuple[str, Any]:
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


def _transient(exc: BaseException) -> bool | None:
    httpx = sys.modules.get("httpx")
    if httpx is None or not isinstance(exc, httpx.TransportError):
        return None
    return not isinstance(exc, httpx.UnsupportedProtocol | httpx.LocalProtocolError)


INTEGRATION = Integration(
    name="httpx",
    modules=frozenset({"httpx"}),
    supported=">=0.27.0",
    layers=(
        Layer("httpx", Hook("httpx", "HTTPTransport", "handle_request"), False, _outgoing),
        Layer("httpx-async", Hook("httpx", "AsyncHTTPTransport", "handle_async_request"), True, _outgoing),
    ),
    closes=(
        Hook("httpx", "HTTPTransport", "close"),
        Hook("httpx", "HTTPTransport", "__exit__"),  # what ``with httpx.Client()`` and ``httpx.get`` call
        Hook("httpx", "AsyncHTTPTransport", "aclose"),
        Hook("httpx", "AsyncHTTPTransport", "__aexit__"),
    ),
    # Always: clients are made before a run starts.
    always=((Hook("httpx._transports.default", "", "create_ssl_context"), _tag_ssl_context),),
    clients=(_Httpx(), _HttpxAsync()),
    transient=_transient,
)
