"""_headers.py: what an answer's headers say about the host's rate limit (pure parsing, no clock)."""

from __future__ import annotations

import email.message
import math
import time
from datetime import UTC, datetime
from email.utils import format_datetime

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sched_accel._policy._headers import MAX_COUNT, MAX_SECONDS, Budget, budget, spread

NOW = 1_717_243_200.0  # 2024-06-01 12:00:00 UTC, the local clock in these tests


def http_date(unix: float) -> str:
    """``unix`` as an IMF-fixdate, as servers write ``Date`` and ``Retry-After``."""
    return format_datetime(datetime.fromtimestamp(unix, UTC), usegmt=True)


# -- Retry-After ---------------------------------------------------------------------


@pytest.mark.parametrize(("value", "seconds"), [("120", 120.0), ("0.25", 0.25), (" 3 ", 3.0), ("0", 0.0)])
def test_retry_after_seconds(value: str, seconds: float) -> None:
    """Delay-seconds, fractional ones too, are read as they are, alone: source retry-after."""
    assert budget({"Retry-After": value}, now=NOW) == Budget(source="retry-after", retry_after=seconds)


def test_retry_after_date_against_the_answers_date() -> None:
    """An HTTP-date is measured against the answer's Date (server clock 1 h ahead of ours)."""
    server = NOW + 3600
    headers = {"Date": http_date(server), "Retry-After": http_date(server + 30)}
    assert budget(headers, now=NOW) == Budget(source="retry-after", retry_after=30.0)


def test_retry_after_date_without_date_uses_now() -> None:
    """Without a Date header, an HTTP-date is measured against ``now``; a past one is 0."""
    assert budget({"retry-after": http_date(NOW + 45)}, now=NOW) == Budget(source="retry-after", retry_after=45.0)
    assert budget({"retry-after": http_date(NOW - 45)}, now=NOW) == Budget(source="retry-after", retry_after=0.0)


@pytest.mark.parametrize("value", ["-1", "soon", "1e3", "nan", "inf", "86401", "", "0x10", "١٢"])
def test_retry_after_garbage_is_ignored(value: str) -> None:
    """Negative, non-decimal, over-a-day or non-ASCII-digit Retry-After says nothing."""
    assert budget({"Retry-After": value}, now=NOW) is None


def test_retry_after_wins_over_an_earlier_reset() -> None:
    """With RateLimit too, Retry-After takes precedence: the window is not reset before it."""
    found = budget({"RateLimit": '"default";r=0;t=10', "Retry-After": "30"}, now=NOW)
    assert found == Budget(remaining=0, reset=30.0, source="ratelimit", retry_after=30.0)


# -- the IETF fields -----------------------------------------------------------------


def test_cloudflare_structured_fields() -> None:
    """Cloudflare's API: RateLimit and RateLimit-Policy items (draft-08+), names matched."""
    headers = {"ratelimit": '"default";r=50;t=30', "ratelimit-policy": '"default";q=100;w=60'}
    found = budget(headers, now=NOW)
    assert found == Budget(limit=100, remaining=50, reset=30.0, window=60.0, source="ratelimit")
    assert spread(found) == pytest.approx(0.6)


def test_single_items_pair_up_whatever_their_names() -> None:
    """One RateLimit item and one policy are the same policy, even named differently."""
    headers = {"RateLimit": '"default";r=50;t=30', "RateLimit-Policy": '"burst";q=100;w=60'}
    assert budget(headers, now=NOW) == Budget(limit=100, remaining=50, reset=30.0, window=60.0, source="ratelimit")


def test_several_policies_the_binding_one_is_read() -> None:
    """Of several policies, the one leaving the longest interval between requests is read."""
    headers = [
        ("RateLimit-Policy", '"permin";q=50;w=60, "perhr";q=1000;w=3600'),
        ("RateLimit", '"permin";r=40;t=20'),
        ("RateLimit", '"perhr";r=10;t=3000;pk=:cHsdsRa894==:'),  # split over two fields (RFC 8941)
    ]
    found = budget(headers, now=NOW)
    assert found == Budget(limit=1000, remaining=10, reset=3000.0, window=3600.0, source="ratelimit")
    assert spread(found) == 300.0


