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

A module is imported only when every file the import runs, and the folders it is taken from,
pass the config's trust rule; else its names are read from its source, never run
(:mod:`._unimported`), and the part says so: ``--trust-folder`` imports it anyway.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import os
import textwrap
from collections.abc import Callable, Sequence, Sized
from dataclasses import dataclass
from typing import Any, Literal

import _sched_accel_boot as boot

from ._config import find_config, load_config
from ._coordination import CoordinationSettings
from ._exceptions import ConfigError, SchedAccelError
from ._prefetch import library_method, mutations
from ._settings import Argument, Learned, ModuleObject, ReturnedBy, Settings, Target
from ._state import DISABLED_ENV
from ._targets import Resolved, TargetSpec, close_modules, did_you_mean
from ._unimported import TRUST_HINT, Defined, ImportGate, read_source
from ._unpatchable import refused_module

__all__ = ["check"]

Status = Literal["ok", "note", "problem"]


@dataclass(frozen=True, slots=True)
class Part:
    """One thing a target names (``loop``, ``fetch``, ``items``, ``replacement``), resolved."""

    name: str
    declared: str  # as the config says it
    status: Status
    detail: str


def check(say: Callable[[str], None], err: Callable[[str], None], flag_line: str, *, trust_folder: bool = False) -> int:
    """``sched-accel check``: 0 when every target resolves, else 1 (2: the config is unusable,
    or refused: nothing is imported then). ``trust_folder``: import even what fails the rule."""
    path = find_config()
    say(f"config: {path or 'none found'}")
    say(flag_line)
    try:
        settings = load_config()
    except ConfigError as exc:
        if len(exc.problems) > 1:  # one line each, in the order found (the log line holds them all in one)
            err(f"{os.path.abspath(path or '')}: {len(exc.problems)} problems:")
            for problem in exc.problems:
                err(f"  {problem}")
        else:
            err(str(exc))
        return 2
    except SchedAccelError as exc:
        err(str(exc))
        return 2
    status, line = coordination_line(settings.coordination, settings.state_dir)
    say(line)
    control = settings.controls().state()
    flag_on = bool(boot.flag_value(os.environ.get(boot.FLAG)))
    rows = [("TARGET", "RESOLVED", "WOULD PATCH", "MODE", "CONCURRENCY", "NOTE")]
    lines: list[tuple[str, str, str, str, str]] = []
    failures = int(status == "problem")
    gate = ImportGate(trust=trust_folder)
    gate.add(os.path.dirname(settings.path or "") or os.getcwd())
    for target in settings.targets:
        if target.loop.path is not None:  # `python script.py` puts the script's folder first
            gate.add(os.path.dirname(target.loop.path))
        parts = _parts(target, settings, gate)
        lines += [(target.name, p.name, p.declared, p.status, p.detail) for p in parts]
        problems = [p.name for p in parts if p.status == "problem"]
        note = f"problem: {', '.join(problems)} (see below)" if problems else None
        failures += bool(problems)
        if problems:
            would = "no"
        elif not flag_on:
            would, note = "no", "flag is off"
        elif control.is_off(target.name):
            would, note = "no", control.problem or _switched_off(control.switched_by(target.name), settings)
        else:
            would = "yes"
        rows.append((target.name, "no" if problems else "yes", would, target.mode, str(target.concurrency), note or ""))
    if not settings.targets:
        say('no targets declared: add [[targets]] (or [[tool.sched_accel.targets]]) with loop = "module:function"')
        failures += 1
    _columns(say, rows)
    if lines:
        say("")
        _columns(say, lines, indent="  ")
    if failures:
        err(
            f"{failures} problem(s) found: the lines marked `problem` say what to fix; until then those targets "
            "are not accelerated as declared"
        )
        return 1
    return 0


def _switched_off(by: str | None, settings: Settings) -> str:
    """What switched a target off, and what switches it back on."""
    if by == DISABLED_ENV:
        return f"switched off by ${DISABLED_ENV}"
    return f"switched off (sched-accel on{' --all-apps' if by == settings.control_file else ''})"


