"""``sched-accel check``: load the config, import every target, say what would be patched.

Everything a target names is resolved here as the app would resolve it: the loop, the
per-item call, the replacement, and where the items come from.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import os
import sys
from collections.abc import Callable

import _sched_accel_boot as boot

from ._config import find_config, load_config
from ._exceptions import SchedAccelError
from ._settings import Argument, Learned, ModuleObject, ReturnedBy, Target
from ._state import ControlFile
from ._targets import TargetSpec

__all__ = ["check"]


def check(say: Callable[[str], None], err: Callable[[str], None], flag_line: str) -> int:
    """``sched-accel check``: 0 when every target resolves, else 1 (2: the config is unusable)."""
    path = find_config()
    say(f"config: {path or 'none found'}")
    say(flag_line)
    try:
        settings = load_config()
    except SchedAccelError as exc:
        err(str(exc))
        return 2
    control = ControlFile(settings.control_file).state()
    flag_on = bool(boot.flag_value(os.environ.get(boot.FLAG)))
    rows = [("TARGET", "RESOLVED", "WOULD PATCH", "MODE", "CONCURRENCY", "NOTE")]
    failures = 0
    sys.path.insert(0, os.path.dirname(settings.path or "") or os.getcwd())
    for target in settings.targets:
        if target.loop.path is not None:  # `python script.py` puts the script's folder first
            sys.path.insert(0, os.path.dirname(target.loop.path))
        note = _resolve_for_check(target.loop, target.fetch, target.replacement) or _items_problem(target)
        resolved = note is None
        failures += not resolved
        if not resolved:
            would = "no"
        elif not flag_on:
            would, note = "no", "flag is off"
        elif control.is_off(target.name):
            would, note = "no", control.problem or "switched off (sched-accel on)"
        else:
            would = "yes"
        rows.append((target.name, "yes" if resolved else "no", would, target.mode, str(target.concurrency), note or ""))
    if not settings.targets:
        say("no targets declared: add [[targets]] (or [[tool.sched_accel.targets]]) with loop = \"module:function\"")
        failures += 1
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        say("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
    if failures:
        err(f"{failures} problem(s) found; the app would run those targets unpatched")
        return 1
    return 0


def _resolve_for_check(*specs: object) -> str | None:
    for spec in specs:
        if not isinstance(spec, TargetSpec):
            continue
        if spec.path is not None:
            problem = _script_defines(spec.path, spec.qualname.split(".")[0])
            if problem:
                return f"{spec.text}: {problem}"
            continue
        assert spec.module is not None
        try:
            module = importlib.import_module(spec.module)
            spec.resolve(module)
        except SchedAccelError as exc:
            return str(exc)
        except Exception as exc:
            return f"{spec.text}: importing {spec.module} failed: {type(exc).__name__}: {exc}"
    return None


def _items_problem(target: Target) -> str | None:
    """Why prefetch mode could not find this target's items, or None."""
    items = target.items
    if target.mode != "prefetch" or items is None or isinstance(items, Learned):
        return None
    if isinstance(items, ReturnedBy):
        return _resolve_for_check(items.spec)
    if isinstance(items, ModuleObject):
        try:
            value: object = importlib.import_module(items.spec.module or "")
            for part in items.spec.qualname.split("."):
                value = getattr(value, part)
        except Exception as exc:
            return f"items = {items.text}: {type(exc).__name__}: {exc}"
        return None
    assert isinstance(items, Argument)
    if target.loop.module is None:
        return None  # a script's loop: its signature is checked when it runs
    try:
        function = target.loop.resolve(importlib.import_module(target.loop.module)).function
        parameters = list(inspect.signature(function).parameters)
    except Exception:
        return None  # the loop itself was already reported
    if target.loop.qualname.count(".") and parameters[:1] in (["self"], ["cls"]):
        parameters = parameters[1:]
    where = items.where
    if isinstance(where, int):
        if where >= len(parameters):
            return f"items = {where}: the loop takes only {len(parameters)} argument(s): {', '.join(parameters)}"
    elif where not in parameters:
        return f"items = {where!r}: the loop has no parameter of that name; it has {', '.join(parameters) or 'none'}"
    return None


def _script_defines(path: str, name: str) -> str | None:
    try:
        with open(path, encoding="utf-8") as file:
            tree = ast.parse(file.read(), path)
    except (OSError, SyntaxError, ValueError) as exc:
        return f"cannot read the script: {exc}"
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) and node.name == name:
            return None
    return f"the script defines no top-level {name!r}"
