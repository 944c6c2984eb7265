"""What each HTTP library's adapter is, for HTTP-level prefetch: a :class:`Client` (one
library's layer: describe a request, the same request for another URL, its answer kept
and served), the :class:`Request` it describes and the :class:`Answer` the policy reads.

The adapters themselves are in ``_clients`` (httpx, requests, aiohttp) and
``_urllib_client``; ``_clients.CLIENTS`` holds one of each, by library name.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["VOLATILE", "Answer", "Args", "Client", "Kwargs", "Request", "comparable_headers"]

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
    makes it: most of the loop's requests are never compared, so it is made when first read."""

    __slots__ = ("_extra", "args", "kwargs", "method", "url")

    def __init__(
        self, method: str, url: str, extra: tuple[Any, ...] | Callable[[], tuple[Any, ...]], args: Args, kwargs: Kwargs
    ) -> None:
        self.method = method
        self.url = url
        self._extra = extra
        self.args = args
        self.kwargs = kwargs

    @property
    def extra(self) -> tuple[Any, ...]:
        """Everything but the method and URL that identifies the request (headers, options)."""
        extra = self._extra
        if callable(extra):
            extra = self._extra = extra()
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