def _columns(say: Callable[[str], None], rows: Sequence[tuple[str, ...]], indent: str = "") -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        say(indent + "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


def _parts(target: Target, settings: Settings, gate: ImportGate) -> list[Part]:
    """The target's loop, replacement, fetch, items and single_run, each resolved on its own."""
    loop, problem = _resolve(target.loop, gate)
    parts = [_part("loop", target.loop, loop, problem)]
    if target.replacement is not None:
        parts.append(_part("replacement", target.replacement, *_resolve(target.replacement, gate)))
    if target.fetch is not None or target.mode == "prefetch":
        parts.append(_fetch(target, gate, loop if isinstance(loop, Resolved) else None))
    if target.items is not None or target.mode == "prefetch":
        parts.append(_items(target, loop, gate))
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
    from ._coordination import password_of
    from ._exceptions import CoordinationUnavailable

    assert settings.url is not None
    try:
        password = password_of(settings)
    except ValueError as exc:  # password_env names a variable that is not set
        return "problem", f"coordination: {settings.where}: problem: {exc}"
    about = f"coordination: {settings.where} ({_redis_server(settings.url, password.source)}"
    if password.withheld is not None:  # not sent by check either, and the server is not asked
        return "problem", f"{about}): problem: {password.withheld}"
    try:
        backend = RedisBackend(settings.url, password=password.value)
    except (CoordinationUnavailable, ValueError) as exc:  # redis-py missing: the command to run is in it
        return "problem", f"{about}): problem: {exc}"
    try:
        backend.held("sched-accel-check")
        return "ok", f"{about}; processes on any machine): ok, it answers"
    except CoordinationUnavailable as exc:
        more = "until it answers, single_run claims go to the machine backend"
        return "note", f"{about}): note: it does not answer ({exc}); {more}"
    finally:
        backend.close()


def _redis_server(url: str, password: str | None) -> str:
    """``server host:port``, how TLS checks it, and where its password comes from (never the password)."""
    from ._coord._redis import TLS_INSECURE_ENV, tls_insecure
    from ._credentials import server_of

    said = [f"server {server_of(url)}"]
    if url.lower().startswith("rediss:"):
        insecure = tls_insecure()
        said.append(
            f"TLS, its certificate NOT checked (${TLS_INSECURE_ENV}=1)" if insecure else "TLS, its certificate checked"
        )
    said.append(f"password from {password}" if password else "no password")
    return ", ".join(said)


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


def _resolve(spec: TargetSpec, gate: ImportGate) -> tuple[Resolved | Defined | None, str | None]:
    """What ``spec`` names and why it does not resolve (a script's target: only the why); read
    from its source (a :class:`Defined`) when importing it would run an untrusted file."""
    if spec.path is not None:
        return None, _script_defines(spec.path, spec.qualname.split(".")[0])
    assert spec.module is not None
    if spec.module == "__main__":  # whichever module runs as the program: here, sched-accel itself
        return None, (
            "__main__ is whatever module runs as the program (here, sched-accel itself), so it cannot be checked; "
            'name the module that holds the loop (loop = "pkg.job:' + spec.qualname + '": patched also when it '
            "runs as `python -m pkg.job`) or the script's path (loop = \"job.py:" + spec.qualname + '")'
        )
    if (why := gate.refusal(spec.module)) is not None:
        found = gate.from_source(spec.module, spec.qualname, why)
        return (found, None) if isinstance(found, Defined) else (None, found)
    try:
        module = _import(spec.module, gate)
    except ModuleNotFoundError as exc:
        missing = exc.name or ""
        ours = missing == spec.module or spec.module.startswith(f"{missing}.")  # not one it imports
        if not ours and (why := gate.refusal(missing)) is not None:  # left out of sys.path, not missing
            return None, f"importing {spec.module} failed: it imports {missing}, not imported: {why}; {TRUST_HINT}"
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


def _import(name: str, gate: ImportGate) -> Any:
    """Import a target's module, as the running app has it: in a Django project (its settings
    named by ``$DJANGO_SETTINGS_MODULE``, a module the trust rule lets us import), models can be
    imported only once Django is set up, as ``manage.py`` does before a command runs."""
    try:
        return importlib.import_module(name)
    except Exception as exc:
        settings = os.environ.get("DJANGO_SETTINGS_MODULE")
        if type(exc).__name__ != "AppRegistryNotReady" or not settings or gate.refusal(settings) is not None:
            raise
    importlib.import_module("django").setup()
    return importlib.import_module(name)


def _kind(resolved: Resolved) -> str:
    """``function, sync``; a framework's object says where it is patched (``celery task (run), sync``)."""
    return f"{resolved.described}, {'async' if resolved.is_async else 'sync'}"


def _part(name: str, spec: TargetSpec, resolved: Resolved | Defined | None, problem: str | None) -> Part:
    if problem is not None:
        return Part(name, spec.text, "problem", problem)
    if isinstance(resolved, Defined):
        return Part(name, spec.text, "note", resolved.detail)
    if resolved is None:
        return Part(name, spec.text, "ok", "defined in the script (resolved when it runs)")
    return Part(name, spec.text, "ok", _kind(resolved))


def _fetch(target: Target, gate: ImportGate, loop: Resolved | None = None) -> Part:
    """The per-item call: HTTP level, a shadowed function (unless its shadow could change state
    the real run reads), or one whose return value is served (``pure = true``)."""
    spec = target.fetch
    if spec is None:
        methods = " and ".join(sorted(target.methods))
        detail = f"HTTP level: the loop's {methods} requests are sent ahead"
        if loop is not None and (name := suggested_fetch(loop.function)) is not None:
            detail += (
                f'; its code calls {name} with each item: fetch = "{name}" runs it ahead as a shadow (its reads '
                "and the requests that depend on them)"
            )
        return Part("fetch", "(none)", "ok", detail)
    resolved, problem = _resolve(spec, gate)
    if problem is not None or not isinstance(resolved, Resolved):
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
    if target.pure:
        return Part(
            "fetch",
            spec.text,
            "ok",
            f"function level ({_kind(resolved)}), pure = true (declared): its return value is served",
        )
    shadowed = (
        f"shadowed ({_kind(resolved)}): run ahead for its reads, its effects stopped; the real call runs in place"
    )
    if target.shadow:
        return Part("fetch", spec.text, "ok", f"{shadowed} (shadow = true, declared)")
    verdict = mutations(resolved.function)
    if verdict.ok:
        return Part(
            "fetch", spec.text, "ok", f"{shadowed}; it changes no state outside itself as far as its code shows"
        )
    return Part(
        "fetch",
        spec.text,
        "note",
        f"{verdict.why}: a shadow could change what the real run reads, so HTTP-level prefetch instead; "
        "set shadow = true if the real run does not read that state",
    )


def suggested_items(function: Callable[..., Any]) -> str | None:
    """The parameter the function's first ``for`` loop (or comprehension) iterates over, read
    from its source: a suggestion for ``items``, never a decision (``discover`` sees it run)."""
    try:
        plain = inspect.unwrap(function)
        tree = ast.parse(textwrap.dedent(inspect.getsource(plain)))
        parameters = set(inspect.signature(plain).parameters) - {"self", "cls"}
    except Exception:  # noqa: BLE001 - no source (a builtin, a REPL function), or none that parses
        return None
    for node in ast.walk(tree):
        loops = (
            [node.iter]
            if isinstance(node, ast.For | ast.AsyncFor)
            else (
                [g.iter for g in node.generators]
                if isinstance(node, ast.ListComp | ast.SetComp | ast.DictComp | ast.GeneratorExp)
                else []
            )
        )
        for source in loops:
            if isinstance(source, ast.Name) and source.id in parameters:
                return source.id
    return None


def suggested_fetch(function: Callable[..., Any]) -> str | None:
    """``module:qualname`` of the app's function that the loop's first ``for`` loop (or
    comprehension) calls with the loop's variable, read from its source and looked up in the
    loop's module: a suggestion for ``fetch``; None when it calls none by a plain name."""
    try:
        plain = inspect.unwrap(function)
        tree = ast.parse(textwrap.dedent(inspect.getsource(plain)))
        names = getattr(plain, "__globals__", {})
    except Exception:  # noqa: BLE001 - no source, or none that parses
        return None
    for node in ast.walk(tree):
        body: list[ast.AST]
        if isinstance(node, ast.For | ast.AsyncFor):
            variable, body = node.target, list(node.body)
        elif isinstance(node, ast.ListComp | ast.SetComp | ast.GeneratorExp):
            variable, body = node.generators[0].target, [node.elt]
        else:
            continue
        if not isinstance(variable, ast.Name):
            continue
        for statement in body:
            for call in ast.walk(statement):
                if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Name)):
                    continue
                if not any(isinstance(arg, ast.Name) and arg.id == variable.id for arg in call.args):
                    continue
                found = names.get(call.func.id)
                module, qualname = getattr(found, "__module__", None), getattr(found, "__qualname__", "")
                if (
                    inspect.isfunction(found)
                    and isinstance(module, str)
                    and "<" not in qualname
                    and module != "__main__"
                    and library_method(found) is None
                    and refused_module(module, "fetch") is None
                ):
                    return f"{module}:{qualname}"
        return None  # the first loop only
    return None


