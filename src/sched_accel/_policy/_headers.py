"""What an HTTP answer says about its host's rate limit: a pure parser of its headers.

:func:`budget` reads, in this order of precedence (issue 12, item 1):

1. ``Retry-After`` (RFC 9110 §10.2.3): delay-seconds, fractional seconds too, or an
   HTTP-date, measured against the answer's own ``Date`` when it has one (skew corrected).
2. The IETF fields of draft-ietf-httpapi-ratelimit-headers-10 (08 to 11 share the syntax),
   Structured-Field lists of named policies, as Cloudflare's API sends them:
   ``RateLimit-Policy: "burst";q=100;w=60`` (§3: quota, window) and
   ``RateLimit: "burst";r=50;t=30`` (§4: remaining, seconds to reset); and the draft-07
   forms ``RateLimit-Policy: 100;w=60``, ``RateLimit: limit=100, remaining=50, reset=30``.
   Of several policies, the binding one: its remaining quota spread over its time to reset
   leaves the longest interval between requests.
3. The separate fields of drafts 00 to 06: ``RateLimit-Limit`` (``100``, ``100, 100;w=60``),
   ``RateLimit-Remaining``, ``RateLimit-Reset``, windowed by an old-form RateLimit-Policy.
4. ``X-RateLimit-*`` and ``X-Rate-Limit-*``: GitHub's and Twitter/X's (reset a Unix time),
   Envoy's (``10, 10;w=60``), Discord's ``-Reset-After`` (preferred to its ``-Reset``),
   OpenAI's ``-Requests`` suffix (reset a duration, ``6m0s``).

Limit, remaining, reset and window come from the first of forms 2 to 4 that says anything;
``Retry-After`` comes alongside and takes precedence: the reset is never before it (draft-10
§6, §7). A reset up to a day is seconds; from 10**9 a Unix time, from 10**12 in milliseconds
(or an HTTP-date), measured against ``Date``, else ``now``; a past moment is 0 s away.
Counts are bounded to 10**9, durations to a day; a negative, out-of-range or non-decimal
value is ignored, that field alone. Names are case-insensitive; of several values the first
valid one is read (``RateLimit`` and ``RateLimit-Policy`` lists are joined, RFC 8941 §3.1).
Nothing here raises on what a server sends, sleeps, logs or keeps state.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC
from email.utils import parsedate_to_datetime
from typing import Any, Final, Literal, Protocol, TypeVar

__all__ = ["MAX_COUNT", "MAX_SECONDS", "Budget", "Headers", "Source", "budget", "spread"]

T = TypeVar("T")

Source = Literal["retry-after", "ratelimit", "ratelimit-legacy", "x-ratelimit"]
_SOURCES: Final = ("retry-after", "ratelimit", "ratelimit-legacy", "x-ratelimit")

#: The largest count (limit, remaining) believed.
MAX_COUNT: Final = 10**9
#: The longest duration (reset, window, Retry-After) believed, in seconds: a day.
MAX_SECONDS: Final = 86_400.0
_EPOCH: Final = 1e9  # from here a reset is a Unix time in seconds...
_EPOCH_MS: Final = 1e12  # ...from here in milliseconds...
_EPOCH_END: Final = 1e15  # ...up to here (year 33658).
_LONGEST: Final = 4096  # characters: a longer header value is not read

_INTEGER = re.compile(r"[0-9]{1,15}")
_DECIMAL = re.compile(r"[0-9]{1,15}(?:\.[0-9]{1,12})?")
_DURATION = re.compile(r"(?:[0-9]{1,9}(?:\.[0-9]{1,9})?(?:ms|h|m|s))+")
_DURATION_PART = re.compile(r"([0-9]{1,9}(?:\.[0-9]{1,9})?)(ms|h|m|s)")
_UNITS: Final = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
_X_PREFIXES: Final = ("x-ratelimit-", "x-rate-limit-")


class _Items(Protocol):
    def items(self) -> Iterable[tuple[str, str]]: ...


#: A mapping, anything with ``items()`` (``email.message.Message``) or pairs of name and value.
Headers = Mapping[str, str] | _Items | Iterable[tuple[str, str]]
_Read = tuple[int | None, int | None, float | None, float | None]  # limit, remaining, reset, window
_Policy = tuple[str, int, float | None]  # name, quota, window
_Item = tuple[str, dict[str, str]]  # a list member's head (bare item or key=value) and parameters


@dataclass(frozen=True, slots=True, kw_only=True)
class Budget:
    """What one answer says about the host's rate limit; None where it says nothing."""

    limit: int | None = None  #: requests allowed per window (the quota)
    remaining: int | None = None  #: requests left in the current window
    reset: float | None = None  #: seconds from now until the window resets (remaining refills)
    window: float | None = None  #: the policy's window length, in seconds
    source: Source  #: the form that gave the numbers above; "retry-after" when none did
    retry_after: float | None = None  #: seconds to wait, when Retry-After was present

    def __post_init__(self) -> None:
        if self.source not in _SOURCES:
            raise ValueError(f"source={self.source!r}: expected one of {', '.join(_SOURCES)}")
        for name, low, high in (
            ("limit", 1, MAX_COUNT),
            ("remaining", 0, MAX_COUNT),
            ("reset", 0.0, MAX_SECONDS),
            ("window", 1e-3, MAX_SECONDS),
            ("retry_after", 0.0, MAX_SECONDS),
        ):
            value = getattr(self, name)
            if value is not None and not low <= value <= high:
                raise ValueError(f"{name}={value!r}: expected None or a number from {low} to {high}")


