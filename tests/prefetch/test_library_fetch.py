"""An HTTP client library's own function is never a per-item ``fetch`` (``_purity.library_method``)."""

from __future__ import annotations

import functools
import http.client
import urllib.request
from collections.abc import Callable
from typing import Any

import aiohttp
import httpcore
import httpx
import pytest
import requests
import urllib3

from sched_accel._prefetch import library_method


def get_price(client: Any, token: str) -> Any:
    return client.get(f"/price/{token}").json()


@functools.wraps(httpx.get)
def wrapped_get(*args: Any, **kwargs: Any) -> Any:
    return httpx.get(*args, **kwargs)


@pytest.mark.parametrize(
    ("function", "library"),
    [
        (httpx.Client.get, "httpx"),
        (httpx.AsyncClient.get, "httpx"),
        (httpx.get, "httpx"),
        (requests.Session.get, "requests"),
        (requests.get, "requests"),
        (aiohttp.ClientSession.get, "aiohttp"),
        (urllib.request.urlopen, "urllib"),
        (urllib3.PoolManager.request, "urllib3"),
        (http.client.HTTPConnection.request, "http"),
        (httpcore.ConnectionPool.request, "httpcore"),
        (wrapped_get, "httpx"),  # behind functools.wraps: the library's own function still
    ],
)
def test_a_client_librarys_function_is_named(function: Callable[..., Any], library: str) -> None:
    """A function an HTTP client library defines is reported with the library and why it is never run ahead."""
    reason = library_method(function)
    assert reason is not None
    assert reason.startswith(f"is defined in {library} (")
    assert reason.endswith(
        "an HTTP client library: its instance is the client and its argument the URL, so it is never run ahead per item"
    )


@pytest.mark.parametrize("function", [get_price, len, functools.partial(get_price, None)])
def test_other_functions_are_not_library_methods(function: Callable[..., Any]) -> None:
    """The app's own per-item functions (and builtins, partials) are not a library's."""
    assert library_method(function) is None
