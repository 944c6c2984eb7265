r"""What an integration is: everything sched_accel knows about one library, in one module of
``_integrations``, described by an :class:`Integration` (ddtrace's ``contrib/<lib>/patch.py``
and OpenTelemetry's ``BaseInstrumentor`` are the models).

An integration says where the library sends each request (its :class:`Layer`\ s: the method
wrapped, and what the policy reads there: host, port, the timeout capped), where a request's
rate token is taken as it is written (``wires``), what closes a client (``closes``), the
:class:`Client` that describes, keeps and serves its requests for prefetch, how to read the
status of its exceptions and which of them are transient, the modules whose functions are
the library's own, and the versions supported. Nothing here imports the library: what an
integration needs of it is imported when it is called (the app imported it by then), or read
from ``sys.modules``. Nothing here imports the rest of sched_accel either: the policy, the
prefetch and the install layers read the registry (``_integrations.INTEGRATIONS``).

A :class:`Client` is one library's layer as HTTP-level prefetch needs it: describe a request,
the same request for another URL, its answer kept and served. Which requests a client
describes is its caller's to say: by default a GET or HEAD without a body (``methods``); with
``reads`` (a :data:`ReadTest`, e.g. ``_reads.is_read`` with a host's declared reads), any
request it says is a read, its body included in its identity. A body the library streams (a
file, an iterator, a generator) is never described: it cannot be compared, and it is read
only once, as it is sent.

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

import urllib.parse
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
    "Hook",
    "Integration",
    "Kwargs",
    "Layer",
    "Outgoing",
    "Oversize",
    "ReadTest",
    "Request",
    "Sending",
    "announced_over",
    "capped",
    "comparable_headers",
    "read_capped",
    "read_capped_async",
    "request_named",
    "status_of",
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

    def for_shadow(self, kept: Any, instance: Any, args: Args, kwargs: Kwargs) -> Any:
        """The kept answer as a shadow's own response, apart from the one the loop will get, and
        without the cookies it sets: what the shadow's client does with them must not reach the
        app's cookie jar. By default: served, its ``Set-Cookie`` headers removed (httpx and
        urllib extract cookies above the layer we answer at, from those headers)."""
        response = self.serve(kept, instance, args, kwargs)
        headers = getattr(response, "headers", None)
        if headers is not None:
            try:
                del headers["set-cookie"]
            except KeyError:
                pass
        return response

    def quoted(self, url: str, where: str) -> str | None:
        """How the library sends ``url``, a URL string the app gives it (an f-string): the
        ``where`` part of it ("path": from its ``/``; "query": the query string), as the
        library quotes any URL it is given; None when it refuses the URL. By default: as
        given (urllib sends a URL as it is)."""
        parts = urllib.parse.urlsplit(url)
        return parts.path if where == "path" else parts.query

    def whole_url(self, text: str) -> str | None:
        """A whole URL the app gives the library (an item that is a URL), as the library
        sends it; None when it refuses it. By default: as given."""
        return text

    def param_ways(self) -> dict[str, Callable[[str], str]]:
        """The ways the library's ``params`` write a value into a query, beyond
        ``urllib.parse.quote_plus`` (``urlencode``'s, which every one of them may use): by name,
        each a function of the value's text. By default: none."""
        return {}

    def named(self, args: Args, kwargs: Kwargs) -> tuple[str, str] | None:
        """The method and URL of the call's request as the app made it (not described: any
        request), or None when the arguments are not the layer's."""
        raise NotImplementedError

    def what(self, args: Args, kwargs: Kwargs) -> str:
        """The request's method and URL, for a line that names it."""
        named = self.named(args, kwargs)
        return "a request with a body or a method other than GET and HEAD" if named is None else " ".join(named)


def request_named(args: Args, kwargs: Kwargs) -> tuple[str, str] | None:
    """The method and URL of a layer's call whose request is its first argument (``request``),
    an object with ``method`` and ``url`` (httpx's ``Request``, requests' ``PreparedRequest``)."""
    request = args[0] if args else kwargs.get("request")
    method, url = getattr(request, "method", None), getattr(request, "url", None)
    return (method, str(url)) if isinstance(method, str) and url is not None else None


def status_of(response: object) -> Any:
    """A response's status as its library names it: ``status_code`` (httpx, requests) or
    ``status`` (aiohttp, urllib); None for an object with neither."""
    code = getattr(response, "status_code", None)
    return getattr(response, "status", None) if code is None else code


@dataclass(frozen=True, slots=True)
class Outgoing:
    """A request about to be sent at a library's :class:`Layer`, as the policy needs it: the
    host and port it goes to, the call's arguments with its timeouts capped, whether the
    library's connection takes the request's rate token as it writes it (``wires``), and what
    puts back a timeout capped in place on an object the app may reuse."""

    host: str
    port: int | None
    args: Args
    kwargs: Kwargs
    pooled: bool = False
    restore: Callable[[], None] | None = None


#: ``outgoing(instance, args, kwargs, cap)``: the request a layer's call sends; ``cap``, the
#: target's timeout (None: no cap).
Sending = Callable[[Any, Args, Kwargs, "float | None"], Outgoing]


@dataclass(frozen=True, slots=True)
class Hook:
    """What is wrapped once ``module`` is imported: ``owner.attribute`` (a class of the
    module's and its method), or ``attribute`` of the module itself when ``owner`` is empty."""

    module: str
    owner: str
    attribute: str

    def __str__(self) -> str:
        return ".".join(part for part in (self.module, self.owner, self.attribute) if part)

    def find(self, module: Any) -> Any:
        """What holds the attribute in the imported ``module`` (the class, or the module), if
        the attribute is there and callable; else None (a version without it)."""
        owner = getattr(module, self.owner, None) if self.owner else module
        return owner if owner is not None and callable(getattr(owner, self.attribute, None)) else None


def capped(value: Any, cap: float) -> Any:
    """A timeout value (seconds, or None for none) no longer than ``cap``; others unchanged."""
    if value is None:
        return cap
    if isinstance(value, int | float) and not isinstance(value, bool):
        return min(value, cap)
    return value


@dataclass(frozen=True, slots=True)
class Layer:
    """Where the library sends each request: every request of the app through it is seen
    there (limits, timeouts, answers sent ahead). ``library`` is the name its requests go by
    (a sync and an async layer of one library have two: ``httpx``, ``httpx-async``)."""

    library: str
    hook: Hook
    is_async: bool
    outgoing: Sending


@dataclass(frozen=True, slots=True)
class Integration:
    """Everything sched_accel knows about one library (see the module's docstring)."""

    #: The distribution's name on PyPI (``urllib``: the standard library's).
    name: str
    #: The top-level modules whose functions are the library's own: a ``fetch`` may name them
    #: (prefetched at the HTTP level), a ``loop`` may not.
    modules: frozenset[str]
    #: The versions supported, as a pip specifier (``""`` for the standard library's).
    supported: str
    layers: tuple[Layer, ...] = ()
    #: Where a request's rate token is taken as its connection writes it (httpcore), and
    #: whether that method is a coroutine's.
    wires: tuple[tuple[Hook, bool], ...] = ()
    #: What closes a client's transport or adapter: nothing more is sent ahead through it.
    closes: tuple[Hook, ...] = ()
    #: Where the library stores the cookies an answer sets, when that is at or below its layer
    #: (aiohttp's jar, filled in ``_request``): not run for a request sent ahead, whose answer's
    #: cookies are stored when it is served to the loop (its :meth:`Client.serve`).
    stores_cookies: tuple[Hook, ...] = ()
    #: Wrappers of its own, always on (httpx: what an SSL context was made from).
    always: tuple[tuple[Hook, Callable[..., Any]], ...] = ()
    #: Prefetch's adapter for each of its layers (by the layer's ``library``).
    clients: tuple[Client, ...] = ()
    #: The HTTP status and headers one of its exceptions carries, or None.
    status: Callable[[BaseException], tuple[int, Any] | None] | None = None
    #: Whether one of its exceptions is transient (a refused, reset or timed-out connection);
    #: None when it is not one of its own.
    transient: Callable[[BaseException], bool | None] | None = None
