"""The legacy job the benchmarks accelerate: sequential loops, as they are found in the field.

sched_accel patches these through its whole path (``install()`` with the config in
``_bench.CONFIG``: wrapt wrappers on the loop and on its per-item call, the switch, the
prefetch run); the plain rows call the very same functions with nothing installed.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

import httpx


class Api:
    """A blocking API client, one GET per item (``fresh``: on a new client each time, as
    legacy code often does: each costs an SSL context and a connection)."""

    def __init__(self, http: httpx.Client, *, fresh: bool = False, cpu: float = 0.0) -> None:
        self.http = http
        self.fresh = fresh
        self.cpu = cpu  # seconds of CPU each call spends on its answer (scoring it, say)

    def get_item(self, item: int) -> Any:
        if self.fresh:
            with httpx.Client(base_url=self.http.base_url, timeout=self.http.timeout) as http:
                response = http.get(f"/item/{item}")
        else:
            response = self.http.get(f"/item/{item}")
        response.raise_for_status()
        if self.cpu:
            burn(self.cpu)
        return response.json()


def burn(seconds: float) -> None:
    """Spend ``seconds`` of this thread's CPU."""
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass


class AsyncApi:
    """The same client on httpx.AsyncClient."""

    def __init__(self, http: httpx.AsyncClient, *, fresh: bool = False) -> None:
        self.http = http
        self.fresh = fresh

    async def get_item(self, item: int) -> Any:
        if self.fresh:
            async with httpx.AsyncClient(base_url=self.http.base_url, timeout=self.http.timeout) as http:
                response = await http.get(f"/item/{item}")
        else:
            response = await self.http.get(f"/item/{item}")
        response.raise_for_status()
        return response.json()


def fetch_all(items: Iterable[int], api: Api) -> list[Any]:
    """The sync loop: fetch each item, one after the other."""
    results = []
    for item in items:
        results.append(api.get_item(item))
    return results


async def afetch_all(items: Iterable[int], api: AsyncApi) -> list[Any]:
    """The async loop: await each item, one after the other."""
    results = []
    for item in items:
        results.append(await api.get_item(item))
    return results


def trivial(item: int) -> int:
    """A per-item call that returns at once."""
    return item


async def atrivial(item: int) -> int:
    """An async per-item call that returns at once."""
    return item


def trivial_loop(items: Iterable[int]) -> int:
    """Calls ``trivial`` for each item and keeps nothing but a sum (memory stays flat)."""
    total = 0
    for item in items:
        total += trivial(item)
    return total


async def atrivial_loop(items: Iterable[int]) -> int:
    """The async twin of ``trivial_loop``."""
    total = 0
    for item in items:
        total += await atrivial(item)
    return total


def check_urls(urls: Iterable[str], http: httpx.Client) -> list[tuple[str, Any]]:
    """A URL checker's loop (url_health's shape, after derrekyoung/url-checker-python): each
    URL's status code, or the name of the error that stopped its request."""
    results: list[tuple[str, Any]] = []
    for url in urls:
        try:
            results.append((url, http.get(url).status_code))
        except httpx.TransportError as exc:
            results.append((url, type(exc).__name__))
    return results


def soak_loop(run: int, keys: Iterable[str], http: httpx.Client) -> list[Any]:
    """The soak's loop: each key's status for this run, or "timeout" for an answer that hung."""
    results: list[Any] = []
    for key in keys:
        try:
            results.append(http.get(f"/item/{key}", params={"run": run}).status_code)
        except httpx.TimeoutException:
            results.append("timeout")
    return results