def spread(b: Budget) -> float | None:
    """Seconds between requests that spend ``remaining`` evenly over the time to ``reset``
    (never a burst to zero and a wait): ``reset / max(remaining, 1)``; without those, the
    policy's steady rate ``window / limit``; None when the answer told neither."""
    if b.reset is not None and b.remaining is not None:
        return b.reset / max(b.remaining, 1)
    if b.window is not None and b.limit is not None:
        return b.window / b.limit
    return None


def budget(headers: Headers, *, now: float | None = None) -> Budget | None:
    """What the answer with these ``headers`` says about its host's rate limit, or None.

    ``headers``: a mapping (httpx's and aiohttp's multi-value headers are read value by
    value), an ``email.message.Message`` (urllib's) or pairs of name and value. ``now``:
    the Unix time the answer arrived (default: the system clock), used only for a date or
    Unix time in an answer without a valid ``Date``.
    """
    fields = _fields(headers)
    date = _first(fields.get("date", []), _http_date)
    base = date if date is not None else (time.time() if now is None else now)
    retry_after = _first(fields.get("retry-after", []), lambda text: _retry_after(text, base))
    policies = _policies(fields)
    source: Source = "ratelimit"
    read = _ratelimit(fields, policies, base)
    if read is None:
        read, source = _legacy(fields, policies, base), "ratelimit-legacy"
    if read is None:
        read, source = _policy_only(policies), "ratelimit"
    if read is None:
        read, source = _x_ratelimit(fields, base), "x-ratelimit"
    if read is None and retry_after is None:
        return None
    limit, remaining, reset, window = read or (None, None, None, None)
    source = source if read else "retry-after"
    if reset is not None and retry_after is not None:
        reset = max(reset, retry_after)
    return Budget(limit=limit, remaining=remaining, reset=reset, window=window, source=source, retry_after=retry_after)


def _ratelimit(fields: dict[str, list[str]], policies: list[_Policy], base: float) -> _Read | None:
    """``RateLimit``: draft-08+ items (``"name";r=50;t=30``) or the draft-07 dictionary."""
    keys: dict[str, str] = {}
    items: list[tuple[str, int | None, float | None]] = []
    for head, params in _items(", ".join(fields.get("ratelimit", []))):
        if "=" in head and not head.startswith('"'):
            keys.setdefault(*_param(head))
            continue
        remaining, reset = _count(params.get("r"), 0), _moment(params.get("t"), base)
        if remaining is not None or reset is not None:
            items.append((_unquote(head), remaining, reset))
    if keys:  # draft-07: limit=100, remaining=50, reset=30
        limit = _count(keys.get("limit"), 1)
        read = (limit, _count(keys.get("remaining"), 0), _moment(keys.get("reset"), base), _window_of(policies, limit))
        if read != (None, None, None, None):
            return read
    if not items:
        return None
    name, remaining, reset = max(items, key=lambda item: (item[2] or 0.0) / max(item[1] or 0, 1))
    policy = next((p for p in policies if p[0] == name), policies[0] if len(policies) == len(items) == 1 else None)
    return (None, remaining, reset, None) if policy is None else (policy[1], remaining, reset, policy[2])