def test_policy_alone_gives_the_steady_rate() -> None:
    """RateLimit-Policy alone: the lowest-rate policy; spread is window / limit."""
    headers = {"RateLimit-Policy": '"burst";q=100;w=60, "daily";q=1000;w=86400;qu="requests"'}
    found = budget(headers, now=NOW)
    assert found == Budget(limit=1000, window=86400.0, source="ratelimit")
    assert spread(found) == pytest.approx(86.4)


def test_draft_07_dictionary_and_policy() -> None:
    """Draft-07: ``RateLimit: limit=100, remaining=50, reset=5`` with ``RateLimit-Policy: 100;w=10``."""
    message = email.message.Message()  # urllib's headers
    message["RateLimit"] = "limit=100, remaining=50, reset=5"
    message["RateLimit-Policy"] = "10;w=1, 100;w=10"
    assert budget(message, now=NOW) == Budget(limit=100, remaining=50, reset=5.0, window=10.0, source="ratelimit")


def test_draft_06_separate_fields() -> None:
    """The older separate fields, windowed from the old-form RateLimit-Policy."""
    headers = {
        "RateLimit-Limit": "10",
        "RateLimit-Remaining": "3",
        "RateLimit-Reset": "7",
        "RateLimit-Policy": "10;w=1, 50;w=60",
    }
    found = budget(headers, now=NOW)
    assert found == Budget(limit=10, remaining=3, reset=7.0, window=1.0, source="ratelimit-legacy")
    assert spread(found) == pytest.approx(7 / 3)


def test_draft_03_limit_with_its_policy_and_gitlab_epoch_reset() -> None:
    """``RateLimit-Limit: 60, 60;w=60``; GitLab sends RateLimit-Reset as a Unix time."""
    headers = {"RateLimit-Limit": "60, 60;w=60", "RateLimit-Remaining": "0", "RateLimit-Reset": str(int(NOW) + 40)}
    assert budget(headers, now=NOW) == Budget(limit=60, remaining=0, reset=40.0, window=60.0, source="ratelimit-legacy")


# -- X-RateLimit ---------------------------------------------------------------------


def test_github_epoch_reset() -> None:
    """GitHub: x-ratelimit-reset is a Unix time, measured against the answer's Date."""
    headers = {
        "date": http_date(NOW),
        "x-ratelimit-limit": "5000",
        "x-ratelimit-remaining": "4999",
        "x-ratelimit-used": "1",
        "x-ratelimit-reset": str(int(NOW) + 3600),
        "x-ratelimit-resource": "core",
    }
    found = budget(headers, now=NOW + 5)  # our clock is off; the server's Date is what counts
    assert found == Budget(limit=5000, remaining=4999, reset=3600.0, source="x-ratelimit")
    assert spread(found) == pytest.approx(3600 / 4999)


def test_twitter_spelling() -> None:
    """Twitter/X: x-rate-limit-* with a Unix-time reset, against ``now`` when there is no Date."""
    headers = {"x-rate-limit-limit": "900", "x-rate-limit-remaining": "847", "x-rate-limit-reset": str(int(NOW) + 600)}
    assert budget(headers, now=NOW) == Budget(limit=900, remaining=847, reset=600.0, source="x-ratelimit")


def test_discord_reset_after_preferred() -> None:
    """Discord: X-RateLimit-Reset-After (seconds, no clock) is preferred to its Unix-time Reset."""
    headers = {
        "X-RateLimit-Limit": "5",
        "X-RateLimit-Remaining": "1",
        "X-RateLimit-Reset": "1470173023.123",
        "X-RateLimit-Reset-After": "1.2",
    }
    assert budget(headers, now=NOW) == Budget(limit=5, remaining=1, reset=1.2, source="x-ratelimit")


