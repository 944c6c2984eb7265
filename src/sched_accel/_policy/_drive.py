"""Plans and their two drivers: the one place where threads and tasks differ in the policy.

Everything the policy does around a call (admission by a limiter, one attempt, retries of
a direct call, one HTTP request) is written once, as a *plan*: a generator that yields
what it needs and is sent what happened. A plan yields

- a ticket (anything with a ``wake`` attribute, as the limiter's): "I joined a line: give
  my ticket a way to wake me" (the plan checks again before it waits, so no wake-up is lost);
- a number: "wait this many seconds, or until woken" (``math.inf``: until woken);
- :data:`GO`: "do the action now and send me its result" (or throw its exception in).

Its return value is the driver's. :func:`run_sync` drives a plan in a thread (a waiter is
a lock), :func:`run_async` in an anyio task on asyncio or trio (a waiter is an event that
other threads may set). Nothing is made for a plan that never waits.
"""

from __future__ import annotations

import asyncio
import math
import threading
from collections.abc import Awaitable, Callable, Generator
from typing import Any, Final, Protocol, TypeVar

import anyio

__all__ = ["GO", "Plan", "Wakeable", "run_async", "run_sync"]

T = TypeVar("T")


class _Go:
    __slots__ = ()

    def __repr__(self) -> str:
        return "GO"


#: Yielded by a plan: do the action now.
GO: Final = _Go()


class Wakeable(Protocol):
    """A place in some line: whoever frees a place calls its ``wake``."""

    wake: Callable[[], None]


Step = float | Wakeable | _Go
Plan = Generator[Step, Any, T]


def _nothing() -> None:
    return None


def run_sync(plan: Plan[T], act: Callable[..., Any] = _nothing, *args: Any) -> T:
    """Drive ``plan`` in this thread; ``act(*args)`` is its action."""
    waiter: _ThreadWaiter | None = None
    value: Any = None
    error: BaseException | None = None
    try:
        while True:
            if error is None:
                step = plan.send(value)
            else:
                step, error = plan.throw(error), None
            value = None
            if isinstance(step, _Go):
                try:
                    value = act(*args)
                except BaseException as exc:  # the plan sees it, and re-raises it
                    error = exc
            elif isinstance(step, int | float):
                waiter = waiter or _ThreadWaiter()
                waiter.wait(step)
            else:
                waiter = waiter or _ThreadWaiter()
                step.wake = waiter.wake
    except StopIteration as stop:
        result: T = stop.value
        return result
    finally:
        plan.close()  # a wait that raised (KeyboardInterrupt): the plan gives up its place


async def run_async(plan: Plan[T], act: Callable[..., Awaitable[Any]], *args: Any) -> T:
    """Drive ``plan`` in this anyio task; ``await act(*args)`` is its action. (No checkpoint
    of its own: a wait is one, and so is the action's own first await.)"""
    waiter: _TaskWaiter | None = None
    value: Any = None
    error: BaseException | None = None
    try:
        while True:
            if error is None:
                step = plan.send(value)
            else:
                step, error = plan.throw(error), None
            value = None
            if isinstance(step, _Go):
                try:
                    value = await act(*args)
                except BaseException as exc:  # cancellation too: the plan cleans up, re-raises
                    error = exc
            elif isinstance(step, int | float):
                waiter = waiter or _TaskWaiter()
                await waiter.wait(step)
            else:
                waiter = waiter or _TaskWaiter()
                step.wake = waiter.wake
    except StopIteration as stop:
        result: T = stop.value
        return result
    finally:
        plan.close()  # cancelled while waiting: the plan gives up its place in line


class _ThreadWaiter:
    """A thread sleeps on a lock (a binary semaphore): until woken, or until the wait elapses."""

    __slots__ = ("_lock",)

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._lock.acquire()

    def wake(self) -> None:
        try:
            self._lock.release()
        except RuntimeError:  # already woken, not yet waited for
            pass

    def wait(self, delay: float) -> None:
        # A wake before the wait is kept (the lock is free): the next try is never lost.
        self._lock.acquire(timeout=-1 if delay == math.inf else min(delay, threading.TIMEOUT_MAX))


class _TaskWaiter:
    """A task sleeps on an anyio Event; wakes may come from other threads and event loops."""

    __slots__ = ("_call_soon", "_event", "_thread")

    def __init__(self) -> None:
        self._event = anyio.Event()
        self._thread = threading.get_ident()
        self._call_soon = _thread_safe_caller()

    def _set(self) -> None:
        self._event.set()

    def wake(self) -> None:
        if threading.get_ident() == self._thread:
            self._event.set()
            return
        try:
            self._call_soon(self._set)
        except RuntimeError:  # the waiter's event loop has finished: nobody left to wake
            pass

    async def wait(self, delay: float) -> None:
        with anyio.move_on_after(None if delay == math.inf else delay):
            await self._event.wait()
        self._event = anyio.Event()  # before the next try, so a wake after it is never lost


def _thread_safe_caller() -> Callable[[Callable[[], None]], object]:
    """How to run a callback on the current event loop from any thread: asyncio's or trio's way."""
    try:
        return asyncio.get_running_loop().call_soon_threadsafe
    except RuntimeError:  # anyio runs on trio when no asyncio loop is running
        import trio

        return trio.lowlevel.current_trio_token().run_sync_soon