def _legacy(fields: dict[str, list[str]], policies: list[_Policy], base: float) -> _Read | None:
    """``RateLimit-Limit``, ``RateLimit-Remaining``, ``RateLimit-Reset`` (drafts 00 to 06)."""
    limit, window = _limit_field(fields.get("ratelimit-limit", []))
    remaining = _first(fields.get("ratelimit-remaining", []), lambda text: _count(text, 0))
    reset = _first(fields.get("ratelimit-reset", []), lambda text: _moment(text, base))
    read = (limit, remaining, reset, window if window is not None else _window_of(policies, limit))
    return None if read == (None, None, None, None) else read


def _policy_only(policies: list[_Policy]) -> _Read | None:
    """``RateLimit-Policy`` alone: the policy with the lowest rate (quota over window)."""
    if not policies:
        return None
    windowed = [p for p in policies if p[2] is not None]
    _, quota, window = min(windowed, key=lambda p: p[1] / (p[2] or 1.0)) if windowed else policies[0]
    return (quota, None, None, window)


def _x_ratelimit(fields: dict[str, list[str]], base: float) -> _Read | None:
    """``X-RateLimit-*`` / ``X-Rate-Limit-*``: GitHub, Twitter/X, Envoy, Discord, OpenAI."""

    def values(*names: str) -> list[str]:
        return [value for prefix in _X_PREFIXES for name in names for value in fields.get(prefix + name, [])]

    limit, window = _limit_field(values("limit", "limit-requests"))
    remaining = _first(values("remaining", "remaining-requests"), lambda text: _count(text, 0))
    reset = _first(values("reset-after"), _seconds)
    if reset is None:
        reset = _first(values("reset", "reset-requests"), lambda text: _moment(text, base))
    read = (limit, remaining, reset, window)
    return None if read == (None, None, None, None) else read


def _policies(fields: dict[str, list[str]]) -> list[_Policy]:
    """``RateLimit-Policy``'s items: ``"name";q=100;w=60`` (draft-08+), ``100;w=60`` (older)."""
    found: list[_Policy] = []
    for head, params in _items(", ".join(fields.get("ratelimit-policy", []))):
        quota = _count(params.get("q", head), 1)  # before draft-08 the item itself is the quota
        if quota is not None:
            found.append((_unquote(head), quota, _window(params.get("w"))))
    return found


def _window_of(policies: list[_Policy], limit: int | None) -> float | None:
    """The window of the policy whose quota is ``limit`` (draft-07: the expiring limit's)."""
    return next((p[2] for p in policies if p[1] == limit and p[2] is not None), None)


def _limit_field(values: list[str]) -> tuple[int | None, float | None]:
    """A limit field, ``100`` or ``100, 100;w=60``: the limit, and its window if it says it."""
    for value in values:
        items = _items(value)
        limit = next((n for n in (_count(head, 1) for head, _ in items) if n is not None), None)
        if limit is not None:
            windows = (_window(params.get("w")) for head, params in items if _count(head, 1) == limit)
            return limit, next((w for w in windows if w is not None), None)
    return None, None


def _fields(headers: Headers) -> dict[str, list[str]]:
    """Every header's values, by lower-case name, in the order they came."""
    fields: dict[str, list[str]] = {}
    raw: Any = headers
    items = getattr(raw, "multi_items", None) or getattr(raw, "items", None)
    try:
        pairs: list[Any] = list(items() if callable(items) else raw)
    except (TypeError, ValueError):  # not headers at all: no budget rather than a raise
        return fields
    for pair in pairs:
        if not isinstance(pair, tuple) or len(pair) != 2:
            continue
        name, value = (part.decode("latin-1") if isinstance(part, bytes) else part for part in pair)
        if isinstance(name, str) and isinstance(value, str) and len(value) <= _LONGEST:
            fields.setdefault(name.strip().lower(), []).append(value)
    return fields