def test_openai_requests_suffix_and_durations() -> None:
    """OpenAI: x-ratelimit-*-requests, the reset a duration such as 6m0s or 20ms."""
    headers = {
        "x-ratelimit-limit-requests": "60",
        "x-ratelimit-remaining-requests": "59",
        "x-ratelimit-reset-requests": "6m0s",
    }
    assert budget(headers, now=NOW) == Budget(limit=60, remaining=59, reset=360.0, source="x-ratelimit")
    assert budget({"x-ratelimit-reset-requests": "20ms"}, now=NOW) == Budget(reset=0.02, source="x-ratelimit")
    assert budget({"x-ratelimit-reset-requests": "1h0m1.5s"}, now=NOW) == Budget(reset=3601.5, source="x-ratelimit")


def test_envoy_limit_with_window() -> None:
    """Envoy (draft-03 headers): ``X-RateLimit-Limit: 10, 10;w=60`` gives the window."""
    headers = {"X-RateLimit-Limit": "10, 10;w=60", "X-RateLimit-Remaining": "3", "X-RateLimit-Reset": "20"}
    assert budget(headers, now=NOW) == Budget(limit=10, remaining=3, reset=20.0, window=60.0, source="x-ratelimit")


def test_http_date_reset() -> None:
    """Some APIs (MailerLite) send X-RateLimit-Reset as an HTTP-date."""
    headers = {"Date": http_date(NOW), "X-RateLimit-Reset": http_date(NOW + 90)}
    assert budget(headers, now=0.0) == Budget(reset=90.0, source="x-ratelimit")


# -- seconds, epochs, skew -----------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "reset"),
    [
        ("30", 30.0),  # seconds
        ("0.5", 0.5),
        ("86400", 86400.0),  # a day: still seconds
        (str(int(NOW) + 30), 30.0),  # Unix time, seconds
        (f"{NOW + 30.5:.3f}", 30.5),  # Unix time with a fraction (Discord)
        (str(int(NOW * 1000) + 2500), 2.5),  # Unix time, milliseconds
        (str(int(NOW) - 100), 0.0),  # a moment past: reset now
        (str(int(NOW * 1000) - 100), 0.0),
        ("500000", None),  # more than a day of seconds, less than a plausible epoch
        (str(int(NOW) + 2 * 86400), None),  # more than a day away
        ("1" + "0" * 15, None),  # past any millisecond epoch
    ],
)
def test_seconds_or_epoch(value: str, reset: float | None) -> None:
    """A reset is seconds up to a day, a Unix time from 10**9, in milliseconds from 10**12."""
    found = budget({"X-RateLimit-Reset": value, "X-RateLimit-Remaining": "9"}, now=NOW)
    assert found is not None
    assert found.reset == (None if reset is None else pytest.approx(reset))


def test_skewed_date_server_an_hour_ahead() -> None:
    """Server clock 1 h ahead: the reset comes from the answer's Date, not from our clock."""
    server = NOW + 3600
    headers = {"Date": http_date(server), "X-RateLimit-Remaining": "10", "X-RateLimit-Reset": str(int(server) + 30)}
    assert budget(headers, now=NOW) == Budget(remaining=10, reset=30.0, source="x-ratelimit")
    del headers["Date"]
    assert budget(headers, now=NOW) == Budget(remaining=10, reset=3630.0, source="x-ratelimit")  # what our clock says


def test_an_invalid_date_falls_back_to_now() -> None:
    """A Date header that is not a date is ignored: ``now`` is the base."""
    headers = {"Date": "yesterday", "X-RateLimit-Reset": str(int(NOW) + 12)}
    assert budget(headers, now=NOW) == Budget(reset=12.0, source="x-ratelimit")


# -- precedence ----------------------------------------------------------------------


