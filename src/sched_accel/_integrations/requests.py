"""requests (2.31 and later): ``HTTPAdapter.send``, where a ``Session`` (and ``requests.get``,
which makes one per call) sends each ``PreparedRequest``, fully built.

- **Where**: ``requests.adapters.HTTPAdapter.send(request, stream, timeout, verify, cert,
  proxies)``; its ``timeout`` (seconds, or a ``(connect, read)`` pair) capped there.
- **Reads and effects**: a GET or HEAD without a body that the loop does not stream
  (``stream=True``: never); asked with ``reads``, one whose body is bytes, or a str as urllib3
  encodes it (UTF-8; a file or a generator: never).
- **URLs**: a URL string given is quoted as urllib3's and ``requote_uri`` quote it; ``params``
  as ``urlencode`` (``quote_plus``).
- **Answers**: the ``Response`` itself, its body read (decoded, as ``.content`` is) and its
  connection given back; served with the loop's own ``PreparedRequest`` on it. A shadow's copy
  has no ``raw``: requests takes cookies from there, so none reach the app's jar.
- **The client beyond headers**: the ``verify``, ``cert`` and ``proxies`` the session passes per
  call, and an adapter of the app's own by its identity (it may hold a certificate).
- **Closing**: ``HTTPAdapter.close`` (a session's ``close``, and ``requests.get``'s).
- **Transient**: ``ConnectionError``, ``Timeout`` and ``ChunkedEncodingError`` (by class name
  in the MRO: requests need not be imported to be recognised). An ``HTTPError`` from
  ``raise_for_status`` carries its ``.response``: read by the policy.
"""

from __future__ import annotations

import copy
import urllib.parse
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
    request_named,
)
from ._base import comparable_headers as _headers

__all__ = ["INTEGRATION"]

#: The most bytes asked for at once when an answer is read ahead.
_CHUNK = 64 * 1024
_TRANSIENT = frozenset({"ConnectionError", "Timeout", "ChunkedEncodingError"})


def _outgoing(instance: Any, args: Args, kwargs: Kwargs, cap: float | None) -> Outgoing:
    request = args[0] if args else kwargs["request"]
    if cap is not None:
        if len(args) >= 3:  # send(request, stream, timeout, ...)
            args = (*args[:2], _capped_timeout(args[2], cap), *args[3:])
        else:
            kwargs = {**kwargs, "timeout": _capped_timeout(kwargs.get("timeout"), cap)}
    parts = urllib.parse.urlsplit(request.url)
    return Outgoing(_unicode(parts.hostname or ""), parts.port, args, kwargs)


def _unicode(host: str) -> str:
    """A host as the URL wrote it: requests prepares an internationalised name in IDNA form
    (``xn--...``), the other libraries' layers name it as written (``bücher.example``), and
    ``[hosts."bücher.example"]`` must mean the same to each."""
    if "xn--" not in host:
        return host
    try:
        return ".".join(label.encode("ascii").decode("idna") for label in host.split("."))
    except UnicodeError:
        return host


def _capped_timeout(value: Any, cap: float) -> Any:
    if isinstance(value, tuple) and len(value) == 2:  # (connect, read)
        return (capped(value[0], cap), capped(value[1], cap))
    return capped(value, cap)


def _client(adapter: Any, args: Args, kwargs: Kwargs) -> tuple[str, Any]:
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
            body = _body(prepared.body)
            if body is STREAMED or not reads(prepared.method, prepared.url, headers, body):
                return None
        return Request(
            prepared.method,
            prepared.url,
            lambda: (*_headers(headers.items()), _client(instance, args, kwargs)),
            args,
            kwargs,
            body,
        )

    def rebuild(self, request: Request, instance: Any, url: str) -> Request | None:
        original = request.args[0] if request.args else request.kwargs["request"]
        new = original.copy()
        new.prepare_url(url, None)
        if _origin(new.url) != _origin(original.url):
            return None  # another host: its Host header, cookies and credentials would not be these
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

    def for_shadow(self, kept: Any, instance: Any, args: Args, kwargs: Kwargs) -> Any:
        response = copy.copy(kept)
        response.headers = kept.headers.copy()
        response.raw = None  # requests takes cookies from raw's _original_response: none
        response.request = args[0] if args else kwargs["request"]
        return response

    def quoted(self, url: str, where: str) -> str | None:
        made = self.whole_url(url)
        if made is None:
            return None
        parts = urllib.parse.urlsplit(made)
        return parts.path if where == "path" else parts.query

    def whole_url(self, text: str) -> str | None:
        from requests.models import PreparedRequest

        prepared = PreparedRequest()
        try:
            prepared.prepare_url(text, None)
        except Exception:  # noqa: BLE001 - a URL requests refuses
            return None
        return str(prepared.url)

    def named(self, args: Args, kwargs: Kwargs) -> tuple[str, str] | None:
        return request_named(args, kwargs)


def _origin(url: str) -> tuple[str, str | None, int | None]:
    parts = urllib.parse.urlsplit(url)
    return parts.scheme, parts.hostname, parts.port


def _body(body: Any) -> Any:
    """A ``PreparedRequest.body`` as sent: bytes (a str as urllib3 encodes it), None, or STREAMED."""
    if body is None or isinstance(body, bytes):
        return body or None
    if isinstance(body, str):
        return body.encode("utf-8") or None
    return STREAMED  # a file, a generator, an iterable: read as it is sent


def _transient(exc: BaseException) -> bool | None:
    if any(cls.__module__.startswith("requests.") and cls.__name__ in _TRANSIENT for cls in type(exc).__mro__):
        return True
    return None


INTEGRATION = Integration(
    name="requests",
    modules=frozenset({"requests", "urllib3"}),
    supported=">=2.31.0",
    layers=(Layer("requests", Hook("requests.adapters", "HTTPAdapter", "send"), False, _outgoing),),
    closes=(Hook("requests.adapters", "HTTPAdapter", "close"),),
    clients=(_Requests(),),
    transient=_transient,
)
