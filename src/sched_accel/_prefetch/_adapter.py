"""What each HTTP library's adapter is, for HTTP-level prefetch: a :class:`Client` (one
library's layer: describe a request, the same request for another URL, its answer kept
and served), the :class:`Request` it describes and the :class:`Answer` the policy reads.

The adapters themselves are in ``_clients`` (httpx, requests, aiohttp) and
``_urllib_client``; ``_clients.CLIENTS`` holds one of each, by library name.

Which requests a client describes is its caller's to say: by default a GET or HEAD without a
body (``methods``); with ``reads`` (a :data:`ReadTest`, e.g. ``_reads.is_read`` with a host's
declared reads), any request it says is a read, its body included in its identity. A body
the library streams (a file, an iterator, a generator) is never described: it cannot be
compared, and it is read only once, as it is sent.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["GET_HEAD", "STREAMED", "VOLATILE", "Answer", "Args", "Client", "Kwargs", "ReadTest", "Request", "comparable_headers"]

Args = tuple[Any, ...]
Kwargs = dict[str, Any]
#: ``reads(method, url, headers, body)``: whether a request is a read, to describe it with its
#: body. ``headers`` as the library holds them (pairs of str or bytes, or a mapping); ``body``
#: None without one.
ReadTest = Callable[[str, str, Any, bytes | None], bool]
#: The methods described by default: HTTP-level prefetch sends them ahead, without a body.
GET_HEAD = frozenset({"GET", "HEAD"})
#: A body that a client's ``describe`` finds streamed: never described.
STREAMED: Any = object()

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


def comparable_headers(items: Any) -> tuple[tuple[str, str], ...]:
    """Headers as a comparable value: lower-cased names, sorted, tracing headers left out."""
    pairs = []
    for name, value in items:
        name = name.decode("latin-1") if isinstance(name, bytes) else str(name)
        value = value.decode("latin-1") if isinstance(value, bytes) else str(value)
        lower = name.lower()
        if lower not in VOLATILE:
            pairs.append((lower, value))
    return tuple(sorted(pairs))


class Request:
    """One request as the loop makes it (or as we would send it): its identity, and the
    arguments of the wrapped call that sends it. ``extra`` may be given as a function that
    makes it: most of the loop's requests are never compared, so it is made when first read.
    ``body``, the bytes sent (None without a body), is part of ``extra`` as ``("<body>", body)``,
    compared byte for byte (the library's own bytes object where it holds one: not copied)."""

    __slots__ = ("_extra", "args", "body", "kwargs", "method", "url")

    def __init__(
        self,
        method: str,
        url: str,
        extra: tuple[Any, ...] | Callable[[], tuple[Any, ...]],
        args: Args,
        kwargs: Kwargs,
        body: bytes | None = None,
    ) -> None:
        self.method = method
        self.url = url
        self._extra = extra if body is None or callable(extra) else (*extra, ("<body>", body))
        self.args = args
        self.kwargs = kwargs
        self.body = body

    @property
    def extra(self) -> tuple[Any, ...]:
        """Everything but the method and URL that identifies the request (headers, options, body)."""
        extra = self._extra
        if callable(extra):
            made = extra()
            extra = self._extra = made if self.body is None else (*made, ("<body>", self.body))
        return extra

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

    def describe(
        self, instance: Any, args: Args, kwargs: Kwargs, methods: frozenset[str] = GET_HEAD, *, reads: ReadTest | None = None
    ) -> Request | None:
        """The request of this call, or None when it is never sent early: with ``reads``, a
        request (its body bytes, not a stream) that ``reads`` says is a read; without, one
        whose method is in ``methods`` and that has no body."""
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