def test_precedence_when_several_forms_are_present() -> None:
    """RateLimit beats RateLimit-Limit/Remaining/Reset, which beat X-RateLimit; fields do not mix."""
    ietf = {"RateLimit": '"default";r=5;t=10'}
    legacy = {"RateLimit-Limit": "100", "RateLimit-Remaining": "50", "RateLimit-Reset": "20"}
    common = {"X-RateLimit-Limit": "1000", "X-RateLimit-Remaining": "500", "X-RateLimit-Reset": "30"}
    assert budget({**common, **legacy, **ietf}, now=NOW) == Budget(remaining=5, reset=10.0, source="ratelimit")
    assert budget({**common, **legacy}, now=NOW) == Budget(
        limit=100, remaining=50, reset=20.0, source="ratelimit-legacy"
    )
    found = budget({**common, "RateLimit": "garbage"}, now=NOW)
    assert found == Budget(limit=1000, remaining=500, reset=30.0, source="x-ratelimit")


def test_old_policy_windows_the_separate_fields() -> None:
    """RateLimit-Policy in the old form beside the separate fields windows them (drafts 05-06)."""
    headers = {"RateLimit-Policy": "100;w=60", "RateLimit-Limit": "100", "RateLimit-Remaining": "1"}
    assert budget(headers, now=NOW) == Budget(limit=100, remaining=1, window=60.0, source="ratelimit-legacy")


# -- names, values, garbage ----------------------------------------------------------


def test_names_case_insensitive_and_values_whitespace_tolerant() -> None:
    """Header names in any case (and padded); values padded with whitespace."""
    headers = [(" X-RATELIMIT-LIMIT ", "  60 "), ("x-RateLimit-Remaining", "\t7"), ("X-Ratelimit-Reset", " 14 ")]
    assert budget(headers, now=NOW) == Budget(limit=60, remaining=7, reset=14.0, source="x-ratelimit")


def test_first_valid_value_of_several() -> None:
    """Of several values of one field, the first valid one; merged values (``a, b``) too."""
    pairs = [("x-ratelimit-remaining", "lots"), ("x-ratelimit-remaining", "5"), ("x-ratelimit-remaining", "6")]
    assert budget(pairs, now=NOW) == Budget(remaining=5, source="x-ratelimit")
    assert budget(httpx.Headers(pairs), now=NOW) == Budget(remaining=5, source="x-ratelimit")
    assert budget({"x-ratelimit-remaining": "lots, 5, 6"}, now=NOW) == Budget(remaining=5, source="x-ratelimit")


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Content-Type": "application/json"},
        {"X-RateLimit-Limit": "-5", "X-RateLimit-Remaining": "NaN", "X-RateLimit-Reset": "-30"},
        {"X-RateLimit-Limit": "0", "X-RateLimit-Remaining": str(MAX_COUNT + 1)},  # out of range
        {"X-RateLimit-Limit": "1_000", "X-RateLimit-Remaining": "12.5", "X-RateLimit-Reset": "1e3"},
        {"RateLimit": '"default";r=-1;t=abc', "RateLimit-Policy": '"default";q=-5;w=0'},
        {"RateLimit": 'limit=x, remaining="", reset=;', "RateLimit-Policy": ",,;;=="},
        {"RateLimit": '"unterminated;r=5', "Retry-After": "Fri, 99 Foo 2024 25:61:61 GMT"},
        {"X-RateLimit-Reset": "9" * 5000},  # too long to read
    ],
)
def test_garbage_says_nothing(headers: dict[str, str]) -> None:
    """Negative, non-numeric, out-of-range, malformed values are ignored: no budget, no raise."""
    assert budget(headers, now=NOW) is None


def test_one_bad_field_spares_the_others() -> None:
    """A bad field is that field alone ignored."""
    headers = {"X-RateLimit-Limit": "lots", "X-RateLimit-Remaining": "4", "X-RateLimit-Reset": "-1"}
    assert budget(headers, now=NOW) == Budget(remaining=4, source="x-ratelimit")


