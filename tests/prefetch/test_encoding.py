"""How each client writes a value into a URL (``_encoding``), held against the clients
themselves: an f-string URL as httpx, requests and yarl (aiohttp) quote it, and their params."""

from __future__ import annotations

import os
import string
from typing import Any

import httpx
import pytest
import requests
import yarl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sched_accel._integrations import CLIENTS
from sched_accel._prefetch._encoding import encode, plain

TEXTS = st.text(
    alphabet=string.ascii_letters[:6] + string.digits[:3] + " -_.~+&=/?#%'!(),;:@$[]\"<>`{|}^\\éüß日本😀",
    min_size=1,
    max_size=10,
)
SETTINGS = settings(
    max_examples=int(os.environ.get("SCHED_ACCEL_EXAMPLES", "200")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


def sent(library: str, url: str, params: dict[str, Any] | None = None) -> str | None:
    """The URL the client sends for ``url`` (and ``params``), or None if it refuses it."""
    try:
        if library == "httpx":
            return str(httpx.Request("GET", url, params=params).url)
        if library == "requests":
            return str(requests.Request("GET", url, params=params).prepare().url)
        made = yarl.URL(url)
        return str(made.extend_query(params) if params else made)
    except Exception:
        return None


@pytest.mark.parametrize("library", ["httpx", "requests", "aiohttp"])
@SETTINGS
@given(text=TEXTS)
def test_a_value_written_into_the_url_is_quoted_as_the_client_quotes_it(library: str, text: str) -> None:
    """``raw``: the client's own quoting of a URL it is given, in a path segment and a query
    value; None only where that cannot be told (and then the client may refuse it too)."""
    for where, template in (("path", "http://h/item/{}/x"), ("query", "http://h/item?q={}&z=1")):
        encoded = encode(library, where, "raw", text)
        if encoded is not None:
            assert template.format(encoded) == sent(library, template.format(text))


@pytest.mark.parametrize("library", ["httpx", "requests", "aiohttp"])
@SETTINGS
@given(value=TEXTS | st.integers() | st.floats(allow_nan=False, allow_infinity=False))
def test_params_are_encoded_as_the_client_encodes_them(library: str, value: Any) -> None:
    """``params``: urlencode's ``quote_plus`` for requests, the installed httpx's own for httpx
    (0.27 writes a space ``%20``, 0.28 ``+``), yarl's for aiohttp, of the value's ``str``."""
    name = next(iter(CLIENTS[library].param_ways()), "quote_plus")  # httpx 0.28 on: as quote_plus
    encoded = encode(library, "query", name, str(value))
    assert encoded is not None and "http://h/item?q=" + encoded == sent(library, "http://h/item", {"q": value})


def test_plain_text_is_written_as_itself() -> None:
    """Letters, digits and ``-._~`` need no quoting by anyone."""
    assert plain("Vienna-1.5_~") and not plain("New York") and not plain("1e+20")
    assert all(
        encode(lib, where, name, "abc") == "abc"
        for lib in ("httpx", "urllib")
        for where in ("path", "query")
        for name in ("raw", "quote", "quote_all")
    )
    assert encode("httpx", "path", "raw", "50%") is None and encode("httpx", "query", "raw", "a#b") is None
