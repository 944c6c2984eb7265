"""The contenders: sched_accel through its whole patched path, and the peers a user would pick.

Each contender runs one job (HTTP calls, or trivial calls) over ``items`` at concurrency
``c`` and returns a :class:`~_harness.Measure` of the timed part only: clients and event
loops are made before the clock starts, connections are opened inside it, as in real use.
Sync contenders use ``httpx.Client``, async ones ``httpx.AsyncClient``.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import httpcore
import httpx
import legacy_jobs
from _harness import Measure, clocks, last_run_note, patched

Contender = Callable[["Job", Sequence[int], int], Measure]


class _MemoryPool:
    """httpcore's pool, answering at once from memory: httpx's own work (and ours, in its
    transport layer), without a socket or a server."""

    def handle_request(self, request: Any) -> Any:
        return httpcore.Response(200, headers=_MEMORY_HEADERS, content=b'{"value": 1}')

    async def handle_async_request(self, request: Any) -> Any:
        return httpcore.Response(200, headers=_MEMORY_HEADERS, content=b'{"value": 1}')

    def close(self) -> None:
        pass

    async def aclose(self) -> None:
        pass

    def __enter__(self) -> _MemoryPool:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    async def __aenter__(self) -> _MemoryPool:
        return self

    async def __aexit__(self, *exc: object) -> None:
        pass


_MEMORY_HEADERS = [(b"content-type", b"application/json"), (b"content-length", b"12")]


class Job:
    """What the loop does per item: its client, its sync and async loop and per-item call.
    ``memory``: the client's transport answers from memory (``url`` is only its name)."""

    def __init__(self, url: str | None, *, memory: bool = False, cpu: float = 0.0) -> None:
        self.url = url
        self.memory = memory
        self.cpu = cpu  # seconds of CPU each sync per-item call spends on its answer

    def _transport(self, kind: Any) -> Any:
        if not self.memory:
            return None
        transport = kind()
        transport._pool = _MemoryPool()
        return transport

    @contextmanager
    def client(self) -> Iterator[Any]:
        if self.url is None:
            yield None
            return
        with httpx.Client(base_url=self.url, timeout=120, transport=self._transport(httpx.HTTPTransport)) as http:
            yield legacy_jobs.Api(http, cpu=self.cpu)

    @asynccontextmanager
    async def aclient(self) -> AsyncIterator[Any]:
        if self.url is None:
            yield None
            return
        async with httpx.AsyncClient(
            base_url=self.url, timeout=120, transport=self._transport(httpx.AsyncHTTPTransport)
        ) as http:
            yield legacy_jobs.AsyncApi(http)

    def loop(self, items: Sequence[int], api: Any) -> Any:
        return legacy_jobs.trivial_loop(items) if api is None else legacy_jobs.fetch_all(items, api)

    async def aloop(self, items: Sequence[int], api: Any) -> Any:
        return await (legacy_jobs.atrivial_loop(items) if api is None else legacy_jobs.afetch_all(items, api))

    def fn(self, api: Any) -> Callable[[int], Any]:
        return legacy_jobs.trivial if api is None else api.get_item

    def afn(self, api: Any) -> Callable[[int], Awaitable[Any]]:
        return legacy_jobs.atrivial if api is None else api.get_item


def _drain(results: Any) -> None:
    collections.deque(results, maxlen=0)


# -- the legacy loop, plain and patched ---------------------------------------------------------
def sequential(job: Job, items: Sequence[int], c: int) -> Measure:
    """The legacy sync loop, nothing installed."""
    with job.client() as api, clocks() as measure:
        job.loop(items, api)
    return measure


def sequential_async(job: Job, items: Sequence[int], c: int) -> Measure:
    """The legacy async loop, nothing installed."""

    async def main() -> Measure:
        async with job.aclient() as api:
            with clocks() as measure:
                await job.aloop(items, api)
        return measure

    return asyncio.run(main())


def sched_accel_sync(
    variant: str = "default", window: int | None = None, *, http: bool = False, shadow: bool = False
) -> Contender:
    """The legacy sync loop, patched by ``sched_accel.install()`` (prefetch mode; ``http``:
    its requests prefetched instead of its per-item method)."""

    def run(job: Job, items: Sequence[int], c: int) -> Measure:
        with patched(c, variant, window, http=http, shadow=shadow):
            measure = sequential(job, items, c)
        measure.note = last_run_note()
        return measure

    return run


def sched_accel_async(
    variant: str = "default", window: int | None = None, *, http: bool = False, shadow: bool = False
) -> Contender:
    """The legacy async loop, patched by ``sched_accel.install()`` (prefetch mode; ``http``:
    its requests prefetched instead of its per-item method)."""

    def run(job: Job, items: Sequence[int], c: int) -> Measure:
        with patched(c, variant, window, http=http, shadow=shadow):
            measure = sequential_async(job, items, c)
        measure.note = last_run_note()
        return measure

    return run


# -- the peers ----------------------------------------------------------------------------------
def thread_pool_map(job: Job, items: Sequence[int], c: int) -> Measure:
    """``ThreadPoolExecutor(c).map``: submits every item up front."""
    with job.client() as api, clocks() as measure:
        with ThreadPoolExecutor(c) as pool:
            _drain(pool.map(job.fn(api), items))
    return measure


def batches(job: Job, items: Sequence[int], c: int) -> Measure:
    """A ThreadPoolExecutor per batch of ``c`` items, each batch waited for as a whole."""
    with job.client() as api, clocks() as measure:
        fn = job.fn(api)
        source = iter(items)
        while batch := list(itertools.islice(source, c)):
            with ThreadPoolExecutor(c) as pool:
                _drain(pool.map(fn, batch))
    return measure


def gather_semaphore(job: Job, items: Sequence[int], c: int) -> Measure:
    """``asyncio.gather`` of one coroutine per item, ``c`` at a time under a Semaphore."""

    async def main() -> Measure:
        async with job.aclient() as api:
            afn = job.afn(api)
            with clocks() as measure:
                semaphore = asyncio.Semaphore(c)

                async def one(item: int) -> Any:
                    async with semaphore:
                        return await afn(item)

                await asyncio.gather(*(one(item) for item in items))
        return measure

    return asyncio.run(main())


def aiometer_amap(job: Job, items: Sequence[int], c: int) -> Measure:
    """``aiometer.amap(fn, items, max_at_once=c)``, results consumed as they come."""
    import aiometer

    async def main() -> Measure:
        async with job.aclient() as api:
            afn = job.afn(api)
            with clocks() as measure:
                async with aiometer.amap(afn, items, max_at_once=c) as results:
                    async for _ in results:
                        pass
        return measure

    return asyncio.run(main())


def sched_accel_map(job: Job, items: Sequence[int], c: int) -> Measure:
    """The public engine, ``sched_accel.map`` (replace-mode authors' tool), for reference."""
    import sched_accel

    with job.client() as api, clocks() as measure:
        _drain(sched_accel.map(job.fn(api), items, concurrency=c))
    return measure


SYNC_PEERS: dict[str, Contender] = {
    "ThreadPoolExecutor.map": thread_pool_map,
    "batches of C (thread pool)": batches,
}
ASYNC_PEERS: dict[str, Contender] = {
    "asyncio.gather + Semaphore": gather_semaphore,
    "aiometer.amap": aiometer_amap,
}
