"""_retry.py: Retry-After parsing, failure classification and the backoff policy (no sleeping, no network)."""

from __future__ import annotations

import dataclasses
import http.client
import socket
import subprocess
import sys
import urllib.error
from datetime import UTC, datetime, timedelta
from email.message import Message
from random import Random
from typing import Any

import httpx
import pytest

from sched_accel._policy import Backoff, Failure, classify, retry_after

NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
REQUEST = httpx.Request("GET", "http://x")


def http_error(status: int, headers: dict[str, str] | None = None) -> httpx.HTTPStatusError:
    """The exception httpx's raise_for_status() raises for ``status``."""
    response = httpx.Response(status, headers=headers, request=REQUEST)
    with pytest.raises(httpx.HTTPStatusError) as info:
        response.raise_for_status()
    return info.value


def urllib_error(status: int, headers: dict[str, str] | None = None) -> urllib.error.HTTPError:
    """An urllib HTTPError as urlopen raises it, with an email.message.Message for headers."""
    message = Message()
    for key, value in (headers or {}).items():
        message[key] = value
    return urllib.error.HTTPError("http://x", status, "status", message, None)


# A stand-in for requests, which is not a dependency: classes that live in "requests.exceptions".
class FakeRequestException(OSError):
    def __init__(self, *args: object, response: Any = None) -> None:
        super().__init__(*args)
        self.response = response


class FakeConnectionError(FakeRequestException):
    pass


class FakeTimeout(FakeRequestException):
    pass


class FakeReadTimeout(FakeTimeout):
    pass


class FakeHTTPError(FakeRequestException):
    pass


class FakeInvalidURL(FakeRequestException):
    pass


for _cls, _name in [
    (FakeRequestException, "RequestException"),
    (FakeConnectionError, "ConnectionError"),
    (FakeTimeout, "Timeout"),
    (FakeReadTimeout, "ReadTimeout"),
    (FakeHTTPError, "HTTPError"),
    (FakeInvalidURL, "InvalidURL"),
]:
    _cls.__module__, _cls.__name__, _cls.__qualname__ = "requests.exceptions", _name, _name


@dataclasses.dataclass
class FakeResponse:
    status_code: int
    headers: dict[str, str]


class AppError(Exception):
    """What an app wraps its HTTP client's errors in."""


# ---- retry_after -------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "seconds"), [("0", 0.0), ("2", 2.0), ("120", 120.0), (" 7 ", 7.0), ("+3", 3.0)])
def test_integer_seconds(value: str, seconds: float) -> None:
    """Delay-seconds, including surrounding whitespace, parse to that many seconds."""
    assert retry_after(value) == seconds


@pytest.mark.parametrize(("value", "seconds"), [("0.5", 0.5), (".25", 0.25), ("1.", 1.0), ("2.75", 2.75)])
def test_fractional_seconds(value: str, seconds: float) -> None:
    """Fractional seconds, which some servers send, are kept fractional."""
    assert retry_after(value) == seconds


@pytest.mark.parametrize(
    "value",
    [
        "Wed, 01 May 2024 12:00:30 GMT",  # IMF-fixdate
        "Wednesday, 01-May-24 12:00:30 GMT",  # obsolete RFC 850
        "Wed May  1 12:00:30 2024",  # asctime, no zone: GMT
    ],
    ids=["imf-fixdate", "rfc850", "asctime"],
)
def test_http_date_forms(value: str) -> None:
    """All three HTTP-date forms of RFC 9110 give the seconds from the injected now."""
    assert retry_after(value, now=NOW) == 30.0


def test_http_date_against_timestamp_and_naive_now() -> None:
    """``now`` may be a POSIX timestamp or a naive datetime, which means UTC."""
    value = "Wed, 01 May 2024 12:00:30 GMT"
    assert retry_after(value, now=NOW.timestamp()) == 30.0
    assert retry_after(value, now=NOW.replace(tzinfo=None)) == 30.0


def test_http_date_with_offset() -> None:
    """A date with a numeric zone is converted, not read as GMT."""
    assert retry_after("Wed, 01 May 2024 14:00:30 +0200", now=NOW) == 30.0


@pytest.mark.parametrize("value", ["Wed, 01 May 2024 11:59:00 GMT", "Sun, 06 Nov 1994 08:49:37 GMT", "-5", "-0.5"])
def test_past_dates_and_negative_delays_are_zero(value: str) -> None:
    """A date already past or a negative delay means retry now: 0.0."""
    assert retry_after(value, now=NOW) == 0.0