def test_not_headers_at_all() -> None:
    """Something that is not headers gives None, not an exception."""
    assert budget(42, now=NOW) is None  # type: ignore[arg-type]
    assert budget(["ab", ("only-one",), ("a", "b", "c"), (1, 2)], now=NOW) is None  # type: ignore[list-item]
    raw = [(b"X-RateLimit-Remaining", b"3")]  # httpx's Headers.raw
    assert budget(raw, now=NOW) == Budget(remaining=3, source="x-ratelimit")  # type: ignore[arg-type]


def test_default_now_is_the_system_clock() -> None:
    """Without ``now`` (and no Date), a Unix-time reset is measured against time.time()."""
    found = budget({"X-RateLimit-Reset": str(int(time.time()) + 100)})
    assert found is not None and found.reset is not None and 98 <= found.reset <= 100


# -- Budget and spread ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("limit", 0),
        ("remaining", -1),
        ("reset", MAX_SECONDS + 1),
        ("window", 0.0),
        ("retry_after", math.nan),
        ("source", "x"),
    ],
)
def test_budget_validates_its_fields(field: str, value: object) -> None:
    """A Budget out of bounds is refused, naming the field."""
    with pytest.raises(ValueError, match=field):
        Budget(**{"source": "ratelimit", field: value})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("found", "interval"),
    [
        (Budget(remaining=50, reset=30.0, source="ratelimit"), 0.6),
        (Budget(remaining=0, reset=30.0, source="ratelimit"), 30.0),  # none left: the next one at the reset
        (Budget(limit=100, window=10.0, source="ratelimit"), 0.1),
        (Budget(limit=100, remaining=5, source="ratelimit"), None),
        (Budget(source="retry-after", retry_after=3.0), None),
    ],
)
def test_spread(found: Budget, interval: float | None) -> None:
    """spread = reset / max(remaining, 1), else window / limit, else unknown."""
    assert spread(found) == (None if interval is None else pytest.approx(interval))


# -- fuzz ----------------------------------------------------------------------------

NAMES = [
    "Retry-After", "Date", "RateLimit", "RateLimit-Policy", "RateLimit-Limit", "RateLimit-Remaining",
    "RateLimit-Reset", "X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset",
    "X-RateLimit-Reset-After", "X-Rate-Limit-Reset", "x-ratelimit-reset-requests", "Other",
]  # fmt: skip
FRAGMENTS = st.sampled_from(
    ['"', "\\", ",", ";", "=", ":", " ", "-", ".", "r", "t", "q", "w", "limit", "remaining", "reset", "e",
     "0", "1", "9" * 10, "9" * 13, "9" * 16, "nan", "inf", "GMT", "Wed, 21 Oct 2015 07:28:00", "ms", "m", "s", "h"]
)  # fmt: skip
VALUES = st.one_of(st.text(max_size=60), st.lists(FRAGMENTS, max_size=20).map("".join))


@settings(max_examples=600, deadline=None)
@given(
    st.lists(st.tuples(st.one_of(st.sampled_from(NAMES), st.text(max_size=12)), VALUES), max_size=8),
    st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True)),
)
@pytest.mark.slow
def test_fuzz_never_raises_and_bounds_hold(pairs: list[tuple[str, str]], now: float | None) -> None:
    """Whatever the values, budget() returns None or a Budget within bounds, and spread() a finite number."""
    found = budget(pairs, now=now)
    if found is None:
        return
    assert found.limit is None or 1 <= found.limit <= MAX_COUNT
    assert found.remaining is None or 0 <= found.remaining <= MAX_COUNT
    for seconds in (found.reset, found.window, found.retry_after):
        assert seconds is None or 0 <= seconds <= MAX_SECONDS
    interval = spread(found)
    assert interval is None or (math.isfinite(interval) and interval >= 0)
