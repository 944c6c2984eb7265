"""Whether a per-item function is safe to run ahead of the loop: does its code write?

Running a function early and concurrently is only the same as running it in the loop when
it only reads. :func:`writes` reads the function's source (and that of the functions of
its own module it calls, two levels deep) and names the first thing it finds that writes
or depends on what the loop changes:

- a ``print()``, a logging call (``logger.info``, ``logging.warning``, ``log.debug``...);
- a database or file write (``execute``, ``commit``, ``add``, ``save``, ``write``,
  ``open(..., "w")``...), a request that is not a read (``post``, ``put``, ``patch``,
  ``delete``);
- an assignment to an attribute, an item or a name outside the function (``self.x = ``,
  ``CACHE[k] = ``, ``global``/``nonlocal``), a mutating call on something it did not make
  (``RESULTS.append``);
- a read of a module-level list, dict or set (state the loop's body may change).

Anything it cannot read (no source: a C function, a lambda in a REPL) is not called pure.
A user who knows better says ``pure = true``.

:func:`library_method` is the other reason, which ``pure = true`` does not change: a
function of an HTTP client library (``httpx:Client.get``) is never run ahead per item,
since its instance is the client and its argument the URL; HTTP-level prefetch sends the
loop's GET requests ahead instead.
"""

from __future__ import annotations

import ast
import inspect
import textwrap
from collections.abc import Callable
from typing import Any

from .._integrations import MODULES

__all__ = ["CLIENT_LIBRARIES", "library_method", "writes"]

_PRINTS = frozenset({"print", "pprint"})
_LOG_METHODS = frozenset({"debug", "info", "warning", "warn", "error", "exception", "critical", "log", "fatal"})
_WRITE_METHODS = frozenset(
    {
        # containers and objects the function did not make
        "append",
        "extend",
        "insert",
        "pop",
        "popitem",
        "remove",
        "clear",
        "update",
        "setdefault",
        "add",
        "discard",
        "sort",
        "reverse",
        # databases, ORMs, caches, queues
        "execute",
        "executemany",
        "executescript",
        "commit",
        "rollback",
        "flush",
        "save",
        "delete",
        "merge",
        "add_all",
        "bulk_save_objects",
        "insert_one",
        "insert_many",
        "update_one",
        "update_many",
        "delete_one",
        "delete_many",
        "replace_one",
        "bulk_write",
        "set",
        "hset",
        "incr",
        "lpush",
        "rpush",
        "sadd",
        "put",
        "put_nowait",
        "send",
        "sendall",
        "publish",
        "emit",
        "notify",
        # files
        "write",
        "writelines",
        "write_text",
        "write_bytes",
        "mkdir",
        "unlink",
        "rename",
        "touch",
        "rmdir",
        # requests that are not reads
        "post",
        "patch",
    }
)
_MUTABLE = (list, dict, set, bytearray)
#: Top-level packages of the HTTP clients whose own functions are never a per-item ``fetch``.
CLIENT_LIBRARIES = MODULES
_DEPTH = 2


_DEFINES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)


def writes(function: Callable[..., Any]) -> str | None:
    """Why ``function`` is not safe to run ahead (``"prints (line 12)"``), or None if it
    only reads, as far as its code shows."""
    return _inspect(inspect.unwrap(function), _DEPTH, set())


def library_method(function: Callable[..., Any]) -> str | None:
    """Why ``function`` can never be run ahead per item (``"is defined in httpx, an HTTP
    client library"``) when an HTTP client library defines it, or None."""
    module = getattr(inspect.unwrap(function), "__module__", None)
    library = module.partition(".")[0] if isinstance(module, str) else ""
    if library not in CLIENT_LIBRARIES:
        return None
    return (
        f"is defined in {library} ({module}), an HTTP client library: its instance is the client and its "
        "argument the URL, so it is never run ahead per item"
    )


def _inspect(function: Any, depth: int, seen: set[int]) -> str | None:
    seen.add(id(function))
    code = getattr(function, "__code__", None)
    try:
        source = textwrap.dedent(inspect.getsource(function))
        tree = ast.parse(source)
    except (OSError, TypeError, SyntaxError, IndentationError):
        return "its source cannot be read, so what it does cannot be checked"
    if not any(isinstance(node, _DEFINES) for node in ast.walk(tree)):
        # a source that is not the function's (Python 3.13 gives "\n" for a lambda made by
        # eval(), found by the version matrix): nothing was read, so nothing can be called pure
        return "its source cannot be read, so what it does cannot be checked"
    first = getattr(code, "co_firstlineno", 1) - 1
    found = _Finder(getattr(function, "__globals__", {}))
    found.visit(tree)
    if found.reason is not None:
        return f"{found.reason} (line {found.line + first})"
    if depth > 1:
        for callee in found.callees:
            if id(callee) not in seen and getattr(callee, "__module__", None) == getattr(function, "__module__", None):
                reason = _inspect(callee, depth - 1, seen)
                if reason is not None and not reason.startswith("its source"):
                    return f"calls {callee.__qualname__}, which {reason}"
    return None


