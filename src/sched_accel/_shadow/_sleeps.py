"""A shadow's sleeps return at once: ``time.sleep``, and ``asyncio``'s, ``anyio``'s and
``trio``'s ``sleep`` (those still yield to their event loop once, as ``sleep(0)``).

A wrapper of its own on each, beside ``skip_sleeps``'s :class:`SleepSkipper` (which acts in
the loop's thread only): either may be installed first, each removed without the other.
Inside :func:`reading` the policy's own waits are real. A sleep bound before we wrapped it
(``from time import sleep`` in a module imported earlier) is not seen: the shadow then
really sleeps, which costs time, never correctness.
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any

from ._context import ACTING
from ._wrapping import Args, Kwargs, wrap

__all__ = ["HOOKS"]


def _sleep(wrapped: Callable[..., Any], instance: Any, args: Args, kwargs: Kwargs) -> None:
    shadow = ACTING.get()
    if shadow is None:  # pragma: no cover - wrapt checked ACTING just before
        return wrapped(*args, **kwargs)  # type: ignore[no-any-return]
    shadow.check()
    shadow.skipped_sleeps += 1
    return None


def _async_sleep(delay: str) -> Callable[[Callable[..., Any], Any, Args, Kwargs], Any]:
    """The wrapper of an async sleep whose first parameter is named ``delay``."""

    def skip(wrapped: Callable[..., Any], instance: Any, args: Args, kwargs: Kwargs) -> Any:
        shadow = ACTING.get()
        if shadow is None:  # pragma: no cover - wrapt checked ACTING just before
            return wrapped(*args, **kwargs)
        shadow.check()
        shadow.skipped_sleeps += 1
        kwargs = {k: v for k, v in kwargs.items() if k != delay}
        return wrapped(0, *args[1:], **kwargs)  # still yields once (and returns ``result=``)

    return skip


def _time(module: ModuleType) -> None:
    wrap(module, "sleep", _sleep, ACTING.get)


def _asyncio(module: ModuleType) -> None:
    wrap(module, "sleep", _async_sleep("delay"), ACTING.get)


def _anyio(module: ModuleType) -> None:
    wrap(module, "sleep", _async_sleep("delay"), ACTING.get)


def _trio(module: ModuleType) -> None:
    wrap(module, "sleep", _async_sleep("seconds"), ACTING.get)


HOOKS: tuple[tuple[str, Callable[[ModuleType], None]], ...] = (
    ("time", _time),
    ("asyncio", _asyncio),
    ("anyio", _anyio),
    ("trio", _trio),
)
