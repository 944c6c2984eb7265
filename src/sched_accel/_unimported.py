"""What ``sched-accel check`` may import, and what it learns of a module it may not.

``check`` is a read-only diagnostic, often run by an operator (root included) in a folder
that is not theirs; importing a target runs that folder's code. So it imports a module only
when every file the import would run passes the config's trust rule (``_state._trust``:
owned by the user or root, writable by nobody else, in folders only they can change), with
a ``sys.path`` of folders that pass it too (a trusted module's own imports cannot be taken
from a folder anybody can write). Otherwise the names are resolved from the source:

- :meth:`ImportGate.refusal` finds the files an import would run (each package on the way,
  the module, its cached bytecode) by asking the finders the import system asks, level by
  level with the search path of the parent found the same way, so nothing runs
  (``importlib.util.find_spec("a.b")`` would import ``a``), and says why one fails the rule;
- :meth:`ImportGate.from_source` reads the module's source, never following a symlink nor
  waiting on a FIFO, and finds the name with ``ast``: a :class:`Defined`, never executed.

``check --trust-folder`` lifts all of this: every folder is searched and every module imported.
"""

from __future__ import annotations

import ast
import difflib
import importlib.machinery
import os
import stat
import sys
from dataclasses import dataclass
from importlib.machinery import ModuleSpec

from ._state._trust import CONFIG, Refused, check_file, check_folders

__all__ = ["TRUST_HINT", "Defined", "ImportGate", "read_source"]

#: What to run to import anyway, named in every part resolved from source.
TRUST_HINT = "run `sched-accel check --trust-folder` to import it"
#: A module's source larger than this is not read (no module is anywhere near it).
MAX_SOURCE_BYTES = 16 * 1024 * 1024
_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC


@dataclass(frozen=True, slots=True)
class Defined:
    """A name found in a module's source, which was not run: what it is and where."""

    what: str  # "function, sync", "method, async", "class", "assigned value", "imported name"
    line: int
    parameters: tuple[str, ...] | None  # a function's, as a call passes them (self or cls left out)
    why: str  # why the module was not imported

    @property
    def detail(self) -> str:
        """The part's line in ``check``: what it is, then why it was not imported."""
        return f"{self.what} (line {self.line}); resolved from source, not imported: {self.why}; {TRUST_HINT}"


def read_source(path: str) -> str:
    """The text of a source file: a regular file, not through a symlink, never waited on
    (a FIFO), at most :data:`MAX_SOURCE_BYTES`; OSError or ValueError saying why not."""
    fd = os.open(path, _FLAGS)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise OSError(f"{path} is not a regular file")
        if st.st_size > MAX_SOURCE_BYTES:
            raise OSError(f"{path} is larger than {MAX_SOURCE_BYTES // 1024 // 1024} MiB")
        with os.fdopen(fd, "rb", closefd=False) as file:
            return file.read(MAX_SOURCE_BYTES + 1).decode("utf-8")
    finally:
        os.close(fd)


class ImportGate:
    """Which modules ``check`` imports. Made once per run: it takes from ``sys.path`` the
    folders that fail the rule (they are still searched, to read sources from them)."""

    def __init__(self, *, trust: bool = False) -> None:
        self.trust = trust
        self.search = list(sys.path)  # where an import would look, trusted or not
        if not trust:
            sys.path[:] = [entry for entry in sys.path if _folder_refusal(entry) is None]

    def add(self, folder: str) -> None:
        """Put ``folder`` first, as ``python script.py`` or the config's folder would; on
        ``sys.path`` only when it passes the rule (or everything is trusted)."""
        self.search.insert(0, folder)
        if self.trust or _folder_refusal(folder) is None:
            sys.path.insert(0, folder)

    def refusal(self, name: str) -> str | None:
        """Why importing module ``name`` would run a file that fails the rule, or None: import
        it (a module already imported, or not found, which the import then reports)."""
        if self.trust:
            return None
        try:
            files, _, _ = self._locate(name)
        except Exception as exc:  # noqa: BLE001 - a finder of the environment's that failed: not imported
            return f"cannot tell which files importing {name} runs ({type(exc).__name__}: {exc})"
        for path in files:
            try:
                check_file(path, CONFIG)
            except Refused as exc:
                return f"{exc.path} {exc.why}"
        return None

    def from_source(self, name: str, qualname: str, why: str) -> Defined | str:
        """``qualname`` as module ``name``'s source defines it, or why it cannot be found there."""
        unimported = f"resolved from source, not imported: {why}; {TRUST_HINT}"
        try:
            _, source, missing = self._locate(name)
        except Exception:  # noqa: BLE001 - said by refusal() already
            return unimported
        if missing is not None:
            return f"no module named {missing!r} found (searched without importing); {unimported}"
        if source is None:
            return f"{name} has no Python source to read; {unimported}"
        try:
            tree = ast.parse(read_source(source), source)
        except (OSError, ValueError, SyntaxError) as exc:
            return f"cannot read its source: {exc}; {unimported}"
        found = _defined(tree, name, qualname.split("."), why)
        return found if isinstance(found, Defined) else f"{found}; {unimported}"

    def _locate(self, name: str) -> tuple[list[str], str | None, str | None]:
        """The files importing ``name`` would run, its source file, and the first module on
        the way that is not found (None when all are)."""
        files: list[str] = []
        path: list[str] | None = None
        spec: ModuleSpec | None = None
        parts = name.split(".")
        for depth in range(len(parts)):
            fullname = ".".join(parts[: depth + 1])
            module = sys.modules.get(fullname)
            if module is not None:  # already run: importing it again runs nothing
                spec = getattr(module, "__spec__", None)
                path = getattr(module, "__path__", None)
                continue
            spec = self._find(fullname, path)
            if spec is None:
                return files, None, fullname
            if spec.has_location and spec.origin:
                files.append(spec.origin)
                if spec.cached and os.path.lexists(spec.cached):
                    files.append(spec.cached)
            locations = spec.submodule_search_locations
            path = list(locations) if locations is not None else None
            if path is None and depth < len(parts) - 1:
                return files, None, ".".join(parts[: depth + 2])
        origin = spec.origin if spec is not None else None
        return files, origin if origin and origin.endswith(".py") else None, None

    def _find(self, fullname: str, path: list[str] | None) -> ModuleSpec | None:
        """The spec the import system would find: the same finders, none of them importing."""
        for finder in sys.meta_path:
            find = getattr(finder, "find_spec", None)
            if find is None:
                continue
            if finder is importlib.machinery.PathFinder:
                spec = importlib.machinery.PathFinder.find_spec(fullname, path if path is not None else self.search)
            else:
                spec = find(fullname, path)
            if spec is not None:
                return spec
        return None


