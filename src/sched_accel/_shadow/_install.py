"""Putting the shadow's hooks in place: some for good, some only while a shadow run is active.

- :func:`install` (idempotent, thread-safe, called by :func:`activate`; call it early, when
  a target that shadows is patched, so that connections and imports made before the first
  run are covered too): the audit hook, and the wrappers on the sleeps, logging, loguru,
  warnings, executors and database drivers, each once its module is imported (the start-up
  hook's watcher; registered again after an ``uninstall`` cleared it). They stay: outside a
  shadow each costs one C call.
- :func:`activate`/:func:`deactivate` (counted): what changes state the whole process sees,
  the proxies in front of ``sys.stdout``/``sys.stderr``, is there only while at least one
  shadow run is active; :func:`shadowed` puts them back if they were replaced meanwhile.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import ModuleType

import _sched_accel_boot as boot

from . import _drivers, _output, _sleeps, _sqlite, _threads
from ._audit import install_hook
from ._context import Shadow, enter

__all__ = ["activate", "active", "deactivate", "install", "shadowed"]

_HOOKS: tuple[tuple[str, Callable[[ModuleType], None]], ...] = (
    *_sleeps.HOOKS,
    *_output.HOOKS,
    *_threads.HOOKS,
    *_sqlite.HOOKS,
    *_drivers.HOOKS,
)

#: A module name nobody imports: while it is in ``boot.watcher.watching()``, our watches are
#: still there (an ``uninstall`` clears the watcher's, ours with them).
_SENTINEL = "sched_accel._shadow.__watches_still_there__"

_lock = threading.RLock()
_done: set[int] = set()  # the indexes of _HOOKS that have run
_active = 0


def _run(index: int, callback: Callable[[ModuleType], None]) -> Callable[[ModuleType], None]:
    def run(module: ModuleType) -> None:
        with _lock:
            if index in _done:
                return
            _done.add(index)
        callback(module)

    return run


def _never(module: ModuleType) -> None:  # pragma: no cover - nobody imports the sentinel
    pass


def install() -> None:
    """Install the audit hook and every wrapper (now, or when its module is imported)."""
    install_hook()
    with _lock:
        if _SENTINEL in boot.watcher.watching():
            return  # every hook has run, or is still awaited
        boot.watcher.watch(_SENTINEL, _never)
        due = [(index, hook) for index, hook in enumerate(_HOOKS) if index not in _done]
    for index, (module_name, callback) in due:
        boot.watcher.watch(module_name, _run(index, callback))  # now, if it is imported


def activate() -> None:
    """A shadow run starts: install, and put the stream proxies in place if they are not."""
    global _active
    install()
    with _lock:
        _active += 1
        if _active == 1:
            _output.swap_streams()


def deactivate() -> None:
    """A shadow run ends: the last one takes the stream proxies out again."""
    global _active
    with _lock:
        if _active == 0:
            return
        _active -= 1
        if _active == 0:
            _output.restore_streams()


def active() -> int:
    """How many shadow runs are active."""
    return _active


@contextmanager
def shadowed(shadow: Shadow) -> Iterator[None]:
    """Run the block as ``shadow``, in this thread or task only. While a run is active, the
    stream proxies are put back in front first if something replaced ``sys.stdout`` since."""
    if _active and not _output.streams_swapped():
        _output.swap_streams()
    with enter(shadow):
        yield
