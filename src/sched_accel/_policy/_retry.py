"""Retry decisions: is a failure worth another attempt, and how long should the item wait.

This module only *decides*. It never sleeps, never calls the per-item function, and
holds no state, so the loop can take an item's failure, ask :func:`classify` whether
it is rate-limited or transient, ask :class:`Backoff` how long to wait and whether that
wait still fits the deadline, and re-queue the item for later without a worker
sitting in a sleep. When :meth:`Backoff.gives_up` says yes, the loop raises the item's
last exception at its call site, exactly as the sequential loop would have seen it.

Why neither stamina nor tenacity: both own the retry *loop*. ``stamina.retry`` and
``tenacity.Retrying`` call the function and sleep between attempts on the same
worker, which is the one thing we must not do (the slot would stay taken for the
whole wait). Their remaining reusable piece, the wait formula, does not fit either:
tenacity's ``wait_random_exponential`` (full jitter) draws from the global
``random`` module and must be called with a ``RetryCallState``; stamina's jitter is
additive (``base + uniform(0, wait_jitter)``), not full jitter. The formula is three
lines here, with an injected :class:`random.Random`.

Each library's exceptions are recognised as its integration says (``_integrations``),
without importing it: an exception of theirs can only exist once the app has imported them,
so they are looked up in ``sys.modules`` (requests by duck typing). Importing httpx costs
~0.1 s we would add to every job.
"""

from __future__ import annotations

import http.client
import re
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from random import Random
from typing import Any, Literal

from .._engine import check_positive
from .._integrations import http_status, status_of, transient
from ._headers import budget

__all__ = ["Backoff", "Failure", "classify", "is_timeout", "refusal_wait", "retry_after", "status_of"]

Kind = Literal["rate_limited", "transient"]

_SECONDS = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)")
_CHAIN_DEPTH = 2  # how many __cause__/__context__ links classify() follows


def retry_after(value: str | None, *, now: datetime | float | None = None, maximum: float = 300.0) -> float | None:
    """Seconds to wait according to a ``Retry-After`` header value, or None if it says nothing usable.

    Accepts delay-seconds (``"120"``), fractional seconds (``"0.5"``, which some servers
    send) and an HTTP-date in any of RFC 9110's three forms (IMF-fixdate, obsolete RFC
    850, asctime); a date without a zone is GMT. ``now`` is the clock to measure a date
    against (a datetime, naive meaning UTC, or a POSIX timestamp; default: the system
    clock). A negative delay or a past date gives 0.0; anything above ``maximum`` is
    capped to it, so a server cannot park an item for a day; garbage gives None.
    """
    check_positive("maximum", maximum, allow_none=False)
    if value is None:
        return None
    text = value.strip()
    if _SECONDS.fullmatch(text):
        seconds = float(text)
    else:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
        seconds = _timestamp(when) - (time.time() if now is None else _timestamp(now))
    return min(max(seconds, 0.0), maximum)


def refusal_wait(headers: Any, *, now: datetime | float | None = None, maximum: float = 300.0) -> float | None:
    """Seconds a refused request should wait, by what its answer says: its ``Retry-After``,
    else the reset of a quota it says is spent (the ``RateLimit`` fields, ``RateLimit-Reset``
    or ``X-RateLimit-Reset``: ``_headers``), capped to ``maximum``; None when it says neither.
    Read only for a refusal (429, 503): a healthy answer costs nothing here."""
    if headers is None:
        return None
    header = headers.get("Retry-After")
    wait = (
        retry_after(header, now=_answered_at(headers) if now is None else now, maximum=maximum)
        if isinstance(header, str)
        else None
    )
    if wait is not None:
        return wait
    try:
        told = budget(headers, now=None if now is None else _timestamp(now))
    except Exception:  # noqa: BLE001 - headers of an unknown kind: as if they said nothing
        return None
    if told is None or told.reset is None or told.remaining not in (None, 0):
        return None  # nothing said, or budget left: the refusal is not the quota's
    return min(told.reset, maximum)


def _answered_at(headers: Any) -> datetime | None:
    """The answer's own ``Date``, so that a Retry-After date is measured on the server's clock
    (a server an hour ahead must not park every item for the cap); None without a valid one."""
    date = headers.get("Date")
    if not isinstance(date, str) or _SECONDS.fullmatch(date.strip()):
        return None
    try:
        return parsedate_to_datetime(date)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def _timestamp(moment: datetime | float) -> float:
    if isinstance(moment, datetime):
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return moment.timestamp()
    return float(moment)


