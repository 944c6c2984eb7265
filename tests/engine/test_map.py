"""_map.py: the public bounded, ordered, streaming concurrent map (map and amap)."""

from __future__ import annotations

import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import anyio
import pytest

import sched_accel
from sched_accel._engine import ideal_seconds


class Peak:
    """Counts calls in progress and the peak number at once (thread-safe)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.now = 0
        self.peak = 0
        self.calls: list[Any] = []

    def enter(self, item: Any) -> None:
        with self.lock:
            self.calls.append(item)
            self.now += 1
            self.peak = max(self.peak, self.now)

    def leave(self) -> None:
        with self.lock:
            self.now -= 1


class Source:
    """A generator of ``n`` items that counts how many were pulled from it."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.pulled = 0

    def __iter__(self) -> Iterator[int]:
        for index in range(self.n):
            self.pulled += 1
            yield index


def reversed_latency(n: int, unit: float = 0.002) -> Callable[[int], float]:
    """Later items answer sooner, so that completion order is the reverse of input order."""
    return lambda item: (n - item) * unit


def stop_threads(prefix: str = "sched_accel-map", timeout: float = 5) -> None:
    """Wait until the map's worker threads have ended."""
    deadline = time.monotonic() + timeout
    for thread in threading.enumerate():
        if thread.name.startswith(prefix):
            thread.join(max(0.0, deadline - time.monotonic()))


# -- map (threads) ------------------------------------------------------------------------


def test_map_yields_results_in_input_order() -> None:
    """map yields fn(item) in input order even when later items finish first."""
    latency = reversed_latency(20)

    def fn(item: int) -> int:
        time.sleep(latency(item))
        return item * 10

    assert list(sched_accel.map(fn, range(20), concurrency=8)) == [i * 10 for i in range(20)]


def test_map_bounds_concurrency() -> None:
    """No more than ``concurrency`` calls run at once, and the bound is reached."""
    peak = Peak()

    def fn(item: int) -> int:
        peak.enter(item)
        time.sleep(0.01)
        peak.leave()
        return item

    assert list(sched_accel.map(fn, range(40), concurrency=4)) == list(range(40))
    assert peak.peak == 4
    assert sorted(peak.calls) == list(range(40))


def test_map_consumes_a_generator_lazily() -> None:
    """The input is never read more than ``window`` items ahead of what the consumer took."""
    source = Source(50)
    ahead: list[int] = []
    for taken, value in enumerate(sched_accel.map(lambda i: i, iter(source), concurrency=2, window=5), start=1):
        assert value == taken - 1
        ahead.append(source.pulled - taken)
        time.sleep(0.001)
    assert max(ahead) <= 5
    assert source.pulled == 50


def test_map_does_not_read_the_input_before_it_is_iterated() -> None:
    """Calling map reads nothing: the first item is pulled when the first result is asked for."""
    source = Source(10)
    results = sched_accel.map(lambda i: i, iter(source), concurrency=2)
    assert source.pulled == 0
    assert next(results) == 0
    results.close()  # type: ignore[attr-defined]


def test_map_raises_an_items_exception_at_its_place() -> None:
    """The results before a failed item arrive; its exception is raised where its result would be."""

    def fn(item: int) -> int:
        if item == 5:
            raise LookupError(f"no item {item}")
        return item

    seen: list[int] = []
    with pytest.raises(LookupError, match="no item 5"):
        for value in sched_accel.map(fn, range(100), concurrency=3, window=6):
            seen.append(value)
    assert seen == [0, 1, 2, 3, 4]


def test_map_stops_starting_items_after_a_failure() -> None:
    """After the exception reaches the consumer, items not yet started are never started."""
    peak = Peak()

    def fn(item: int) -> int:
        peak.enter(item)
        time.sleep(0.002)
        peak.leave()
        if item == 5:
            raise LookupError(item)
        return item

    with pytest.raises(LookupError):
        list(sched_accel.map(fn, range(100), concurrency=2, window=4))
    stop_threads()
    started = len(peak.calls)
    # Items 0..5, and at most what the window had queued behind the failure.
    assert started <= 6 + 4
    time.sleep(0.05)
    assert len(peak.calls) == started