@pytest.mark.parametrize(
    "value", [None, "", "   ", "soon", "1e3", "nan", "inf", "1 2", "5, 5", "2024-05-01T12:00:30Z", "0x10"]
)
def test_garbage_is_none(value: str | None) -> None:
    """Missing or unparseable values (including float spellings RFC 9110 does not allow) give None."""
    assert retry_after(value, now=NOW) is None


def test_absurd_values_are_capped() -> None:
    """Delays beyond the maximum (300 s by default, configurable) are capped to it."""
    assert retry_after("86400") == 300.0
    assert retry_after("Thu, 01 May 2025 12:00:00 GMT", now=NOW) == 300.0
    assert retry_after("86400", maximum=10) == 10.0
    assert retry_after("9" * 400) == 300.0


@pytest.mark.parametrize("maximum", [0, -1.0, float("nan")])
def test_retry_after_maximum_must_be_positive(maximum: float) -> None:
    """A non-positive maximum raises ValueError naming it."""
    with pytest.raises(ValueError, match="maximum"):
        retry_after("1", maximum=maximum)


def test_default_clock_is_the_system_clock() -> None:
    """Without ``now`` an HTTP-date is measured against the current time."""
    soon = datetime.now(UTC) + timedelta(seconds=100)
    seconds = retry_after(soon.strftime("%a, %d %b %Y %H:%M:%S GMT"))
    assert seconds is not None and 95 <= seconds <= 100


# ---- classify: HTTP statuses -------------------------------------------------------------


def test_httpx_429_with_retry_after_is_rate_limited() -> None:
    """httpx 429 is rate-limited and carries the parsed Retry-After."""
    assert classify(http_error(429, {"Retry-After": "2"})) == Failure(
        "rate_limited", 429, 2.0, "HTTP 429, Retry-After 2 s"
    )


def test_httpx_429_without_retry_after_is_rate_limited() -> None:
    """A 429 without (or with a garbage) Retry-After is still rate-limited, with no hint."""
    assert classify(http_error(429)) == Failure("rate_limited", 429, None, "HTTP 429")
    failure = classify(http_error(429, {"Retry-After": "later"}))
    assert failure is not None and failure.kind == "rate_limited" and failure.retry_after is None


def test_retry_after_header_is_case_insensitive_and_fractional() -> None:
    """A lower-case retry-after header with fractional seconds is honoured."""
    failure = classify(http_error(429, {"retry-after": "0.5"}))
    assert failure is not None and failure.retry_after == 0.5


def test_http_date_retry_after_uses_injected_now() -> None:
    """classify passes ``now`` through to the HTTP-date parse."""
    failure = classify(http_error(429, {"Retry-After": "Wed, 01 May 2024 12:00:05 GMT"}), now=NOW)
    assert failure is not None and failure.retry_after == 5.0


def test_max_retry_after_is_configurable() -> None:
    """classify caps the hint with max_retry_after, and rejects a non-positive cap."""
    failure = classify(http_error(429, {"Retry-After": "3600"}), max_retry_after=60)
    assert failure is not None and failure.retry_after == 60.0
    with pytest.raises(ValueError, match="max_retry_after"):
        classify(http_error(429), max_retry_after=0)


def test_503_with_retry_after_is_rate_limited() -> None:
    """A 503 with a usable Retry-After is rate-limited."""
    assert classify(http_error(503, {"Retry-After": "1"})) == Failure(
        "rate_limited", 503, 1.0, "HTTP 503, Retry-After 1 s"
    )


@pytest.mark.parametrize(
    ("status", "headers", "reason"),
    [
        (503, {}, "HTTP 503"),
        (503, {"Retry-After": "garbage"}, "HTTP 503"),
        (502, {}, "HTTP 502"),
        (504, {"Retry-After": "3"}, "HTTP 504"),
    ],
)
def test_gateway_errors_are_transient(status: int, headers: dict[str, str], reason: str) -> None:
    """502, 504 and a 503 without a usable Retry-After are transient, with no hint to wait on."""
    assert classify(http_error(status, headers)) == Failure("transient", status, None, reason)


@pytest.mark.parametrize("status", [400, 401, 403, 404, 408, 409, 422, 500, 501])
def test_other_statuses_are_permanent(status: int) -> None:
    """4xx other than 429, and 5xx other than 502/503/504, are not retried."""
    assert classify(http_error(status, {"Retry-After": "1"})) is None


