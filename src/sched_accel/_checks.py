"""``sched-accel check``: load the config, import every target, say what would be patched.

Everything a target names is resolved here as the app would resolve it, each on its own:
the loop, the per-item call (``fetch``), the replacement, and where the items come from.
The table has one row per target; under it, one line per part (target, part, as declared,
status, detail), so that ``grep TARGET`` or ``grep ' problem '`` finds what matters::

      jobs:update_prices  loop   jobs:update_prices  ok    function, sync
      jobs:update_prices  fetch  jobs:get_price      note  calls print() (line 12): not run ahead; HTTP-level ...
      jobs:update_prices  items  argument 'tokens'   ok    the loop's parameter 'tokens'

The status is ``ok``, ``note`` (it works, not as declared: a ``fetch`` that writes is not
run ahead) or ``problem`` (the target's row says RESOLVED no, and the command exits 1).
"""

from __future__ import annotations

import ast
import importlib
import inspect
import os
import sys
from collections.abc import Callable, Sequence, Sized
from dataclasses import dataclass
from typing import Literal

import _sched_accel_boot as boot

from ._config import find_config, load_config
from ._coordination import CoordinationSettings
from ._exceptions import SchedAccelError
from ._prefetch import library_method, writes
from ._settings import Argument, Learned, ModuleObject, ReturnedBy, Settings, Target
from ._state import ControlFile
from ._targets import Resolved, TargetSpec, close_modules, did_you_mean

__all__ = ["check"]

Status = Literal["ok", "note", "problem"]


@dataclass(frozen=True, slots=True)
class Part:
    """One thing a target names (``loop``, ``fetch``, ``items``, ``replacement``), resolved."""

    name: str
    declared: str  # as the config says it
    status: Status
    detail: str


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
    status, line = coordination_line(settings.coordination, settings.state_dir)
    say(line)
    control = ControlFile(settings.control_file).state()
    flag_on = bool(boot.flag_value(os.environ.get(boot.FLAG)))
    rows = [("TARGET", "RESOLVED", "WOULD PATCH", "MODE", "CONCURRENCY", "NOTE")]
    lines: list[tuple[str, str, str, str, str]] = []
    failures = int(status == "problem")
    sys.path.insert(0, os.path.dirname(settings.path or "") or os.getcwd())
    for target in settings.targets:
        if target.loop.path is not None:  # `python script.py` puts the script's folder first
            sys.path.insert(0, os.path.dirname(target.loop.path))
        parts = _parts(target, settings)
        lines += [(target.name, p.name, p.declared, p.status, p.detail) for p in parts]
        problems = [p.name for p in parts if p.status == "problem"]
        note = f"problem: {', '.join(problems)} (see below)" if problems else None
        failures += bool(problems)
        if problems:
            would = "no"
        elif not flag_on:
            would, note = "no", "flag is off"
        elif control.is_off(target.name):
            would, note = "no", control.problem or "switched off (sched-accel on)"
        else:
            would = "yes"
        rows.append((target.name, "no" if problems else "yes", would, target.mode, str(target.concurrency), note or ""))
    if not settings.targets:
        say("no targets declared: add [[targets]] (or [[tool.sched_accel.targets]]) with loop = \"module:function\"")
        failures += 1
    _columns(say, rows)
    if lines:
        say("")
        _columns(say, lines, indent="  ")
    if failures:
        err(f"{failures} problem(s) found: the lines marked `problem` say what to fix; until then those targets "
            "are not accelerated as declared")
        return 1
    return 0