def test_map_stops_starting_items_when_the_consumer_stops() -> None:
    """Closing the result iterator early leaves the rest of the input unread and unstarted."""
    source = Source(1000)
    peak = Peak()

    def fn(item: int) -> int:
        peak.enter(item)
        time.sleep(0.001)
        peak.leave()
        return item

    results = sched_accel.map(fn, iter(source), concurrency=4, window=8)
    for value in results:
        if value == 10:
            break
    results.close()  # type: ignore[attr-defined]
    stop_threads()
    started = len(peak.calls)
    assert source.pulled <= 11 + 8
    assert started <= source.pulled
    time.sleep(0.05)
    assert len(peak.calls) == started


def test_map_timeout_raises_timeout_error() -> None:
    """A call that takes longer than ``timeout`` raises TimeoutError at its place."""
    release = threading.Event()

    def fn(item: int) -> int:
        if item == 2:
            release.wait(10)
        return item

    seen: list[int] = []
    try:
        with pytest.raises(TimeoutError):
            for value in sched_accel.map(fn, range(5), concurrency=2, timeout=0.05):
                seen.append(value)
    finally:
        release.set()
    assert seen == [0, 1]


def test_map_runs_in_worker_threads() -> None:
    """The calls run in worker threads, never in the consumer's thread."""
    threads = list(sched_accel.map(lambda _: threading.get_ident(), range(8), concurrency=2))
    assert threading.get_ident() not in threads


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"concurrency": 0}, "concurrency"),
        ({"concurrency": -1}, "concurrency"),
        ({"concurrency": 2, "window": -1}, "window"),
        ({"concurrency": 2, "window": 0}, "window"),
        ({"concurrency": 2, "timeout": 0}, "timeout"),
        ({"concurrency": 2, "timeout": float("nan")}, "timeout"),
        ({"concurrency": True}, "concurrency"),
    ],
)
def test_map_rejects_non_positive_limits(kwargs: dict[str, Any], name: str) -> None:
    """Non-positive limits raise ValueError naming the argument, at the call, before any work."""
    source = Source(3)
    with pytest.raises(ValueError, match=f"^{name} must be a positive number"):
        sched_accel.map(lambda i: i, iter(source), **kwargs)
    assert source.pulled == 0


def test_map_of_nothing_is_empty() -> None:
    """An empty input yields nothing."""
    assert list(sched_accel.map(lambda i: i, [], concurrency=3)) == []


def test_ideal_seconds_rounds_batches_up() -> None:
    """ideal = ceil(N / C) * L."""
    assert ideal_seconds(70, 0.2, 8) == pytest.approx(9 * 0.2)


# -- amap (anyio tasks) -------------------------------------------------------------------


async def collect(results: AsyncIterator[Any], into: list[Any] | None = None) -> list[Any]:
    """Every result of an amap, in the order they are yielded."""
    out = [] if into is None else into
    async for value in results:
        out.append(value)
    return out


@pytest.mark.anyio
async def test_amap_yields_results_in_input_order() -> None:
    """amap yields await fn(item) in input order even when later items finish first."""
    latency = reversed_latency(20)

    async def fn(item: int) -> int:
        await anyio.sleep(latency(item))
        return item * 10

    async with sched_accel.amap(fn, range(20), concurrency=8) as results:
        assert await collect(results) == [i * 10 for i in range(20)]


@pytest.mark.anyio
async def test_amap_bounds_concurrency() -> None:
    """No more than ``concurrency`` calls are awaited at once, and the bound is reached."""
    peak = Peak()

    async def fn(item: int) -> int:
        peak.enter(item)
        await anyio.sleep(0.005)
        peak.leave()
        return item

    async with sched_accel.amap(fn, range(40), concurrency=4) as results:
        assert await collect(results) == list(range(40))
    assert peak.peak == 4


@pytest.mark.anyio
async def test_amap_runs_in_the_callers_event_loop_thread() -> None:
    """The calls are tasks on the running event loop, in its thread."""

    async def fn(item: int) -> int:
        return threading.get_ident()

    async with sched_accel.amap(fn, range(5), concurrency=2) as results:
        assert set(await collect(results)) == {threading.get_ident()}


