"""Which shadow the current thread or task runs, and where in the app's code it stands.

Two context variables, so each thread and each task has its own (a task copies its parent's
at creation, so the tasks a shadow spawns are shadowed too; a thread starts with none):

- :data:`SHADOW`: the shadow call this code belongs to, set by :func:`enter` (which the
  public ``shadowed`` calls);
- ``ACTING``: the shadow whose rules apply *now*: the same, but ``None`` inside
  :func:`reading`, where our own code sends one of the shadow's reads (through the policy,
  which may sleep, log and coordinate). Every hook checks ``ACTING.get()`` first, one C call:
  outside a shadow that is all it costs.
"""

from __future__ import annotations

import functools
import os
import sys
import sysconfig
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import NoReturn

from .._exceptions import Stopped

__all__ = ["ACTING", "SHADOW", "Shadow", "acting", "enter", "reading", "where"]


class Shadow:
    """One shadow call's state: whether (and why first) it stopped, what it dropped and skipped.

    A shadow may run code in more than one thread (work it hands to an executor carries it):
    the counters are then approximate, and of two first stops one wins.
    """

    __slots__ = ("dropped", "skipped_sleeps", "stopped")

    def __init__(self) -> None:
        self.stopped: str | None = None
        self.dropped = 0  # prints, stream writes, log records and warnings thrown away
        self.skipped_sleeps = 0

    def stop(self, why: str) -> NoReturn:
        """Record ``why`` (the first reason is kept) and raise :class:`Stopped` with it."""
        if self.stopped is None:
            self.stopped = why
        raise Stopped(why)

    def mark(self, why: str) -> None:
        """Record ``why`` without raising, from a callback that cannot raise through its caller
        (sqlite's authorizer): the shadow's next effect, or :meth:`check`, raises."""
        if self.stopped is None:
            self.stopped = why

    def check(self) -> None:
        """Raise :class:`Stopped` again if this shadow has stopped (a read it wants to send next)."""
        if self.stopped is not None:
            raise Stopped(self.stopped)

    def __repr__(self) -> str:
        return f"<Shadow stopped={self.stopped!r} dropped={self.dropped} skipped_sleeps={self.skipped_sleeps}>"


SHADOW: ContextVar[Shadow | None] = ContextVar("sched_accel_shadow", default=None)
ACTING: ContextVar[Shadow | None] = ContextVar("sched_accel_shadow_acting", default=None)


def acting() -> Shadow | None:
    """The shadow whose rules apply here and now, if any."""
    return ACTING.get()


@contextmanager
def enter(shadow: Shadow) -> Iterator[None]:
    """Run the block as ``shadow``, in this thread or task only (``shadowed`` adds the streams)."""
    token = SHADOW.set(shadow)
    acting_token = ACTING.set(shadow)
    try:
        yield
    finally:
        ACTING.reset(acting_token)
        SHADOW.reset(token)


@contextmanager
def reading() -> Iterator[None]:
    """We send one of the shadow's reads ourselves: inside, nothing is dropped, skipped or
    stopped (its sockets connect, the policy's sleeps wait, our own log lines go out)."""
    token = ACTING.set(None)
    try:
        yield
    finally:
        ACTING.reset(token)


# -- where in the app's code ------------------------------------------------------------------

_OURS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # .../sched_accel
_APP, _LIBRARY, _OWN = 0, 1, 2
_kinds: dict[str, int] = {}


@functools.cache
def _libraries() -> tuple[str, ...]:
    paths = sysconfig.get_paths()
    return tuple(
        {os.path.abspath(p) for key in ("stdlib", "platstdlib", "purelib", "platlib") if (p := paths.get(key))}
    )


def _kind(filename: str) -> int:
    kind = _kinds.get(filename)
    if kind is None:
        path = os.path.abspath(filename) if not filename.startswith("<") else filename
        if path.startswith(("<", _OURS + os.sep)) or path.endswith("_sched_accel_boot.py"):
            kind = _OWN
        elif path.startswith(_libraries()) or os.sep + "site-packages" + os.sep in path:
            kind = _LIBRARY
        else:
            kind = _APP
        _kinds[filename] = kind
    return kind


def _short(filename: str) -> str:
    try:
        relative = os.path.relpath(filename)
    except ValueError:  # another drive
        return filename
    return filename if relative.startswith(os.pardir) else relative


def where(depth: int = 1) -> str:
    """``file:line`` of the app's code that led here: the nearest frame outside sched_accel,
    the standard library and site-packages; else the nearest library frame; else ``?``."""
    frame = sys._getframe(depth)
    library = None
    while frame is not None:
        kind = _kind(frame.f_code.co_filename)
        if kind == _APP:
            return f"{_short(frame.f_code.co_filename)}:{frame.f_lineno}"
        if kind == _LIBRARY and library is None:
            library = f"{_short(frame.f_code.co_filename)}:{frame.f_lineno}"
        frame = frame.f_back  # type: ignore[assignment]
    return library or "?"