def test_urllib_http_errors() -> None:
    """urllib's HTTPError is classified by its code and headers, never as a transient URLError."""
    assert classify(urllib_error(429, {"Retry-After": "4"})) == Failure(
        "rate_limited", 429, 4.0, "HTTP 429, Retry-After 4 s"
    )
    assert classify(urllib_error(503)) == Failure("transient", 503, None, "HTTP 503")
    assert classify(urllib_error(404)) is None
    refused = urllib.error.HTTPError("http://x", 429, "status", None, None)  # type: ignore[arg-type]
    assert classify(refused) == Failure("rate_limited", 429, None, "HTTP 429")


def test_requests_like_http_error_by_duck_typing() -> None:
    """An exception whose .response has status_code and headers (requests' HTTPError) is classified by status."""
    exc = FakeHTTPError("429", response=FakeResponse(429, {"Retry-After": "0.5"}))
    assert classify(exc) == Failure("rate_limited", 429, 0.5, "HTTP 429, Retry-After 0.5 s")
    assert classify(FakeHTTPError("404", response=FakeResponse(404, {}))) is None


def test_response_without_status_is_not_http() -> None:
    """A .response that is None, lacks headers, or whose access raises, does not count as an HTTP status."""

    class Broken(Exception):
        @property
        def response(self) -> Any:
            raise RuntimeError("no response")

    class NoHeaders(Exception):
        response = dataclasses.make_dataclass("R", [("status_code", int)])(429)

    assert classify(FakeHTTPError("x", response=None)) is None
    assert classify(Broken()) is None
    assert classify(NoHeaders()) is None


# ---- classify: transport errors -----------------------------------------------------------


@pytest.mark.parametrize(
    "exc",
    [
        httpx.ConnectError("refused", request=REQUEST),
        httpx.ReadTimeout("slow"),
        httpx.ConnectTimeout("slow"),
        httpx.PoolTimeout("full"),
        httpx.ReadError("reset"),
        httpx.RemoteProtocolError("peer closed connection without sending complete message body"),
        httpx.ProxyError("proxy down"),
    ],
    ids=lambda exc: type(exc).__name__,
)
def test_httpx_transport_errors_are_transient(exc: httpx.TransportError) -> None:
    """httpx's connection errors, timeouts and remote protocol errors are transient."""
    assert classify(exc) == Failure("transient", None, None, f"httpx.{type(exc).__name__}")


@pytest.mark.parametrize(
    "exc",
    [httpx.UnsupportedProtocol("ftp://"), httpx.LocalProtocolError("bad header")],
    ids=lambda exc: type(exc).__name__,
)
def test_httpx_errors_of_our_own_making_are_permanent(exc: httpx.TransportError) -> None:
    """A bad URL scheme or a malformed request will fail again: permanent."""
    assert classify(exc) is None


@pytest.mark.parametrize(
    "exc",
    [FakeConnectionError("refused"), FakeTimeout("slow"), FakeReadTimeout("slow")],
    ids=lambda exc: type(exc).__name__,
)
def test_requests_like_connection_errors_and_timeouts(exc: BaseException) -> None:
    """requests' ConnectionError and Timeout (and subclasses) are recognised by class name in the MRO."""
    failure = classify(exc)
    assert (
        failure is not None
        and failure.kind == "transient"
        and failure.reason == f"requests.exceptions.{type(exc).__name__}"
    )


def test_requests_like_other_errors_are_permanent() -> None:
    """requests' other exceptions (InvalidURL) are permanent, as is a look-alike outside requests."""

    class ConnectionErrorLookalike(Exception):
        pass

    ConnectionErrorLookalike.__name__ = "ConnectionError"
    assert classify(FakeInvalidURL("no host")) is None
    assert classify(ConnectionErrorLookalike()) is None


@pytest.mark.parametrize(
    "exc",
    [
        ConnectionError("x"),
        ConnectionResetError(104, "reset"),
        ConnectionRefusedError(111, "refused"),
        BrokenPipeError(32, "pipe"),
        http.client.RemoteDisconnected("closed"),
        http.client.IncompleteRead(b"par", 10),
        TimeoutError("timed out"),
        TimeoutError("timed out"),
        urllib.error.URLError(ConnectionRefusedError(111, "refused")),
        urllib.error.URLError(TimeoutError("timed out")),
        urllib.error.URLError(socket.gaierror(-3, "temporary failure in name resolution")),
    ],
    ids=lambda exc: type(exc).__name__ + ":" + str(exc)[:20],
)
def test_stdlib_network_errors_are_transient(exc: BaseException) -> None:
    """Builtin connection errors, socket timeouts, truncated bodies and URLErrors over an OSError are transient."""
    failure = classify(exc)
    assert (
        failure is not None and failure.kind == "transient" and failure.status is None and failure.retry_after is None
    )