def _items(target: Target, loop: Resolved | Defined | None, gate: ImportGate) -> Part:
    """Where the items come from, found as the mode would find them."""
    items = target.items
    calls = "requests" if target.http else "per-item calls"
    if items is None:
        detail = f"learned: the {calls} of the loop's previous run (the default)"
        if isinstance(loop, Resolved) and (name := suggested_items(loop.function)) is not None:
            detail += (
                f'; its code loops over its parameter {name}: items = "{name}" prefetches from the first run '
                "(`sched-accel discover -- COMMAND` confirms it from a real run)"
            )
        return Part("items", "(none)", "ok", detail)
    if isinstance(items, Learned):
        return Part("items", "learned", "ok", f"the {calls} of the loop's previous run")
    if isinstance(items, ReturnedBy):
        resolved, problem = _resolve(items.spec, gate)
        part = _part("items", items.spec, resolved, problem)
        detail = f"{part.detail}: what it returns inside the loop" if isinstance(resolved, Resolved) else part.detail
        return Part("items", f"returned-by:{items.spec.text}", part.status, detail)
    if isinstance(items, ModuleObject):
        if (why := gate.refusal(items.spec.module or "")) is not None:
            found = gate.from_source(items.spec.module or "", items.spec.qualname, why)
            if isinstance(found, Defined):
                return Part("items", items.spec.text, "note", f"read when the loop starts: {found.detail}")
            return Part("items", items.spec.text, "problem", found)
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
    if isinstance(loop, Defined):  # from its source: self or cls already left out
        if loop.parameters is None:
            return Part("items", declared, "note", f"not checked: in its source the loop is no function ({loop.what})")
        parameters = list(loop.parameters)
    else:
        try:
            parameters = list(inspect.signature(loop.function).parameters)
        except (TypeError, ValueError) as exc:  # no signature to read (a builtin)
            return Part("items", declared, "note", f"not checked: {exc}")
        if loop.kind in ("method", "classmethod"):
            parameters = parameters[1:]  # self or cls: bound, never an argument of the call
    where = items.where
    if isinstance(where, int):
        if where >= len(parameters):
            return Part(
                "items",
                declared,
                "problem",
                f"the loop takes only {len(parameters)} argument(s): {', '.join(parameters)}",
            )
        return Part("items", declared, "ok", f"the loop's parameter {parameters[where]!r}")
    if where not in parameters:
        return Part(
            "items",
            declared,
            "problem",
            f"the loop has no parameter of that name; it has {', '.join(parameters) or 'none'}",
        )
    return Part("items", declared, "ok", f"the loop's parameter {where!r}")


def _script_defines(path: str, name: str) -> str | None:
    try:  # read, never run (and never waited on: a FIFO)
        tree = ast.parse(read_source(path), path)
    except (OSError, SyntaxError, ValueError) as exc:
        return f"cannot read the script: {exc}"
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) and node.name == name:
            return None
    return f"the script defines no top-level {name!r}"
