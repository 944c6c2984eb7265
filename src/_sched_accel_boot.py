"""sched_accel's start-up hook: the only code of ours that runs in every interpreter.

Run by ``sched_accel.pth`` (an import line, which first checks that the flag is set at
all) and by ``sched_accel.start`` (PEP 829, Python 3.15+), it imports nothing beyond ``os``
and ``sys`` (loaded at start-up) and the builtins ``_thread`` (the watcher's lock) and
``atexit`` (the line saying a target's module was never imported):

- flag unset or off: return at once;
- flag on, no config: one plain ``sched_accel.no_config`` line (where it looked), nothing more;
- flag on: find the config, pre-scan its text for the modules that hold the declared loops,
  and watch for their import. The real TOML parse, wrapt and loguru are loaded only when one
  of them is imported (or ``__main__`` is a target): a process that runs none pays ~nothing.

The package itself takes the flag's values and where the config is found from here.
"""

from __future__ import annotations

import _thread
import atexit
import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover - typing only, never imported at run time
    from collections.abc import Callable, Sequence
    from importlib.abc import Loader
    from importlib.machinery import ModuleSpec
    from types import ModuleType

FLAG = "ENABLE_SCHEDULER_OPTIMIZATION"
CONFIG_ENV = "SCHED_ACCEL_CONFIG"
PROBE_ENV = "SCHED_ACCEL_PROBE"
#: Schedulers whose import, while a target's module is awaited, installs sched_accel so that its
#: first tick can say which targets still wait (``_activation._watch_first_tick``).
SCHEDULERS = ("apscheduler.schedulers.base", "schedule")
MAX_CONFIG_BYTES = 1024 * 1024  # a config is a few dozen lines: the loader refuses a larger file
TRUE_VALUES = frozenset({"1", "true", "yes", "on"})
FALSE_VALUES = frozenset({"", "0", "false", "no", "off"})

_booted = False


def flag_value(value: str | None) -> bool | None:
    """True or False for a recognised flag value (any case), None for anything else."""
    value = (value or "").strip().lower()  # unset: off
    return True if value in TRUE_VALUES else False if value in FALSE_VALUES else None


def find_config(cwd: str | None = None) -> str | None:
    """$SCHED_ACCEL_CONFIG, else ./sched_accel.toml, else a ./pyproject.toml with a [tool.sched_accel]
    table, else None. Not trusted yet: the loader refuses it in one line (a symlink, a FIFO...)."""
    if named := os.environ.get(CONFIG_ENV):
        return os.path.abspath(named)
    cwd = cwd if cwd is not None else os.getcwd()
    standalone = os.path.join(cwd, "sched_accel.toml")
    if os.path.lexists(standalone):
        return standalone
    pyproject = os.path.join(cwd, "pyproject.toml")
    text = read_text(pyproject, follow=os.path.islink(pyproject))  # a symlink: only to see if it is ours
    if text is not None:
        return pyproject if "tool.sched_accel" in text else None
    special = os.path.exists(pyproject) and not os.path.isfile(pyproject) and not os.path.isdir(pyproject)
    return pyproject if special else None  # a FIFO or a device, never read: for the loader to refuse


