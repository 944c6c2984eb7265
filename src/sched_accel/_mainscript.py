"""Targets in ``__main__``: a job started as ``python job.py`` or ``python -m pkg.job``.

Import hooks never fire for ``__main__``: the interpreter runs the script itself, and its
last lines usually call the loop at once (``if __name__ == "__main__": main()``). So we
watch the script's module-level frame, line by line, with a trace function, only until
the declared name is bound, patch it there (before the line that calls it), and stop
tracing. Nothing else of the program is traced; a debugger or coverage tracer already in
place is left alone (then the target is reported as not patched).
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from types import FrameType, ModuleType
from typing import Any

import _sched_accel_boot as boot

from ._events import TARGET_NOT_PATCHED
from ._log import event

__all__ = ["is_main", "when_defined"]


def is_main(module: str | None, path: str | None) -> bool:
    """Whether this process's ``__main__`` is the script ``path`` or the module ``module``
    (``__main__`` itself names whatever runs as the program: its loop, once defined there)."""
    if path is not None:
        return path in (boot.main_script_path(), boot.main_module_path())
    return module == "__main__" or (module is not None and boot.main_module_name() == module)


_pending: dict[str, list[Callable[[ModuleType], None]]] = {}


def when_defined(name: str, qualname: str, callback: Callable[[ModuleType], None]) -> None:
    """Call ``callback(__main__)`` once the first part of ``qualname`` is bound there."""
    main = sys.modules["__main__"]
    head = qualname.split(".")[0]
    namespace = vars(main)
    if head in namespace:
        callback(main)
        return
    if _pending:
        _pending.setdefault(head, []).append(callback)
        return
    if sys.gettrace() is not None or threading.current_thread() is not threading.main_thread():
        event(
            TARGET_NOT_PATCHED,
            "a debugger or coverage tracer is active, so a loop in __main__ cannot be "
            "patched; move the loop into a module and declare it as module:function",
            target=name,
        )
        return
    _pending[head] = [callback]

    def fire(done: bool) -> None:
        for key in [key for key in _pending if done or key in namespace]:
            for waiting in _pending.pop(key):
                if key in namespace:
                    waiting(main)

    def local(frame: FrameType, what: str, arg: Any) -> Any:
        if what == "return" or any(key in namespace for key in _pending):
            fire(what == "return")
            if not _pending:
                sys.settrace(None)
                return None
        return local

    def global_(frame: FrameType, what: str, arg: Any) -> Any:
        if frame.f_globals is namespace and frame.f_code.co_name == "<module>":
            return local
        return None

    sys.settrace(global_)