@pytest.mark.anyio
async def test_amap_consumes_a_generator_lazily() -> None:
    """The input is never read more than ``window`` items ahead of what the consumer took."""
    source = Source(50)
    ahead: list[int] = []

    async def fn(item: int) -> int:
        await anyio.sleep(0)
        return item

    async with sched_accel.amap(fn, iter(source), concurrency=2, window=5) as results:
        taken = 0
        async for value in results:
            taken += 1
            assert value == taken - 1
            ahead.append(source.pulled - taken)
            await anyio.sleep(0.001)
    assert max(ahead) <= 5
    assert source.pulled == 50


@pytest.mark.anyio
async def test_amap_raises_an_items_exception_at_its_place() -> None:
    """The exception of a failed item is raised as itself (never an ExceptionGroup) at its place."""

    async def fn(item: int) -> int:
        await anyio.sleep(0.001)
        if item == 5:
            raise LookupError(f"no item {item}")
        return item

    seen: list[int] = []
    with pytest.raises(LookupError, match="no item 5"):
        async with sched_accel.amap(fn, range(100), concurrency=3, window=6) as results:
            await collect(results, seen)
    assert seen == [0, 1, 2, 3, 4]


@pytest.mark.anyio
async def test_amap_consumers_own_exception_passes_through() -> None:
    """An exception raised by the consumer's own code leaves amap as itself."""

    async def fn(item: int) -> int:
        return item

    with pytest.raises(KeyError, match="mine"):
        async with sched_accel.amap(fn, range(10), concurrency=2) as results:
            async for value in results:
                if value == 3:
                    raise KeyError("mine")


@pytest.mark.anyio
async def test_amap_stops_starting_items_when_the_consumer_stops() -> None:
    """Leaving the ``async with`` early cancels what runs and starts nothing more."""
    source = Source(1000)
    peak = Peak()

    async def fn(item: int) -> int:
        peak.enter(item)
        try:
            await anyio.sleep(0.001)
        finally:
            peak.leave()
        return item

    async with sched_accel.amap(fn, iter(source), concurrency=4, window=8) as results:
        async for value in results:
            if value == 10:
                break
    started = len(peak.calls)
    assert peak.now == 0
    assert source.pulled <= 11 + 8
    await anyio.sleep(0.02)
    assert len(peak.calls) == started


@pytest.mark.anyio
async def test_amap_stops_starting_items_after_a_failure() -> None:
    """After an item's exception, no further item is started."""
    peak = Peak()

    async def fn(item: int) -> int:
        peak.enter(item)
        try:
            await anyio.sleep(0.001)
        finally:
            peak.leave()
        if item == 5:
            raise LookupError(item)
        return item

    with pytest.raises(LookupError):
        async with sched_accel.amap(fn, range(100), concurrency=2, window=4) as results:
            await collect(results)
    started = len(peak.calls)
    assert started <= 6 + 4
    await anyio.sleep(0.02)
    assert len(peak.calls) == started


@pytest.mark.anyio
async def test_amap_timeout_raises_timeout_error() -> None:
    """A call that takes longer than ``timeout`` raises TimeoutError (itself) at its place."""

    async def fn(item: int) -> int:
        if item == 2:
            await anyio.sleep(10)
        return item

    seen: list[int] = []
    with anyio.fail_after(5):
        with pytest.raises(TimeoutError):
            async with sched_accel.amap(fn, range(5), concurrency=2, timeout=0.05) as results:
                await collect(results, seen)
    assert seen == [0, 1]


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"concurrency": 0}, "concurrency"),
        ({"concurrency": 2, "window": -1}, "window"),
        ({"concurrency": 2, "timeout": 0}, "timeout"),
    ],
)
async def test_amap_rejects_non_positive_limits(kwargs: dict[str, Any], name: str) -> None:
    """Non-positive limits raise ValueError naming the argument, before any work."""

    async def fn(item: int) -> int:
        raise AssertionError("must not run")

    with pytest.raises(ValueError, match=f"^{name} must be a positive number"):
        async with sched_accel.amap(fn, range(3), **kwargs):
            pass