@pytest.mark.parametrize(
    "exc",
    [
        ValueError("bad"),
        KeyError("k"),
        RuntimeError("x"),
        FileNotFoundError(2, "missing"),
        urllib.error.URLError("unknown url type: ftp"),
        KeyboardInterrupt(),
        SystemExit(1),
    ],
    ids=lambda exc: type(exc).__name__,
)
def test_permanent_errors(exc: BaseException) -> None:
    """Programming errors, other OSErrors, URLErrors with a text reason and BaseExceptions are permanent."""
    assert classify(exc) is None


# ---- classify: configuration and wrapping ------------------------------------------------


def test_extra_types_are_transient() -> None:
    """Instances (including subclasses) of extra_types are transient."""

    class Flaky(AppError):
        pass

    assert classify(Flaky("x")) is None
    assert classify(Flaky("x"), extra_types=(AppError,)) == Failure(
        "transient",
        None,
        None,
        "tests.policy.test_retry.test_extra_types_are_transient.<locals>.Flaky is one of extra_types",
        asked=True,
    )


def test_patterns_match_anywhere_in_the_message() -> None:
    """A message matching any pattern (re.search) is transient; a non-matching one stays permanent."""
    exc = AppError("upstream said: Service Temporarily Unavailable")
    assert classify(exc, patterns=("nothing", r"temporar(il)?y unavailable")) is None  # case matters
    assert classify(exc, patterns=("nothing", r"(?i)temporar(il)?y unavailable")) == Failure(
        "transient", None, None, "tests.policy.test_retry.AppError matches '(?i)temporar(il)?y unavailable'", asked=True
    )


def test_what_the_config_names_is_asked_for_even_when_it_is_transient_anyway() -> None:
    """A 502 or a reset named by patterns or extra_types is asked (retried without [retry] transient); unnamed, it is not."""
    assert classify(http_error(502)) == Failure("transient", 502, None, "HTTP 502")
    named = classify(http_error(502), patterns=("Bad Gateway",))
    assert named is not None and named.asked and named.status == 502
    assert classify(ConnectionResetError("reset"), extra_types=(ConnectionResetError,)) == Failure(
        "transient", None, None, "ConnectionResetError is one of extra_types", asked=True
    )
    rate_limited = classify(http_error(429), patterns=(".",))
    assert rate_limited is not None and rate_limited.kind == "rate_limited" and not rate_limited.asked


def test_configuration_can_make_a_permanent_status_transient() -> None:
    """extra_types and patterns also apply to an HTTP error whose status is not retried by default."""
    failure = classify(http_error(500), patterns=("Server Error",))
    assert failure is not None and failure.kind == "transient" and failure.status == 500


def test_wrapped_with_from_is_classified_by_its_cause() -> None:
    """An app exception raised ``from`` an httpx 429 is rate-limited, and the reason names the wrapper."""
    try:
        try:
            raise http_error(429, {"Retry-After": "1"})
        except httpx.HTTPStatusError as exc:
            raise AppError("fetch failed") from exc
    except AppError as exc:
        assert classify(exc) == Failure(
            "rate_limited", 429, 1.0, "HTTP 429, Retry-After 1 s, wrapped in tests.policy.test_retry.AppError"
        )


def test_wrapped_implicitly_is_classified_by_its_context() -> None:
    """An exception raised while handling a ConnectError (no ``from``) is classified by that context."""
    try:
        try:
            raise httpx.ConnectError("refused")
        except httpx.ConnectError:
            raise AppError("fetch failed")  # noqa: B904
    except AppError as exc:
        assert classify(exc) == Failure(
            "transient", None, None, "httpx.ConnectError, wrapped in tests.policy.test_retry.AppError"
        )


def chain(root: BaseException, levels: int) -> BaseException:
    """``root`` wrapped ``levels`` times in AppError via __cause__."""
    exc = root
    for level in range(levels):
        outer = AppError(f"level {level}")
        outer.__cause__ = exc
        exc = outer
    return exc


