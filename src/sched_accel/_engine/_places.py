"""A run's places: at most ``concurrency`` per-item calls in flight, the loop's own among them.

Workers hold a place for each attempt of a call they run ahead of the loop; the loop holds one
for each attempt of a call it makes itself (an item nothing was sent ahead for, a request it
sends as made), so ``concurrency = 8`` means 8 in flight, never 8 ahead plus the loop's.

The loop waits for a place only so long (:data:`OWN_WAIT`): a call run ahead may wait for
something the loop holds (an app's lock, a connection of a pool of one), and a loop waiting for
that call's place would wait forever. Past that wait, the loop's call goes without a place, and
so do its later calls in that run (:attr:`Places.gave_up`): one call over the bound, rather
than a job that hangs.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager

import anyio

__all__ = ["OWN_WAIT", "Places"]

OWN_WAIT = 30.0  #: seconds the loop waits for a place before its call goes without one


class Places:
    """``concurrency`` places shared by a run's workers and its loop; threads or tasks."""

    def __init__(
        self, concurrency: int, *, own_wait: float = OWN_WAIT, on_give_up: Callable[[float], None] | None = None
    ) -> None:
        self.concurrency = concurrency
        self.own_wait = own_wait
        self._on_give_up = on_give_up  # told once, with the seconds waited
        self._threads = threading.Semaphore(concurrency)
        self._tasks: anyio.Semaphore | None = None  # made in the event loop that uses it
        #: The loop waited ``own_wait`` for a place once: its calls go without one from then on.
        self.gave_up = False

    @contextmanager
    def ahead(self) -> Iterator[None]:
        """A worker's place, for one attempt (waits as long as it takes)."""
        with self._threads:
            yield

    @contextmanager
    def own(self) -> Iterator[None]:
        """The loop's place, for one attempt of a call it makes itself (waits :attr:`own_wait`)."""
        held = False
        if not self.gave_up:
            held = self._threads.acquire(timeout=self.own_wait)
            if not held:
                self._give_up()
        try:
            yield
        finally:
            if held:
                self._threads.release()

    def _give_up(self) -> None:
        self.gave_up = True
        if self._on_give_up is not None:
            self._on_give_up(self.own_wait)

    def _semaphore(self) -> anyio.Semaphore:
        if self._tasks is None:
            self._tasks = anyio.Semaphore(self.concurrency)
        return self._tasks

    @asynccontextmanager
    async def aahead(self) -> AsyncIterator[None]:
        """A worker task's place, for one attempt."""
        semaphore = self._semaphore()
        try:
            semaphore.acquire_nowait()
        except anyio.WouldBlock:
            await semaphore.acquire()
        try:
            yield
        finally:
            semaphore.release()

    @asynccontextmanager
    async def aown(self) -> AsyncIterator[None]:
        """The loop task's place, for one attempt of a call it makes itself."""
        semaphore, held = self._semaphore(), False
        if not self.gave_up:
            try:  # a free place taken without a trip through the event loop (the usual case)
                semaphore.acquire_nowait()
                held = True
            except anyio.WouldBlock:
                with anyio.move_on_after(self.own_wait):
                    await semaphore.acquire()
                    held = True
                if not held:
                    self._give_up()
        try:
            yield
        finally:
            if held:
                semaphore.release()