def _folder_refusal(entry: str) -> str | None:
    """Why imports may not be taken from the ``sys.path`` entry ``entry``, or None."""
    folder = os.path.abspath(entry or os.curdir)
    try:
        if os.path.isfile(folder):  # a zip archive
            check_file(folder, CONFIG)
        elif check_folders(os.path.join(folder, "__init__.py"), CONFIG):
            return f"{folder} is writable by anybody: anybody could add a module to it"
    except Refused as exc:
        return f"{exc.path} {exc.why}"
    return None


def _defined(tree: ast.Module, module: str, parts: list[str], why: str) -> Defined | str:
    """The :class:`Defined` ``parts`` names in ``tree`` (through classes), else why not."""
    scope: list[ast.stmt] = tree.body
    for depth, part in enumerate(parts):
        bound = _bindings(scope)
        node = bound.get(part)
        if node is None:
            where = ".".join([module, *parts[:depth]])
            close = difflib.get_close_matches(part, sorted(bound), n=3, cutoff=0.6)
            hint = f" (did you mean {' or '.join(repr(c) for c in close)}?)" if close else ""
            return f"{where} defines no {part!r} in its source{hint}"
        if depth == len(parts) - 1:
            return _describe(node, in_class=depth > 0, why=why)
        if not isinstance(node, ast.ClassDef):  # an attribute of a value: only running it would tell
            owner = ".".join(parts[: depth + 1])
            return Defined(f"an attribute of {owner}, not seen in the source", node.lineno, None, why)
        scope = node.body
    raise AssertionError("unreachable")  # pragma: no cover


def _bindings(body: list[ast.stmt]) -> dict[str, ast.stmt]:
    """The names a module or class body binds (the last binding wins), through if/try/with."""
    bound: dict[str, ast.stmt] = {}
    for node in body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            bound[node.name] = node
        elif isinstance(node, ast.Assign | ast.AnnAssign | ast.AugAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            bound.update((n.id, node) for t in targets for n in ast.walk(t) if isinstance(n, ast.Name))
        elif isinstance(node, ast.Import | ast.ImportFrom):
            bound.update(((a.asname or a.name).split(".")[0], node) for a in node.names if a.name != "*")
        elif isinstance(node, ast.If | ast.Try | ast.With | ast.AsyncWith):
            handlers = [s for h in getattr(node, "handlers", ()) for s in h.body]
            nested = [*node.body, *getattr(node, "orelse", ()), *handlers, *getattr(node, "finalbody", ())]
            bound.update(_bindings(nested))
    return bound


def _describe(node: ast.stmt, *, in_class: bool, why: str) -> Defined:
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
        decorators = {d.id for d in node.decorator_list if isinstance(d, ast.Name)}
        plain = "method" if in_class else "function"
        kind = next((k for k in ("staticmethod", "classmethod") if k in decorators), plain)
        args = node.args
        names = [a.arg for a in (*args.posonlyargs, *args.args)]
        names += [a.arg for a in (args.vararg, *args.kwonlyargs, args.kwarg) if a is not None]
        if kind in ("method", "classmethod"):
            names = names[1:]  # self or cls: bound, never an argument of the call
        sync = "async" if isinstance(node, ast.AsyncFunctionDef) else "sync"
        return Defined(f"{kind}, {sync}", node.lineno, tuple(names), why)
    if isinstance(node, ast.ClassDef):
        return Defined("class", node.lineno, None, why)
    imported = isinstance(node, ast.Import | ast.ImportFrom)
    return Defined("imported name" if imported else "assigned value", node.lineno, None, why)
