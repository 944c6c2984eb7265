"""``map`` and ``amap``: the engine's public face, a bounded, ordered, streaming concurrent map.

Nothing is created per item but its slot, and the submitter never runs more than
``window`` slots ahead of what it has consumed, so memory is O(window), never O(N).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import (
    AsyncGenerator,
    AsyncIterator,
    Awaitable,
    Callable,
    Generator,
    Iterable,
    Iterator,
)
from contextlib import asynccontextmanager, closing
from typing import Any, TypeVar

import anyio

from ._slot import Slot, check_positive
from ._tasks import AsyncWorkers
from ._threads import ThreadWorkers

__all__ = ["amap", "ideal_seconds", "map"]

T = TypeVar("T")
R = TypeVar("R")


def map(  # noqa: A001 - the name says what it does, like the builtin
    fn: Callable[[T], R],
    items: Iterable[T],
    *,
    concurrency: int,
    window: int | None = None,
    timeout: float | None = None,
) -> Iterator[R]:
    """``fn(item)`` for each item, ``concurrency`` at a time in threads, yielded in input order.

    Items are pulled lazily, at most ``window`` (default ``2 * concurrency``) ahead of the
    consumer. An item whose call raised raises at its place in the output; the items after
    it are not started once the iterator is closed. ``timeout`` bounds each call
    (:class:`TimeoutError`).
    """
    check_positive("concurrency", concurrency, allow_none=False)
    check_positive("window", window)
    check_positive("timeout", timeout)
    return _map(fn, items, int(concurrency), int(window or 2 * concurrency), timeout)


def _ordered(
    fn: Callable[[T], Any], items: Iterable[T], submit: Callable[[Slot[Any]], Slot[Any]], window: int
) -> Generator[Slot[Any], None, None]:
    """Slots for ``fn(item)``, in input order, with at most ``window`` submitted ahead of the
    one handed out; the ones still pending are cancelled when the generator is closed."""
    pending: deque[Slot[Any]] = deque()
    source = iter(items)
    empty: dict[str, Any] = {}
    try:
        for item in source:
            pending.append(submit(Slot(fn, (item,), empty)))
            if len(pending) >= window:
                break
        while pending:
            slot = pending.popleft()
            for item in source:
                pending.append(submit(Slot(fn, (item,), empty)))
                break
            yield slot
    finally:
        for slot in pending:
            slot.cancel()


def _map(fn: Callable[[T], R], items: Iterable[T], concurrency: int, window: int, timeout: float | None) -> Iterator[R]:
    workers = ThreadWorkers(concurrency, name="sched_accel-map")
    try:
        with closing(_ordered(fn, items, workers.submit, window)) as slots:
            for slot in slots:
                yield workers.wait(slot, timeout)
    finally:
        workers.close()


@asynccontextmanager
async def amap(
    fn: Callable[[T], Awaitable[R]],
    items: Iterable[T],
    *,
    concurrency: int,
    window: int | None = None,
    timeout: float | None = None,
) -> AsyncIterator[AsyncIterator[R]]:
    """``async with amap(fn, items, concurrency=8) as results: async for r in results``.

    ``await fn(item)`` for each item, ``concurrency`` at a time on the running event loop
    (asyncio or trio), yielded in input order, at most ``window`` ahead of the consumer.
    """
    check_positive("concurrency", concurrency, allow_none=False)
    check_positive("window", window)
    check_positive("timeout", timeout)
    limit = int(window or 2 * concurrency)
    error: Exception | None = None
    async with anyio.create_task_group() as group:
        workers = AsyncWorkers(group, concurrency)

        async def results() -> AsyncGenerator[R, None]:
            with closing(_ordered(fn, items, workers.submit, limit)) as slots:
                for slot in slots:
                    yield await workers.wait(slot, timeout)

        stream = results()
        try:
            yield stream
        except Exception as exc:
            # Re-raised outside the task group: an item's exception, or the consumer's own,
            # leaves amap as itself, never wrapped in an ExceptionGroup.
            error = exc
        finally:
            await stream.aclose()
            workers.close()
            group.cancel_scope.cancel()
    if error is not None:
        try:
            raise error
        finally:
            error = None


def ideal_seconds(items: int, latency: float, concurrency: int) -> float:
    """ceil(N / C) * L: the time N calls of latency L take at concurrency C."""
    return math.ceil(items / concurrency) * latency