def _first(values: list[str], parse: Callable[[str], T | None]) -> T | None:
    """The first valid value: each value whole, then each of its comma-separated members."""
    for value in values:
        for text in (value, *_split(value, ",")) if "," in value else (value,):
            found = parse(text)
            if found is not None:
                return found
    return None


def _items(value: str) -> list[_Item]:
    """The members of a Structured-Field list (or dictionary), each as head and parameters."""
    found: list[_Item] = []
    for member in _split(value, ","):
        head, *params = (part.strip() for part in _split(member, ";"))
        if head:
            found.append((head, dict(_param(p) for p in params if "=" in p)))
    return found


def _split(text: str, separator: str) -> list[str]:
    """``text`` cut at each ``separator`` outside a quoted string."""
    parts: list[str] = []
    start, quoted, escaped = 0, False, False
    for index, char in enumerate(text):
        if escaped:
            escaped = False
        elif quoted and char == "\\":
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif char == separator and not quoted:
            parts.append(text[start:index])
            start = index + 1
    parts.append(text[start:])
    return parts


def _param(text: str) -> tuple[str, str]:
    key, _, value = text.partition("=")
    return key.strip().lower(), _unquote(value.strip())


def _unquote(text: str) -> str:
    if len(text) >= 2 and text[0] == text[-1] == '"':
        return text[1:-1].replace('\\"', '"').replace("\\\\", "\\")
    return text


def _count(text: str | None, low: int) -> int | None:
    """A count from ``low`` to :data:`MAX_COUNT`, or None."""
    text = "" if text is None else text.strip()
    if not _INTEGER.fullmatch(text):
        return None
    count = int(text)
    return count if low <= count <= MAX_COUNT else None


def _seconds(text: str | None) -> float | None:
    """A duration up to a day, as a decimal number of seconds or as ``6m0s``; or None."""
    text = "" if text is None else text.strip().lower()
    if _DECIMAL.fullmatch(text):
        seconds = float(text)
    elif _DURATION.fullmatch(text):
        seconds = sum(float(number) * _UNITS[unit] for number, unit in _DURATION_PART.findall(text))
    else:
        return None
    return seconds if seconds <= MAX_SECONDS else None


def _window(text: str | None) -> float | None:
    seconds = _seconds(text)
    return seconds if seconds is not None and seconds >= 1e-3 else None


def _moment(text: str | None, base: float) -> float | None:
    """A reset: seconds from now, or a moment (Unix time in s or ms, HTTP-date) after ``base``."""
    stripped = "" if text is None else text.strip()
    if not _DECIMAL.fullmatch(stripped):
        seconds = _seconds(stripped)
        when = _http_date(stripped) if seconds is None else None
        return seconds if when is None else _until(when, base)
    value = float(stripped)
    if value >= _EPOCH_MS:
        return _until(value / 1000.0, base) if value < _EPOCH_END else None
    if value >= _EPOCH:
        return _until(value, base)
    return value if value <= MAX_SECONDS else None


def _retry_after(text: str, base: float) -> float | None:
    """``Retry-After``: delay-seconds (fractions too) or an HTTP-date after ``base``."""
    stripped = text.strip()
    if _DECIMAL.fullmatch(stripped):
        seconds = float(stripped)
        return seconds if seconds <= MAX_SECONDS else None
    when = _http_date(stripped)
    return None if when is None else _until(when, base)


def _until(when: float, base: float) -> float | None:
    """Seconds from ``base`` to ``when``: 0 if it is past, None if more than a day away."""
    seconds = when - base
    return max(seconds, 0.0) if seconds <= MAX_SECONDS else None


def _http_date(text: str) -> float | None:
    """An HTTP-date (any of RFC 9110's three forms; no zone means GMT) as a Unix time."""
    try:
        when = parsedate_to_datetime(text.strip())
        return (when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp()
    except (TypeError, ValueError, IndexError, OverflowError, OSError):
        return None