def read_text(path: str, *, follow: bool = False) -> str | None:
    """The text of the regular file ``path`` (at most one byte past the largest config), or None: not a
    regular file (opened non-blocking: never waited on), a symlink unless ``follow``, unreadable, not UTF-8."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | (0 if follow else os.O_NOFOLLOW))
    except (OSError, ValueError):
        return None
    try:
        with open(fd, encoding="utf-8", closefd=False) as file:  # S_ISREG, without importing stat:
            return file.read(MAX_CONFIG_BYTES + 1) if os.fstat(fd).st_mode & 0o170000 == 0o100000 else None
    except (OSError, ValueError):
        return None
    finally:
        os.close(fd)


def prescan(text: str) -> list[str]:
    """Every one-line string value of a ``loop`` key in a TOML text, without parsing it.

    It may find more than the real parse (a commented-out line), never fewer for a value
    written as a plain one-line string; the config loader checks that every loop is so.
    """
    found: list[str] = []
    start = 0
    while True:
        at = text.find("loop", start)
        if at < 0:
            return found
        start = at + 4
        before = text[at - 1] if at else "\n"
        if before.isalnum() or before in "_-":
            continue
        pos = start
        if pos < len(text) and text[pos] in "\"'" and text[at - 1 : at] == text[pos]:
            pos += 1  # a quoted key: "loop" = ...
        while pos < len(text) and text[pos] in " \t":
            pos += 1
        if pos >= len(text) or text[pos] != "=":
            continue
        pos += 1
        while pos < len(text) and text[pos] in " \t":
            pos += 1
        if pos >= len(text) or text[pos] not in "\"'":
            continue
        end = text.find(text[pos], pos + 1)
        newline = text.find("\n", pos)
        if end < 0 or (0 <= newline < end):
            continue
        found.append(text[pos + 1 : end])


def split_target(spec: str) -> tuple[str, str]:
    """``"pkg.mod:Class.func"`` -> ``("pkg.mod", "Class.func")``; also for ``path.py:func``."""
    where, sep, qualname = spec.rpartition(":")
    return (where, qualname) if sep else (spec, "")


def is_path(where: str) -> bool:
    """Whether the module part of a target names a script file rather than a module."""
    return where.endswith(".py") or "/" in where or os.sep in where


def main_module_name() -> str | None:
    """The module run as ``__main__`` by ``python -m NAME``, from the original argv."""
    argv: list[str] = list(getattr(sys, "orig_argv", ()))
    for index, arg in enumerate(argv[1:], start=1):
        if arg == "-m":
            return argv[index + 1] if index + 1 < len(argv) else None
        if arg.startswith("-m") and len(arg) > 2:
            return arg[2:]
        if arg in ("-c", "-") or not arg.startswith("-"):
            return None
    return None


def main_script_path() -> str | None:
    """The real path of the script run as ``__main__`` (``python job.py``), if any."""
    argv0 = sys.argv[0] if sys.argv else ""
    if main_module_name() is not None or not argv0 or argv0 in ("-c", "-m", "-"):
        return None
    return os.path.realpath(argv0)


def main_module_path() -> str | None:
    """The real path ``python -m pkg.job`` runs from the working folder (which ``-m`` puts first
    on ``sys.path``, after the start-up hook has run), found by its name alone (nothing
    imported): ``pkg/job.py``, else ``pkg/job/__main__.py``; None when it is not there (a
    module from elsewhere on the path) or no ``-m`` was given."""
    name = main_module_name()
    if not name or sys.flags.safe_path:
        return None
    base = os.path.join(os.getcwd(), *name.split("."))
    for candidate in (base + ".py", os.path.join(base, "__main__.py")):
        if os.path.isfile(candidate):
            return os.path.realpath(candidate)
    return None


class _Loader:
    """Stands in for a watched module's loader just long enough to call back after it ran."""

    def __init__(self, loader: Loader, watcher: ImportWatcher) -> None:
        self._loader = loader
        self._watcher = watcher

    def __getattr__(self, name: str) -> object:
        return getattr(self._loader, name)

    def create_module(self, spec: ModuleSpec) -> ModuleType | None:
        create = getattr(self._loader, "create_module", None)
        return create(spec) if create is not None else None

    def exec_module(self, module: ModuleType) -> None:
        # Put the real loader back first, so the module never sees us; as wrapt's importer does,
        # only where the import system put us (or nothing), and only where the module lets us.
        if getattr(module, "__loader__", None) in (None, self):
            try:
                module.__loader__ = self._loader
            except AttributeError:
                pass
        spec = getattr(module, "__spec__", None)
        if spec is not None and getattr(spec, "loader", None) is self:
            spec.loader = self._loader
        self._loader.exec_module(module)
        self._watcher.fire(module.__name__, module)


