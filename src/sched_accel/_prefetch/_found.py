"""The per-item function a loop calls, found on the stack of one of its requests.

An HTTP-level target names only its loop. When the loop makes a request, the frames between
the loop's own frame and our wrapper at the HTTP library's layer say which function of the
app the loop called for it (``client.get_pair(token)``): the frame just below the loop's
(list comprehensions' and generator expressions' frames count as the loop's). That function,
with the arguments it was called with, is what a shadow would run: :func:`find` names it as
``module:qualname`` (when its module resolves that name to this very code), with its file
and line, and whether an item of the loop is among its arguments, for the line that says
what would make a run faster (``fetch = "..."``). Nothing is imported or evaluated: the
frames and the modules already loaded are read.
"""

from __future__ import annotations

import os
import sys
import sysconfig
from collections.abc import Iterable
from dataclasses import dataclass
from types import CodeType, FrameType
from typing import Any

__all__ = ["Found", "any_same", "find", "is_library", "name_of"]

#: Frames looked at above a request, at most (a loop is rarely deeper than this below its request).
MAX_FRAMES = 200

_LIBRARIES = tuple(
    {
        os.path.realpath(path) + os.sep
        for key in ("stdlib", "platstdlib", "purelib", "platlib")
        if (path := sysconfig.get_paths().get(key))
    }
)


@dataclass(frozen=True, slots=True)
class Found:
    """The app's function the loop called for a request: its name, where it is defined, and
    whether it was called with an item of the loop."""

    spec: str
    where: str
    with_item: bool

    def hint(self) -> str:
        """What to declare to shadow it, for a line of ours."""
        called = "called with each item" if self.with_item else "called with values made from each item"
        return (
            f'the loop\'s requests are made by {self.spec} ({self.where}), {called}: fetch = "{self.spec}" shadows it'
        )


def find(loop: CodeType, items: Iterable[Any] = ()) -> Found | None:
    """The function the loop (whose code is ``loop``) called on the way to this request, if
    it is the app's own and can be named; None when the loop made the request itself."""
    frame: FrameType | None = sys._getframe(1)
    below: FrameType | None = None
    for _ in range(MAX_FRAMES):
        if frame is None:
            return None
        if frame.f_code is loop:
            break
        if not frame.f_code.co_name.startswith("<") and _OURS not in frame.f_code.co_filename:  # <listcomp>: the loop's
            below = frame
        frame = frame.f_back
    else:
        return None
    if below is None or is_library(below.f_code.co_filename):
        return None
    spec = name_of(below)
    if spec is None:
        return None
    code = below.f_code
    return Found(spec, f"{os.path.basename(code.co_filename)}:{code.co_firstlineno}", _with_item(below, items))


_OURS = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep


def is_library(filename: str) -> bool:
    """Whether code from this file belongs to a library (the stdlib, site-packages)."""
    real = os.path.realpath(filename)
    return real.startswith(_LIBRARIES) or "site-packages" in real


def name_of(frame: FrameType) -> str | None:
    """``module:qualname`` of the frame's function, when the module resolves it to this code."""
    code = frame.f_code
    qualname = getattr(code, "co_qualname", code.co_name)
    module_name = frame.f_globals.get("__name__")
    if "<" in qualname or not isinstance(module_name, str):
        return None
    value: Any = sys.modules.get(module_name)
    for part in qualname.split("."):
        value = getattr(value, part, None)
        if value is None:
            return None
    function = getattr(value, "__func__", value)
    while hasattr(function, "__wrapped__") and getattr(function, "__code__", None) is not code:
        function = function.__wrapped__
    if getattr(function, "__code__", None) is not code:
        return None
    if module_name == "__main__":
        path = frame.f_globals.get("__file__")
        return f"{path}:{qualname}" if isinstance(path, str) else None
    return f"{module_name}:{qualname}"


def _with_item(frame: FrameType, items: Iterable[Any]) -> bool:
    """Whether one of the frame's arguments is an item of the loop (the same object, or equal)."""
    code = frame.f_code
    count = code.co_argcount + code.co_kwonlyargcount
    return any_same(items, [frame.f_locals.get(name) for name in code.co_varnames[:count]])


def any_same(values: Iterable[Any], wanted: list[Any]) -> bool:
    """Whether one of ``values`` is one of ``wanted`` (the same object, or equal and of the same type)."""
    for value in values:
        for argument in wanted:
            if argument is value:
                return True
            try:
                if type(argument) is type(value) and argument == value:
                    return True
            except Exception:  # noqa: BLE001, S112 - an app's __eq__ that raises: not this one
                continue
    return False