@dataclass(frozen=True, slots=True)
class Failure:
    """A failure worth retrying: what kind, the HTTP status if any, the server's wait hint, and why."""

    kind: Kind
    status: int | None
    retry_after: float | None
    reason: str
    #: Matched the config's own ``on`` or ``patterns``: retried although transient.
    asked: bool = False


def classify(
    exc: BaseException,
    *,
    extra_types: tuple[type[BaseException], ...] = (),
    patterns: tuple[str, ...] = (),
    now: datetime | float | None = None,
    max_retry_after: float = 300.0,
) -> Failure | None:
    """Whether the exception a per-item call raised is worth retrying; None means permanent.

    Rate-limited: HTTP 429, and 503 with a usable Retry-After, from httpx's
    ``HTTPStatusError``, requests' ``HTTPError`` (any exception whose ``.response`` has
    ``.status_code`` and ``.headers``), ``urllib.error.HTTPError`` and aiohttp's
    ``ClientResponseError``. Transient: 502, 503
    and 504 otherwise; httpx transport errors and timeouts (not ``UnsupportedProtocol``
    or ``LocalProtocolError``, which are our side's mistakes); requests'
    ``ConnectionError``, ``Timeout`` and ``ChunkedEncodingError`` (by class name in the
    MRO); ``URLError`` whose reason is an OSError (refused, reset, DNS, timeout);
    ``ConnectionError``, ``TimeoutError`` (= ``socket.timeout``) and
    ``http.client.IncompleteRead``; instances of ``extra_types``; and any exception whose
    ``str()`` matches one of ``patterns`` (``re.search``). Everything else, including
    other 4xx and 5xx, is permanent. A match of ``extra_types`` or ``patterns`` (the config's
    ``on`` and ``patterns``) is ``asked``: the policy retries a transient failure only when
    asked, or when ``[retry] transient`` is true (the sequential loop meets those too).

    An exception that matches nothing is looked through up to two levels of
    ``__cause__`` / ``__context__`` (apps wrap the httpx error in their own), unless it
    was raised ``from None``; an exception group of one is looked through as well.

    Classify the exception the per-item call raised on the worker. The loop's own
    per-item ``TimeoutError``, raised at its call site while the call runs on, is not a
    failure of the call and must not be passed here: it is indistinguishable from a
    socket timeout by type.
    """
    check_positive("max_retry_after", max_retry_after, allow_none=False)
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and len(seen) <= _CHAIN_DEPTH and all(current is not e for e in seen):
        seen.append(current)
        while isinstance(current, BaseExceptionGroup) and len(current.exceptions) == 1:
            current = current.exceptions[0]
        failure = _classify_one(current, extra_types, patterns, now, max_retry_after)
        if failure is not None:
            if current is not exc:
                failure = replace(failure, reason=f"{failure.reason}, wrapped in {_name(exc)}")
            return failure
        current = current.__cause__ or (None if current.__suppress_context__ else current.__context__)
    return None


def _classify_one(
    exc: BaseException,
    extra_types: tuple[type[BaseException], ...],
    patterns: tuple[str, ...],
    now: datetime | float | None,
    max_retry_after: float,
) -> Failure | None:
    status, headers = _http_status(exc)
    failure = _from_status(status, headers, now, max_retry_after) if status is not None else None
    if failure is not None and failure.kind == "rate_limited":
        return failure
    # The config's own say first: what it names is retried even when it is also transient.
    if extra_types and isinstance(exc, extra_types):
        return Failure("transient", status, None, f"{_name(exc)} is one of extra_types", asked=True)
    for pattern in patterns:
        if re.search(pattern, str(exc)):
            return Failure("transient", status, None, f"{_name(exc)} matches {pattern!r}", asked=True)
    if failure is not None:
        return failure
    if status is None and _is_transient_type(exc):
        return Failure("transient", None, None, _name(exc))
    return None


def _http_status(exc: BaseException) -> tuple[int | None, Any]:
    """The HTTP status and headers an exception carries (as its library says: urllib's and
    aiohttp's, ``_integrations``; else a ``.response``'s, whatever its library), if any."""
    found = http_status(exc)
    if found is not None:
        return found
    try:
        response = getattr(exc, "response", None)
        status = getattr(response, "status_code", None)
        headers = getattr(response, "headers", None)
    except Exception:  # a property that raises is no response
        return None, None
    if isinstance(status, int) and not isinstance(status, bool) and callable(getattr(headers, "get", None)):
        return status, headers
    return None, None