class ImportWatcher:
    """A meta path finder that calls back once a watched module has been executed.

    Like wrapt's post-import hooks, without wrapt: one dict look-up per import. A module is in
    ``sys.modules`` while its body runs (``__spec__._initializing``): watched then, it is called
    back after, by our loader or else by :meth:`settle`. One lock guards the state (imports and
    ``watch`` may come from several threads); callbacks run outside it, so that one that imports,
    or starts a thread that watches, cannot deadlock. One that raises is reported, never raised.
    """

    def __init__(self) -> None:
        self._lock = _thread.RLock()
        self._callbacks: dict[str, list[Callable[[ModuleType], object]]] = {}
        self._searching: set[str] = set()
        self._half: dict[str, ModuleType] = {}  # watched while half-loaded
        self._ran: dict[str, ModuleType] = {}  # whose body has run through our loader

    def watch(self, name: str, callback: Callable[[ModuleType], object]) -> None:
        """Call ``callback(module)`` once ``name`` is imported, or now if it already is."""
        with self._lock:
            module = sys.modules.get(name)
            if module is None or self._loading(name, module):
                self._callbacks.setdefault(name, []).append(callback)
                if self not in sys.meta_path:
                    sys.meta_path.insert(0, self)
                # An import past this finder (started before anything was watched, here or in
                # another thread: install() at the bottom of the module that holds the loop) is
                # in sys.modules while it runs: called back when its import ends, else by settle().
                if (module := sys.modules.get(name)) is not None:
                    self._half[name] = module
                    _tell_when_run(self, name, module)
                module = None
        if module is not None:
            _guarded(callback, module)
        self.settle()

    def watching(self) -> list[str]:
        """The names still awaited."""
        with self._lock:
            return sorted(self._callbacks)

    def clear(self) -> None:
        """Forget every pending callback and leave ``sys.meta_path``."""
        with self._lock:
            self._callbacks.clear()
            self._half.clear()
            if self in sys.meta_path:
                sys.meta_path.remove(self)

    def fire(self, name: str, module: ModuleType) -> None:
        """Call back for ``name``, whose body has just run, then :meth:`settle`."""
        with self._lock:
            self._ran[name] = module  # settle() forgets it as half-loaded
            callbacks = self._callbacks.pop(name, ())
        for callback in callbacks:
            _guarded(callback, module)
        self.settle()

    def settle(self) -> None:
        """Call back for the modules watched half-loaded that have run since (not a failed one)."""
        if not self._half:
            return
        due: list[tuple[Callable[[ModuleType], object], ModuleType]] = []
        with self._lock:
            for name in [n for n, m in self._half.items() if not self._loading(n, m)]:
                del self._half[name]
                if (current := sys.modules.get(name)) is not None:
                    due += [(callback, current) for callback in self._callbacks.pop(name, [])]
        for callback, current in due:
            _guarded(callback, current)

    def _loading(self, name: str, module: ModuleType) -> bool:
        """Whether ``module``, or what ``sys.modules`` holds as ``name`` now, is still running."""
        running = [m for m in (module, sys.modules.get(name)) if self._ran.get(name) is not m]
        return any(getattr(getattr(m, "__spec__", None), "_initializing", False) for m in running)

    def find_spec(
        self, fullname: str, path: Sequence[str] | None = None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        with self._lock:
            # Ours if watched, or if a module watched half-loaded has run since: settle then.
            idle = not self._half or all(self._loading(n, m) for n, m in self._half.items())
            if (fullname not in self._callbacks and idle) or fullname in self._searching:
                return None
            self._searching.add(fullname)
        try:  # the first spec another finder gives
            finders = [f for f in sys.meta_path if f is not self and getattr(f, "find_spec", None)]
            found = (finder.find_spec(fullname, path, target) for finder in finders)
            spec: ModuleSpec | None = next((s for s in found if s is not None), None)
        finally:
            with self._lock:
                self._searching.discard(fullname)
        loader: Loader | None = getattr(spec, "loader", None)
        if spec is None or loader is None or not hasattr(loader, "exec_module"):
            return None
        if isinstance(loader, _Loader):
            return spec  # already ours
        # Duck typing: the import system needs only exec_module; typeshed names the ABC.
        spec.loader = _Loader(loader, self)  # type: ignore[assignment]
        return spec


watcher = ImportWatcher()

#: Per ModuleSpec class, its subclass that tells when an import ends; per such spec (by id),
#: the watchers to tell.
_ENDING: dict[type, type] = {}
_TELL: dict[int, list[ImportWatcher]] = {}


def _tell_when_run(watcher: ImportWatcher, name: str, module: ModuleType) -> None:
    """Have the import that is running ``module``'s body call ``watcher`` back as it ends.

    The import began before the watcher was on ``sys.meta_path``, so its loader is not ours
    (``install()`` at the bottom of the module that holds the loop). The import system ends
    every import by setting ``__spec__._initializing = False``
    (``importlib._bootstrap._load_unlocked``): the spec's class is swapped, for that moment
    only, for a subclass whose ``__setattr__`` sees it, then swapped back. Any other spec
    (none, or a third party's class) is left alone: :meth:`ImportWatcher.settle` still calls back.
    """
    spec = getattr(module, "__spec__", None)
    kind = type(spec)
    if getattr(spec, "_initializing", False) is not True:
        return
    if kind not in _ENDING.values():  # not swapped yet: only the import system's own class
        if kind.__name__ != "ModuleSpec" or kind.__module__ not in ("importlib._bootstrap", "_frozen_importlib"):
            return
        ending = _ENDING.get(kind)
        if ending is None:

            def __setattr__(self: ModuleSpec, key: str, value: object) -> None:
                object.__setattr__(self, key, value)  # ModuleSpec has no __setattr__ of its own
                if key == "_initializing" and not value:
                    object.__setattr__(self, "__class__", kind)
                    _ended(self.name, _TELL.pop(id(self), []))

            ending = _ENDING[kind] = type("ModuleSpec", (kind,), {"__slots__": (), "__setattr__": __setattr__})
        object.__setattr__(spec, "__class__", ending)
    told = _TELL.setdefault(id(spec), [])
    if watcher not in told:
        told.append(watcher)


def _ended(name: str, watchers: list[ImportWatcher]) -> None:
    """An import of ``name`` watched half-loaded has ended: call back if it succeeded."""
    module = sys.modules.get(name)
    for each in watchers:
        try:
            if module is not None:
                each.fire(name, module)
            else:
                each.settle()
        except Exception as exc:  # never break the host's import
            internal_error("post-import hook", exc)


def _guarded(callback: Callable[[ModuleType], object], module: ModuleType) -> None:
    try:
        callback(module)
    except Exception as exc:  # never break the host's import
        internal_error("post-import hook", exc)


def internal_error(where: str, exc: BaseException) -> None:
    """Report a failure of our own machinery in one line; the host app goes on unpatched."""
    try:
        from sched_accel._log import internal_error as report

        report(where, exc)
    except Exception:  # our logging itself is broken: fall back to one plain line
        sys.stderr.write(
            f"sched_accel.internal_error where={where!r} error={exc!r}: "
            "sched_accel stays out of the way; please report this\n"
        )


def _on_target_imported(module: ModuleType) -> None:
    from sched_accel._activation import activate_from_boot

    activate_from_boot()


def _is_cli() -> bool:
    """Whether this process is the ``sched-accel`` command, which reports on the hook and
    must not patch (or log from) itself."""
    cli = main_module_name() == "sched_accel"
    return cli or (bool(sys.argv) and os.path.basename(sys.argv[0]) == "sched-accel")


def boot() -> None:
    """The start-up hook. Idempotent: a ``.pth`` line may be processed twice."""
    global _booted
    if _booted:
        return
    _booted = True
    discover = os.environ.get("SCHED_ACCEL_DISCOVER")
    if discover and not sys.flags.ignore_environment and not _is_cli():
        _discover(discover)
        return
    raw = os.environ.get(FLAG)
    if raw is None or sys.flags.ignore_environment or _is_cli():  # -E and -I: the environment is not the app's say
        return
    state = flag_value(raw)
    try:
        if state is None:
            from sched_accel._events import FLAG_INVALID
            from sched_accel._log import event

            event(
                FLAG_INVALID,
                f"{FLAG}={raw!r} is not a recognised value, so sched_accel stays off; "
                f"use one of {', '.join(sorted(TRUE_VALUES))} to turn it on",
                value=raw,
            )
            return
        if not state or os.environ.get(PROBE_ENV):
            return
        _start()
    except Exception as exc:
        internal_error("boot", exc)


def _discover(folder: str) -> None:
    """``sched-accel discover``: record this process's requests (nothing is accelerated)."""
    try:
        from sched_accel._discover import start

        start(folder, watcher.watch)
    except Exception as exc:
        internal_error("discover", exc)


def _say(line: str) -> None:
    """One line of ours before anything is loaded (no logging configured yet): plain, to stderr."""
    try:
        sys.stderr.write(f"sched_accel.{line}\n")
        sys.stderr.flush()
    except Exception:  # a closed or missing stderr: nothing to say it on
        pass


def _start() -> None:
    path = find_config()
    if path is None:
        # The flag is on and nothing here names a config: said in one line (nothing is loaded
        # for it), so an on-call engineer can tell "no config" from "not installed".
        cwd = os.getcwd()
        looked = ", ".join(
            [
                f"${CONFIG_ENV} (unset)",
                os.path.join(cwd, "sched_accel.toml"),
                os.path.join(cwd, "pyproject.toml") + " [tool.sched_accel]",
            ]
        )
        _say(
            f"no_config cwd={cwd!r} looked_in={looked!r} pid={os.getpid()} - {FLAG} is on, but no config was found at "
            "start, so nothing is patched unless the app calls sched_accel.install() with one; set "
            f"{CONFIG_ENV}=/path/to/sched_accel.toml, or start the app from the folder that holds it"
        )
        return
    text = read_text(path)  # None: the full loader says why (and refuses a file too large)
    loops = prescan(text) if text else []
    places = {split_target(spec)[0] for spec in loops}
    modules = {where for where in places if not is_path(where)}
    script = main_script_path() or main_module_path()  # a path-form loop is run by path or by -m
    base = os.path.dirname(path)
    scripts = {os.path.realpath(os.path.join(base, where)) for where in places - modules}
    if not places or main_module_name() in modules or (script is not None and script in scripts):
        # Nothing to wait for (the full loader says why), or the job itself is a target.
        _on_target_imported(sys.modules["__main__"])
        return
    for name in sorted(modules):
        watcher.watch(name, _on_target_imported)
    for name in SCHEDULERS:  # a scheduler imported while the targets' modules are not: install, to say
        watcher.watch(name, _on_target_imported)  # at its first tick which still are not (a typo shows there)
    atexit.register(_never_imported, sorted(modules), path)


def _never_imported(modules: Sequence[str], path: str) -> None:
    """At exit: the modules of declared loops that this process never imported, when nothing
    was installed (else ``_activation`` says which targets were never patched)."""
    activation = sys.modules.get("sched_accel._activation")
    if activation is not None and getattr(activation, "is_active", lambda: False)():
        return
    missing = [name for name in modules if name not in sys.modules]
    if missing:
        _say(
            f"never_imported config={path!r} modules={','.join(missing)} pid={os.getpid()} - this process never "
            "imported the module of any declared loop, so nothing was patched; if it should have, check the module "
            f"names (`sched-accel check` lists what resolves){script_hint(missing, path)}"
        )


def script_hint(missing: Sequence[str], config: str) -> str:
    """When a module never imported is this process's own script (``python job.py`` runs
    ``job.py`` as ``__main__``, never as ``job``): how to name its loop instead."""
    script = main_script_path()
    if script is None:
        return ""
    stem = os.path.splitext(os.path.basename(script))[0]
    for name in missing:
        if name.rpartition(".")[2] == stem:
            where = os.path.relpath(script, os.path.dirname(config))
            return (
                f"; {name} is this process's main script ({script}), which Python runs as __main__, never as "
                f'{name}: name its loop by path, loop = "{where}:<function>"'
            )
    return ""
