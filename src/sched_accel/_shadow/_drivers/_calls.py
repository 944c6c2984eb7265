"""The wrappers a database driver's methods get: one that reads the statement before it is
sent (a read goes on, a write stops the shadow), one that always stops it (``commit``: before
it runs, touching nothing, since the connection may be the app's), and one for leaving a
transaction block that would commit (it leaves as if the block had raised :class:`Stopped`,
so the driver rolls back what the shadow's own block began and keeps its bookkeeping
straight, then the shadow stops)."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from ..._exceptions import Stopped
from .._context import ACTING, where
from .._sql import writes
from .._wrapping import Args, Kwargs, Wrapper

__all__ = ["NAMES", "always", "leave_without_commit", "statement"]

#: The names a driver gives the statement argument, when it is passed by keyword.
NAMES = ("query", "sql", "operation", "statement", "sql_script", "command")


def _argument(args: Args, kwargs: Kwargs, position: int) -> Any:
    if len(args) > position:
        return args[position]
    return next((kwargs[name] for name in NAMES if name in kwargs), None)


def statement(library: str, position: int = 0, pick: Callable[[Any, Args, Kwargs], Any] | None = None) -> Wrapper:
    """Stop the shadow if the statement (``args[position]``, or what ``pick`` finds) writes."""

    def check(wrapped: Callable[..., Any], instance: Any, args: Args, kwargs: Kwargs) -> Any:
        shadow = ACTING.get()
        if shadow is not None:
            shadow.check()
            sql = pick(instance, args, kwargs) if pick is not None else _argument(args, kwargs, position)
            what = writes(sql, instance)
            if what is not None:
                shadow.stop(f"a database write through {library}: {what} ({where()})")
        return wrapped(*args, **kwargs)

    return check


def always(library: str, what: str) -> Wrapper:
    """Stop the shadow: ``what`` (e.g. "committed") is an effect whatever its arguments."""

    def stop(wrapped: Callable[..., Any], instance: Any, args: Args, kwargs: Kwargs) -> Any:
        shadow = ACTING.get()
        if shadow is not None:
            shadow.stop(f"{what} through {library} ({where()})")
        return wrapped(*args, **kwargs)

    return stop


def leave_without_commit(library: str) -> Wrapper:
    """``__exit__``/``__aexit__`` of a block that commits when left normally: in a shadow, it is
    left as if the block had raised Stopped (a rollback), then Stopped is raised."""

    def leave(wrapped: Callable[..., Any], instance: Any, args: Args, kwargs: Kwargs) -> Any:
        shadow = ACTING.get()
        if shadow is None or (args[0] if args else next(iter(kwargs.values()), None)) is not None:
            return wrapped(*args, **kwargs)
        why = f"committed through {library} ({where()})"
        shadow.mark(why)
        stopped = Stopped(why)
        left = wrapped(Stopped, stopped, None)
        if inspect.isawaitable(left):

            async def leave_async() -> Any:
                await left
                raise stopped

            return leave_async()
        raise stopped

    return leave
