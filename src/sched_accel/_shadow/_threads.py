"""Work a shadow hands to other threads stays shadowed; other threads and processes stop it.

A thread starts with an empty context, so whatever a shadow hands to a thread would escape
its rules. Hence:

- ``ThreadPoolExecutor.submit`` (``loop.run_in_executor`` goes through it) called in a shadow
  runs the work in a copy of the shadow's context (``asyncio.to_thread``, anyio's and trio's
  ``to_thread`` copy it themselves);
- the start of one of those pools' worker threads is allowed (:func:`is_pool_worker`: the
  work it runs carries its own context); any other new ``threading.Thread`` is an effect
  (``Thread.start`` is wrapped: Python 3.11 audits no thread start; a bare
  ``_thread.start_new_thread`` is not seen);
- ``ProcessPoolExecutor.submit`` in a shadow stops it (its work would run in another process).
"""

from __future__ import annotations

import contextvars
import sys
import threading
from collections.abc import Callable
from types import ModuleType
from typing import Any

from ._context import ACTING, SHADOW, where
from ._wrapping import Args, Kwargs, wrap

__all__ = ["HOOKS", "is_pool_worker"]


def _carry(wrapped: Callable[..., Any], instance: Any, args: Args, kwargs: Kwargs) -> Any:
    if not args:  # pragma: no cover - submit() without fn: let it raise its own TypeError
        return wrapped(*args, **kwargs)
    context = contextvars.copy_context()
    return wrapped(context.run, *args, **kwargs)


def _refuse(wrapped: Callable[..., Any], instance: Any, args: Args, kwargs: Kwargs) -> Any:
    shadow = ACTING.get()
    if shadow is None:  # pragma: no cover - wrapt checked ACTING just before
        return wrapped(*args, **kwargs)
    shadow.stop(f"handed work to a process pool ({where()})")


def _futures(module: ModuleType) -> None:
    wrap(module.ThreadPoolExecutor, "submit", _carry, SHADOW.get)


def _processes(module: ModuleType) -> None:
    wrap(module.ProcessPoolExecutor, "submit", _refuse, ACTING.get)


def _start(wrapped: Callable[..., Any], instance: Any, args: Args, kwargs: Kwargs) -> Any:
    shadow = ACTING.get()
    if shadow is not None and not is_pool_worker(instance):
        shadow.stop(f"started a thread, which would run outside the shadow ({where()})")
    return wrapped(*args, **kwargs)


def _threading(module: ModuleType) -> None:
    wrap(module.Thread, "start", _start, ACTING.get)


def is_pool_worker(thread: object) -> bool:
    """Whether ``thread`` is a worker of a thread pool whose work items carry their
    submitter's context (see the module)."""
    if not isinstance(thread, threading.Thread):
        return False
    target = getattr(thread, "_target", None)
    futures = sys.modules.get("concurrent.futures.thread")
    if futures is not None and target is getattr(futures, "_worker", None):
        return True
    owner = getattr(target, "__self__", None)
    return type(thread).__module__.startswith("anyio.") or type(owner).__module__ == "trio._core._thread_cache"


HOOKS: tuple[tuple[str, Callable[[ModuleType], None]], ...] = (
    ("threading", _threading),
    ("concurrent.futures.thread", _futures),
    ("concurrent.futures.process", _processes),
)
