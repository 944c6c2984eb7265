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

An answer is kept only up to :data:`MAX_KEPT` bytes of body (10 MiB): one whose
``Content-Length`` says more is closed unread, one that runs past it (chunked, or endless) is
closed there, and :meth:`Client.keep` returns an :class:`Oversize` instead. It is never
served: the loop sends its own request and reads the answer itself, as the sequential loop
does (the request then went out twice: once ahead, once live). So what an upstream sends
costs at most ``MAX_KEPT`` and one chunk per answer in flight or held ahead of the loop,
however large or endless the body, and a loop that reads the first bytes of a stream and
closes it still does so against the live answer.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

__all__ = [
    "GET_HEAD",
    "MAX_KEPT",
    "STREAMED",
    "VOLATILE",
    "Answer",
    "Args",
    "Client",
    "Kwargs",
    "Oversize",
    "ReadTest",
    "Request",
    "announced_over",
    "comparable_headers",
    "read_capped",
    "read_capped_async",
]

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
#: The most bytes of body kept per answer sent ahead (10 MiB); a longer one is never kept.
MAX_KEPT = 10 * 1024 * 1024

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


@dataclass(frozen=True, slots=True)
class Oversize:
    """An answer sent ahead whose body is over :data:`MAX_KEPT`: closed, never served.
    ``size`` is its announced length, or the bytes read when it passed the cap."""

    status: int
    size: int
    announced: bool

    def __str__(self) -> str:
        said = f"says {self.size:,} bytes" if self.announced else f"ran past {self.size:,} bytes"
        return f"an answer whose body {said}, over the {MAX_KEPT // (1024 * 1024)} MiB kept ahead"


def announced_over(length: Any, method: str | None, status: int, cap: int = MAX_KEPT) -> int | None:
    """The body length a ``Content-Length`` value announces when it is over ``cap``, else None
    (a HEAD's, a 1xx's, a 204's or a 304's announces no body; an unreadable one is left to
    the read, which stops at the cap)."""
    if length is None or method == "HEAD" or status < 200 or status in (204, 304):
        return None
    try:
        size = int(length.decode("latin-1") if isinstance(length, bytes) else str(length))
    except ValueError:
        return None
    return size if size > cap else None


def read_capped(chunks: Iterable[bytes], cap: int = MAX_KEPT) -> bytes | int:
    """The body from ``chunks``, joined; or, once it passes ``cap``, how many bytes were read
    (the rest is never asked for: the iterator is closed, the caller closes the answer). At
    most ``cap`` bytes and one chunk are held."""
    parts: list[bytes] = []
    size = 0
    iterator = iter(chunks)
    for chunk in iterator:
        size += len(chunk)
        if size > cap:
            close = getattr(iterator, "close", None)
            if close is not None:
                close()
            return size
        parts.append(chunk)
    return b"".join(parts)


async def read_capped_async(chunks: AsyncIterable[bytes], cap: int = MAX_KEPT) -> bytes | int:
    """:func:`read_capped`, for chunks read asynchronously."""
    parts: list[bytes] = []
    size = 0
    iterator = aiter(chunks)
    async for chunk in iterator:
        size += len(chunk)
        if size > cap:
            aclose = getattr(iterator, "aclose", None)
            if aclose is not None:
                await aclose()
            return size
        parts.append(chunk)
    return b"".join(parts)


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
        self,
        instance: Any,
        args: Args,
        kwargs: Kwargs,
        methods: frozenset[str] = GET_HEAD,
        *,
        reads: ReadTest | None = None,
    ) -> Request | None:
        """The request of this call, or None when it is never sent early: with ``reads``, a
        request (its body bytes, not a stream) that ``reads`` says is a read; without, one
        whose method is in ``methods`` and that has no body."""
        raise NotImplementedError

    def rebuild(self, request: Request, instance: Any, url: str) -> Request | None:
        """The same request for ``url`` (the same headers, cookies and options)."""
        raise NotImplementedError

    def announced(self, response: Any, args: Args = ()) -> int | None:
        """The body length the answer's ``Content-Length`` announces, when it is over
        :data:`MAX_KEPT` (:func:`announced_over`); the answer is left unread."""
        raise NotImplementedError

    def keep(self, response: Any, args: Args = ()) -> Any:
        """Read a sent request's answer in full (in a worker), releasing its connection; an
        :class:`Oversize` (the answer closed) when its body is over :data:`MAX_KEPT`. ``args``
        are the sending call's (the request's method is there for a library whose response
        does not name it)."""
        raise NotImplementedError

    def status(self, kept: Any) -> Answer:
        raise NotImplementedError

    def serve(self, kept: Any, instance: Any, args: Args, kwargs: Kwargs) -> Any:
        """The kept answer as the response the library gives the loop for its own call."""
        raise NotImplementedError
