"""The unit of work: one call, and once run, its value or its exception.

A :class:`Slot` is made by whoever submits work (``map``, a prefetch run, the policy's
direct calls) and run by a worker. ``claim`` and ``cancel`` race without a lock: exactly
one of them wins, so a call never runs after it was cancelled and never runs twice.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

__all__ = ["AsyncAttempt", "Attempt", "Cancelled", "Slot", "check_positive"]

R = TypeVar("R")

_PENDING: Any = object()


class Cancelled(Exception):
    """Stands for the outcome of a call that was cancelled before it started."""


def check_positive(name: str, value: float | None, *, allow_none: bool = True) -> None:
    """Raise ValueError naming the argument unless ``value`` is a positive number."""
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0 or value != value:
        raise ValueError(f"{name} must be a positive number, got {value!r}")


class Slot(Generic[R]):
    """One call and, once run, its value or its exception.

    A slot may be attempted more than once (an ``attempt`` function re-queues it after a
    failure); ``note`` is that function's own record across the attempts: the engine
    never reads it.
    """

    __slots__ = ("_unclaimed", "abandoned", "args", "done", "error", "fn", "item", "kwargs", "note", "value")

    def __init__(self, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any], item: Any = None) -> None:
        self.fn = fn
        self.args = args
        self.kwargs = kwargs
        self.item = item
        self.value: Any = _PENDING
        self.error: BaseException | None = None
        self._unclaimed = [True]  # popped once: by the worker that runs it, or by cancel()
        self.done: Any = None  # a held lock (threads), or False / True / an anyio.Event (tasks)
        self.abandoned = False  # cancel() came after the call had started: never retry it
        self.note: Any = None

    def claim(self) -> bool:
        """For a worker: True if the call is to run now (it was not cancelled)."""
        try:
            self._unclaimed.pop()  # atomic: only one of claim() and cancel() wins
        except IndexError:
            return False
        return True

    def cancel(self) -> bool:
        """Make sure the call never starts; False if it had already started (it is then
        not attempted again)."""
        try:
            self._unclaimed.pop()
        except IndexError:
            self.abandoned = True
            return False
        return True

    def rearm(self) -> bool:
        """Make a failed slot claimable again, for another attempt; False if abandoned."""
        if self.abandoned:
            return False
        self.error = None
        self._unclaimed = [True]
        return True

    def run(self) -> None:
        """Run the call, keeping its value or exception (for a worker)."""
        try:
            self.value = self.fn(*self.args, **self.kwargs)
        except BaseException as exc:  # kept, re-raised where the call is consumed
            self.error = exc

    async def arun(self) -> None:
        """Await the call (its ``fn`` returns an awaitable), keeping its value or exception.
        Cancellation is not kept: it propagates, as it must."""
        try:
            self.value = await self.fn(*self.args, **self.kwargs)
        except Exception as exc:
            self.error = exc

    def outcome(self) -> R:
        """The value, or raise the exception, exactly as the call itself would have."""
        if self.error is not None:
            raise self.error
        return self.value  # type: ignore[no-any-return]


#: One attempt of a slot's call, run by a worker: None when the slot is done (its value or
#: error is final), else the seconds after which to attempt it again. The worker does not
#: wait those seconds: the slot is put back in line when they have passed.
Attempt = Callable[[Slot[Any]], float | None]
AsyncAttempt = Callable[[Slot[Any]], Awaitable[float | None]]