def test_chain_is_followed_two_levels_only() -> None:
    """Two levels of wrapping are looked through; a cause three levels down is not."""
    assert classify(chain(httpx.ReadTimeout("slow"), 2)) is not None
    assert classify(chain(httpx.ReadTimeout("slow"), 3)) is None


def test_raise_from_none_hides_the_context() -> None:
    """``raise X from None`` means the author hid the cause: it is not looked at."""
    try:
        try:
            raise httpx.ConnectError("refused")
        except httpx.ConnectError:
            raise AppError("gave up") from None
    except AppError as exc:
        assert classify(exc) is None


def test_cyclic_chain_terminates() -> None:
    """An exception chain that loops back on itself ends the walk."""
    a, b = AppError("a"), AppError("b")
    a.__cause__, b.__cause__ = b, a
    assert classify(a) is None


def test_exception_group_of_one_is_looked_through() -> None:
    """A group wrapping a single exception is classified by that exception; a group of several is permanent."""
    one = ExceptionGroup("tg", [ExceptionGroup("inner", [httpx.ReadTimeout("slow")])])
    assert classify(one) == Failure("transient", None, None, "httpx.ReadTimeout, wrapped in ExceptionGroup")
    assert classify(ExceptionGroup("tg", [httpx.ReadTimeout("slow"), ValueError("x")])) is None


def test_failure_is_frozen_and_slotted() -> None:
    """Failure is an immutable, slotted value."""
    failure = Failure("transient", None, None, "x")
    with pytest.raises(dataclasses.FrozenInstanceError):
        failure.kind = "rate_limited"  # type: ignore[misc]
    assert not hasattr(failure, "__dict__")


def test_module_does_not_import_httpx() -> None:
    """Importing the module does not import httpx: httpx exceptions are found via sys.modules."""
    code = "import sys, sched_accel._policy._retry; print('httpx' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# ---- Backoff ------------------------------------------------------------------------------

TRANSIENT = Failure("transient", None, None, "x")


def test_ceiling_grows_exponentially_up_to_the_maximum() -> None:
    """The jitter window doubles per attempt from initial and stops at maximum, even for huge attempts."""
    backoff = Backoff(initial=0.1, maximum=1.0, multiplier=2.0)
    assert [backoff.ceiling(n) for n in range(1, 7)] == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.0, 1.0])
    assert Backoff().ceiling(10_000) == 30.0
    assert Backoff(multiplier=1).ceiling(50) == 0.1


def test_delay_is_full_jitter_within_the_window() -> None:
    """Each delay is drawn from [0, ceiling(attempt)], and the draws spread over the window."""
    backoff, rng = Backoff(), Random(1234)
    for attempt in (1, 3, 8, 20):
        delays = [backoff.delay(attempt, TRANSIENT, rng) for _ in range(500)]
        assert all(0.0 <= d <= backoff.ceiling(attempt) for d in delays)
        assert min(delays) < 0.1 * backoff.ceiling(attempt) and max(delays) > 0.9 * backoff.ceiling(attempt)


def test_delay_is_reproducible_with_a_seeded_random() -> None:
    """The same seed gives the same delays: the randomness is all in the injected Random."""
    backoff = Backoff()
    assert [backoff.delay(n, TRANSIENT, Random(7)) for n in range(1, 6)] == [
        backoff.delay(n, TRANSIENT, Random(7)) for n in range(1, 6)
    ]


def test_retry_after_is_honoured_plus_jitter() -> None:
    """With a Retry-After the delay is never shorter than it, at most ceiling(attempt) longer, and at
    most twice as long (an item refused many times does not drift to the backoff's maximum)."""
    backoff, rng = Backoff(), Random(99)
    failure = Failure("rate_limited", 429, 2.0, "HTTP 429")
    for attempt in (1, 4, 12):
        delays = [backoff.delay(attempt, failure, rng) for _ in range(300)]
        assert all(2.0 <= d <= 2.0 + min(backoff.ceiling(attempt), 2.0) for d in delays)
        assert len(set(delays)) == len(delays)  # waiters do not all wake at the same instant


def test_retry_after_zero_still_backs_off() -> None:
    """A server answering Retry-After: 0 gets the ordinary exponential backoff, not a hot loop."""
    backoff = Backoff()
    failure = Failure("rate_limited", 429, 0.0, "HTTP 429")
    assert backoff.delay(6, failure, Random(5)) == backoff.delay(6, TRANSIENT, Random(5))