def _root(node: ast.AST) -> str | None:
    """The name an attribute or subscript chain starts from (``self`` in ``self.a.b[0]``)."""
    while isinstance(node, ast.Attribute | ast.Subscript | ast.Call):
        node = node.func if isinstance(node, ast.Call) else node.value
    return node.id if isinstance(node, ast.Name) else None


class _Finder(ast.NodeVisitor):
    """The first write in a function's tree, and the module functions it calls."""

    def __init__(self, module_globals: dict[str, Any]) -> None:
        self.globals = module_globals
        self.reason: str | None = None
        self.line = 0
        self.made: set[str] = set()  # names the function binds itself (its own objects)
        self.arguments: set[str] = set()
        self.callees: list[Any] = []
        self.depth = 0

    def _found(self, reason: str, node: ast.AST) -> None:
        if self.reason is None:
            self.reason = reason
            self.line = getattr(node, "lineno", 1)

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        self.depth += 1
        if self.depth == 1:
            every = [*node.args.posonlyargs, *node.args.args, *node.args.kwonlyargs, node.args.vararg, node.args.kwarg]
            self.arguments = {a.arg for a in every if a is not None}
            for statement in ast.walk(node):  # what the function makes: assigned plain names
                targets: list[ast.AST] = []
                if isinstance(statement, ast.Assign):
                    targets = list(statement.targets)
                elif isinstance(statement, ast.AnnAssign | ast.AugAssign | ast.For | ast.AsyncFor | ast.NamedExpr):
                    targets = [statement.target]
                elif isinstance(statement, ast.withitem) and statement.optional_vars is not None:
                    targets = [statement.optional_vars]
                for target in targets:
                    self.made |= _bound(target)
            self.made -= self.arguments
        self.generic_visit(node)
        self.depth -= 1

    visit_AsyncFunctionDef = visit_FunctionDef

    def _outside(self, node: ast.AST) -> bool:
        """Whether an attribute or item target belongs to something the function did not make."""
        root = _root(node)
        return root is None or root not in self.made

    def visit_Global(self, node: ast.Global) -> None:
        self._found(f"declares global {', '.join(node.names)}", node)

    def visit_Nonlocal(self, node: ast.Nonlocal) -> None:
        self._found(f"declares nonlocal {', '.join(node.names)}", node)

    def _targets(self, targets: list[ast.expr], node: ast.AST) -> None:
        for target in targets:
            for part in ast.walk(target):
                if isinstance(part, ast.Attribute | ast.Subscript) and part is target and self._outside(part):
                    self._found(f"assigns to {ast.unparse(part)}", node)

    def visit_Assign(self, node: ast.Assign) -> None:
        self._targets(node.targets, node)
        self.generic_visit(node)

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        self._targets([node.target], node)
        self.generic_visit(node)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        if node.value is not None:
            self._targets([node.target], node)
        self.generic_visit(node)

    def visit_Delete(self, node: ast.Delete) -> None:
        self._targets(node.targets, node)
        self.generic_visit(node)

    def visit_Name(self, node: ast.Name) -> None:
        if isinstance(node.ctx, ast.Load) and node.id not in self.made and node.id not in self.arguments:
            value = self.globals.get(node.id)
            if isinstance(value, _MUTABLE) and not isinstance(value, type):
                self._found(f"reads the module-level {type(value).__name__} {node.id}, which the loop may change", node)

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        if isinstance(func, ast.Name):
            if func.id in _PRINTS:
                self._found(f"calls {func.id}()", node)
            elif func.id == "open" and _opens_for_writing(node):
                self._found("opens a file for writing", node)
            else:
                callee = self.globals.get(func.id)
                if inspect.isfunction(callee):
                    self.callees.append(callee)
        elif isinstance(func, ast.Attribute):
            owner = _root(func.value)
            lowered = (owner or "").lower()
            if func.attr in _LOG_METHODS and ("log" in lowered or owner == "warnings"):
                self._found(f"logs ({ast.unparse(func)})", node)
            elif func.attr in _WRITE_METHODS and self._outside(func.value):
                self._found(f"calls {ast.unparse(func)}(), which writes", node)
        self.generic_visit(node)


def _bound(target: ast.AST) -> set[str]:
    """The plain names an assignment target binds (``a``, ``a, (b, *c)``), not ``x`` in ``x[k]``."""
    if isinstance(target, ast.Name):
        return {target.id}
    if isinstance(target, ast.Tuple | ast.List):
        return set().union(*(_bound(e) for e in target.elts))
    if isinstance(target, ast.Starred):
        return _bound(target.value)
    return set()


def _opens_for_writing(node: ast.Call) -> bool:
    mode: ast.expr | None = node.args[1] if len(node.args) > 1 else None
    for keyword in node.keywords:
        if keyword.arg == "mode":
            mode = keyword.value
    if mode is None:
        return False
    if isinstance(mode, ast.Constant) and isinstance(mode.value, str):
        return any(c in mode.value for c in "wax+")
    return True  # a mode computed at run time: it may write