def _columns(say: Callable[[str], None], rows: Sequence[tuple[str, ...]], indent: str = "") -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        say(indent + "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


def _parts(target: Target, settings: Settings) -> list[Part]:
    """The target's loop, replacement, fetch, items and single_run, each resolved on its own."""
    loop, problem = _resolve(target.loop)
    parts = [_part("loop", target.loop, loop, problem)]
    if target.replacement is not None:
        parts.append(_part("replacement", target.replacement, *_resolve(target.replacement)))
    if target.fetch is not None or target.mode == "prefetch":
        parts.append(_fetch(target))
    if target.items is not None or target.mode == "prefetch":
        parts.append(_items(target, loop))
    if settings.runs_once(target):
        parts.append(_single_run(target, settings.coordination))
    return parts


def coordination_line(settings: CoordinationSettings, state_dir: str) -> tuple[Status, str]:
    """``coordination: <backend> (what it shares)`` and its status. Nothing is made or written:
    a Redis server is asked one read; the machine backend's store is named, not created."""
    if settings.kind == "process":
        return "ok", "coordination: process (nothing shared: each process keeps its own limits and runs every tick)"
    if settings.kind == "machine":
        from ._coord._machine import store_folder

        where = store_folder(state_dir)
        return "ok", f"coordination: machine (every process of this user on this machine, no server; store {where})"
    from ._coord import RedisBackend
    from ._coordination import redis_password
    from ._exceptions import CoordinationUnavailable

    try:
        assert settings.url is not None
        backend = RedisBackend(settings.url, password=redis_password(settings))
    except (CoordinationUnavailable, ValueError) as exc:  # redis-py missing: the command to run is in it
        return "problem", f"coordination: {settings.where}: problem: {exc}"
    try:
        backend.held("sched-accel-check")
        return "ok", f"coordination: {settings.where} (processes on any machine): ok, it answers"
    except CoordinationUnavailable as exc:
        more = "until it answers, single_run claims go to the machine backend"
        return "note", f"coordination: {settings.where}: note: it does not answer ({exc}); {more}"
    finally:
        backend.close()


def _single_run(target: Target, coordination: CoordinationSettings) -> Part:
    declared = "true" if target.single_run else "true ([coordination] single_run)"
    if target.tick is not None:
        declared += f", tick = {target.tick:g}"
        tick = f"ticks of {target.tick:g} s of the scheduled run time (APScheduler 3.x, schedule) or of the clock"
    else:
        tick = (
            "ticks of APScheduler 3.x's or schedule's scheduled run time (an interval job's interval, else each second); "
            "called from elsewhere, it runs in every process (declare tick)"
        )
    detail = f"one run per tick across the processes sharing the {coordination.where} backend; {tick}; a skipped call returns None"
    return Part("single_run", declared, "ok", detail)


def _resolve(spec: TargetSpec) -> tuple[Resolved | None, str | None]:
    """What ``spec`` names and why it does not resolve (a script's target: only the why)."""
    if spec.path is not None:
        return None, _script_defines(spec.path, spec.qualname.split(".")[0])
    assert spec.module is not None
    try:
        module = importlib.import_module(spec.module)
    except ModuleNotFoundError as exc:
        missing = exc.name or ""
        ours = missing == spec.module or spec.module.startswith(f"{missing}.")  # not one it imports
        close = did_you_mean(close_modules(missing)) if ours else ""
        return None, f"importing {spec.module} failed: {exc}{close}"
    except Exception as exc:  # noqa: BLE001 - the app's own import-time error, reported
        return None, f"importing {spec.module} failed: {type(exc).__name__}: {exc}"
    try:
        return spec.resolve(module), None
    except SchedAccelError as exc:
        return None, str(exc).removeprefix(f"{spec.text}: ")
    except Exception as exc:  # noqa: BLE001 - an attribute of the app's that raised when read
        return None, f"reading {spec.qualname} failed: {type(exc).__name__}: {exc}"


def _kind(resolved: Resolved) -> str:
    return f"{resolved.kind}, {'async' if resolved.is_async else 'sync'}"


def _part(name: str, spec: TargetSpec, resolved: Resolved | None, problem: str | None) -> Part:
    if problem is not None:
        return Part(name, spec.text, "problem", problem)
    if resolved is None:
        return Part(name, spec.text, "ok", "defined in the script (resolved when it runs)")
    return Part(name, spec.text, "ok", _kind(resolved))


def _fetch(target: Target) -> Part:
    """The per-item call: HTTP level, or a function that is run ahead only if it only reads."""
    spec = target.fetch
    if spec is None:
        methods = " and ".join(sorted(target.methods))
        return Part("fetch", "(none)", "ok", f"HTTP level: the loop's {methods} requests are sent ahead")
    resolved, problem = _resolve(spec)
    if problem is not None or resolved is None:
        return _part("fetch", spec, resolved, problem)
    library = library_method(resolved.function)
    if library is not None:
        instead = (
            'remove `fetch` (or say fetch = "http"): HTTP-level prefetch sends the loop\'s GET requests ahead'
            if target.mode == "prefetch"
            else "remove `fetch`"
        )
        return Part("fetch", spec.text, "problem", f"{library}; {instead}")
    if target.mode != "prefetch":
        return Part("fetch", spec.text, "ok", f"{_kind(resolved)}: its calls are counted")
    level = f"function level ({_kind(resolved)})"
    if target.pure:
        return Part("fetch", spec.text, "ok", f"{level}, pure = true (declared)")
    reason = writes(resolved.function)
    if reason is None:
        return Part("fetch", spec.text, "ok", f"{level}, pure as far as its code shows")
    return Part(
        "fetch", spec.text, "note", f"{reason}: not run ahead; HTTP-level prefetch instead; set pure = true if it only reads"
    )


def _items(target: Target, loop: Resolved | None) -> Part:
    """Where the items come from, found as the mode would find them."""
    items = target.items
    calls = "requests" if target.http else "per-item calls"
    if items is None:
        return Part("items", "(none)", "ok", f"learned: the {calls} of the loop's previous run (the default)")
    if isinstance(items, Learned):
        return Part("items", "learned", "ok", f"the {calls} of the loop's previous run")
    if isinstance(items, ReturnedBy):
        resolved, problem = _resolve(items.spec)
        part = _part("items", items.spec, resolved, problem)
        detail = part.detail if problem is not None else f"{part.detail}: what it returns inside the loop"
        return Part("items", f"returned-by:{items.spec.text}", part.status, detail)
    if isinstance(items, ModuleObject):
        try:
            value: object = importlib.import_module(items.spec.module or "")
            for part_name in items.spec.qualname.split("."):
                value = getattr(value, part_name)
            size = f" of {len(value)}" if isinstance(value, Sized) and not isinstance(value, str | bytes) else ""
        except Exception as exc:  # noqa: BLE001 - the app's own import-time error, reported
            return Part("items", items.spec.text, "problem", f"{type(exc).__name__}: {exc}")
        return Part("items", items.spec.text, "ok", f"a {type(value).__name__}{size}, read when the loop starts")
    assert isinstance(items, Argument)
    declared = f"argument {items.text}"
    if target.loop.path is not None:
        return Part("items", declared, "note", "not checked here: a script's loop is seen when it runs")
    if loop is None:
        return Part("items", declared, "note", "not checked: the loop does not resolve")
    try:
        parameters = list(inspect.signature(loop.function).parameters)
    except (TypeError, ValueError) as exc:  # no signature to read (a builtin)
        return Part("items", declared, "note", f"not checked: {exc}")
    if loop.kind in ("method", "classmethod"):
        parameters = parameters[1:]  # self or cls: bound, never an argument of the call
    where = items.where
    if isinstance(where, int):
        if where >= len(parameters):
            return Part("items", declared, "problem", f"the loop takes only {len(parameters)} argument(s): {', '.join(parameters)}")
        return Part("items", declared, "ok", f"the loop's parameter {parameters[where]!r}")
    if where not in parameters:
        return Part("items", declared, "problem", f"the loop has no parameter of that name; it has {', '.join(parameters) or 'none'}")
    return Part("items", declared, "ok", f"the loop's parameter {where!r}")


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