def test_retry_after_above_maximum_is_not_cut_short() -> None:
    """The server's hint wins over the backoff maximum; only the deadline can refuse it."""
    backoff = Backoff(maximum=1.0)
    failure = Failure("rate_limited", 503, 60.0, "HTTP 503")
    assert 60.0 <= backoff.delay(1, failure, Random(0)) <= 60.1


def test_rate_limited_without_hint_uses_backoff() -> None:
    """A 429 without Retry-After waits like any transient failure."""
    failure = Failure("rate_limited", 429, None, "HTTP 429")
    assert Backoff().delay(3, failure, Random(3)) == Backoff().delay(3, TRANSIENT, Random(3))


def test_gives_up_only_past_the_deadline() -> None:
    """No retry is scheduled whose start would fall after the deadline; exactly at it is still allowed."""
    backoff = Backoff(deadline=10.0)
    assert not backoff.gives_up(0.0, 9.9)
    assert not backoff.gives_up(7.5, 2.5)
    assert backoff.gives_up(7.5, 2.6)
    assert backoff.gives_up(11.0, 0.0)


def test_default_policy() -> None:
    """Defaults: 0.1 s initial, 30 s maximum, doubling, 120 s deadline."""
    assert Backoff() == Backoff(initial=0.1, maximum=30.0, multiplier=2.0, deadline=120.0)


@pytest.mark.parametrize("name", ["initial", "maximum", "multiplier", "deadline"])
@pytest.mark.parametrize("value", [0, -1.0, float("nan"), True])
def test_backoff_rejects_non_positive_settings(name: str, value: float) -> None:
    """Each setting must be a positive number; the error names the argument."""
    with pytest.raises(ValueError, match=f"^{name} must be"):
        Backoff(**{name: value})


def test_multiplier_below_one_is_rejected() -> None:
    """A multiplier below 1 would shrink the waits: ValueError naming it."""
    with pytest.raises(ValueError, match="^multiplier must be at least 1"):
        Backoff(multiplier=0.5)


@pytest.mark.parametrize("attempt", [0, -1, 1.5, True])
def test_attempt_must_be_a_positive_integer(attempt: Any) -> None:
    """Attempts are counted from 1; anything else raises ValueError naming the argument."""
    with pytest.raises(ValueError, match="^attempt must be"):
        Backoff().delay(attempt, TRANSIENT, Random(0))


def test_backoff_is_frozen_and_keyword_only() -> None:
    """The policy is immutable and takes its settings by keyword only."""
    with pytest.raises(dataclasses.FrozenInstanceError):
        Backoff().initial = 1.0  # type: ignore[misc]
    with pytest.raises(TypeError):
        Backoff(0.1)  # type: ignore[call-arg]


def test_a_refusal_without_retry_after_waits_for_the_spent_quotas_reset() -> None:
    """A 429 that says only when its quota resets (X-RateLimit-Reset as a Unix time, or the
    IETF RateLimit fields) is retried after that reset, not after a blind backoff."""
    from sched_accel._policy._retry import refusal_wait

    now = 1_700_000_000.0
    github = {"X-RateLimit-Limit": "60", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(int(now) + 12)}
    assert refusal_wait(github, now=now) == pytest.approx(12)
    ietf = {"RateLimit-Policy": '"default";q=100;w=60', "RateLimit": '"default";r=0;t=7'}
    assert refusal_wait(ietf, now=now) == 7
    assert refusal_wait({"Retry-After": "3", **ietf}, now=now) == 3  # Retry-After first
    assert refusal_wait({**github, "X-RateLimit-Remaining": "5"}, now=now) is None  # budget left: not the quota
    assert refusal_wait({"X-RateLimit-Reset": str(int(now) + 10**6)}, now=now) is None  # too far: not believed
    assert refusal_wait({"RateLimit": '"d";r=0;t=600'}, now=now, maximum=300) == 300
    assert refusal_wait({}, now=now) is None and refusal_wait(None) is None


def test_classify_reads_the_quota_reset_of_a_429() -> None:
    import httpx

    response = httpx.Response(
        429, headers={"RateLimit": '"default";r=0;t=4'}, request=httpx.Request("GET", "http://h/")
    )
    failure = classify(httpx.HTTPStatusError("429", request=response.request, response=response))
    assert failure is not None and failure.kind == "rate_limited" and failure.retry_after == 4