def _from_status(status: int, headers: Any, now: datetime | float | None, max_retry_after: float) -> Failure | None:
    if status not in (429, 502, 503, 504):
        return None
    wait = refusal_wait(headers, now=now, maximum=max_retry_after)
    if status == 429 or (status == 503 and wait is not None):
        return Failure(
            "rate_limited", status, wait, f"HTTP {status}" + (f", Retry-After {wait:g} s" if wait is not None else "")
        )
    return Failure("transient", status, None, f"HTTP {status}")


def _is_transient_type(exc: BaseException) -> bool:
    """As the exception's library says (``_integrations``), else the standard library's own
    connection errors, timeouts and bodies cut short."""
    said = transient(exc)
    if said is not None:
        return said
    return isinstance(exc, ConnectionError | TimeoutError | http.client.IncompleteRead)


def _name(exc: BaseException) -> str:
    """The exception's class as a user would import it: ``ReadTimeout`` → ``httpx.ReadTimeout``."""
    cls = type(exc)
    module = ".".join(part for part in cls.__module__.split(".") if not part.startswith("_"))
    return cls.__qualname__ if module in ("", "builtins") else f"{module}.{cls.__qualname__}"


@dataclass(frozen=True, slots=True, kw_only=True)
class Backoff:
    """How long a failed item waits before its next attempt, and when to stop trying.

    Exponential backoff with AWS's "full jitter": after attempt ``n`` the wait is drawn
    uniformly from ``[0, min(maximum, initial * multiplier ** (n - 1))]``, so items that
    failed together do not come back together. ``deadline`` bounds the time from an
    item's first attempt to its last; no retry is scheduled past it.
    """

    initial: float = 0.1
    maximum: float = 30.0
    multiplier: float = 2.0
    deadline: float = 120.0

    def __post_init__(self) -> None:
        for name in ("initial", "maximum", "multiplier", "deadline"):
            check_positive(name, getattr(self, name), allow_none=False)
        if self.multiplier < 1:
            raise ValueError(f"multiplier must be at least 1 (waits must not shrink), got {self.multiplier!r}")

    def ceiling(self, attempt: int) -> float:
        """The widest wait after failed attempt number ``attempt`` (1 for the first), before Retry-After."""
        if isinstance(attempt, bool) or not isinstance(attempt, int) or attempt < 1:
            raise ValueError(f"attempt must be an integer >= 1, got {attempt!r}")
        try:
            return min(self.initial * self.multiplier ** (attempt - 1), self.maximum)
        except OverflowError:
            return self.maximum

    def delay(self, attempt: int, failure: Failure, rng: Random) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1 for the first) before trying again.

        With a Retry-After the wait is ``retry_after + uniform(0, ceiling(attempt))``:
        never earlier than the server asked, since an earlier retry is a certain wasted
        request and another 429. Not ``max(retry_after, backoff)``: early on nearly every
        jittered backoff is below the server's hint, so every waiter would wake at the
        very instant it names and stampede the limiter again. The spread starts at
        ``initial`` (0.1 s, small next to any real Retry-After) and widens only while the
        item keeps being refused, so a server that answers ``Retry-After: 0`` still gets
        exponential backoff. The spread is also never wider than the hint itself (the wait is
        at most twice what the server asked): a server refusing a share of requests at random
        would otherwise push an unlucky item's wait to the backoff's maximum. It is not capped
        by ``maximum``: the server's hint wins, and :meth:`gives_up` decides whether it still
        fits the deadline.
        """
        wait = failure.retry_after
        if not wait:  # no hint, or "0": the ordinary backoff
            return rng.uniform(0.0, self.ceiling(attempt))
        return wait + rng.uniform(0.0, min(self.ceiling(attempt), wait))

    def gives_up(self, elapsed: float, next_delay: float) -> bool:
        """Whether to stop: the next attempt would start past the deadline.

        ``elapsed`` is the time since the item's first attempt started, on the caller's
        monotonic clock. When this is true the loop raises the item's last exception.
        """
        return elapsed + next_delay > self.deadline


def is_timeout(exc: BaseException) -> bool:
    """Whether a failure is a timeout (httpx, requests, urllib, ours)."""
    reason = getattr(exc, "reason", None)  # urllib.error.URLError wraps the socket's
    return any("Timeout" in cls.__name__ for cls in type(exc).__mro__) or isinstance(reason, TimeoutError)
