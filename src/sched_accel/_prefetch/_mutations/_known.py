"""What the check knows without reading the app's code: what libraries' calls do to state,
and what a name or an annotation in the source is, looked up without running anything.

These tables say, per library, what is a read and what the run time judges; they belong in
the integration modules (one per library) once those land, and are kept here until then.
"""

from __future__ import annotations

import ast
import builtins
import dataclasses
import functools
import inspect
import sys
import types
from collections.abc import Callable
from typing import Any

from ..._unpatchable import HTTP_LIBRARIES

__all__ = [
    "ARG_MUTATORS",
    "CLIENT_STATE",
    "COPIES",
    "ELEMENTS",
    "JUDGED",
    "MUTATING",
    "NONE",
    "PASSES",
    "READS",
    "READ_ONLY",
    "UNREAD",
    "Owner",
    "Source",
    "annotation",
    "attribute_type",
    "class_of",
    "dotted",
    "global_name",
    "library",
    "parameter_types",
    "source",
    "subclasses",
]

#: Methods that change their object (containers, files and buffers, queues, metrics,
#: events, context variables, parsers): on an object the function did not make, a store.
MUTATING = frozenset(
    {
        "add",
        "append",
        "extend",
        "insert",
        "update",
        "setdefault",
        "pop",
        "popitem",
        "remove",
        "discard",
        "clear",
        "sort",
        "reverse",
        "appendleft",
        "extendleft",
        "popleft",
        "rotate",
        "move_to_end",
        "subtract",
        "intersection_update",
        "difference_update",
        "symmetric_difference_update",
        "__setitem__",
        "__delitem__",
        "__setattr__",
        "__delattr__",
        "__iadd__",
        "write",
        "writelines",
        "writerow",
        "writerows",
        "seek",
        "truncate",
        "put",
        "put_nowait",
        "send",
        "asend",
        "set",
        "incr",
        "decr",
        "inc",
        "dec",
        "observe",
        "increment",
        "decrement",
        "feed",
    }
)
#: Methods accepted on an object whose type is unknown: reads whatever the object is (a
#: dict, a session, a response), logging (dropped), and the requests and database calls
#: whose effect the run time judges (a write stops the shadow).
READS = frozenset(
    {
        "get",
        "head",
        "options",
        "json",
        "text",
        "raise_for_status",
        "iter_content",
        "iter_lines",
        "keys",
        "values",
        "items",
        "copy",
        "count",
        "index",
        "find",
        "startswith",
        "endswith",
        "format",
        "encode",
        "decode",
        "split",
        "strip",
        "join",
        "replace",
        "lower",
        "upper",
        "isoformat",
        "strftime",
        "is_set",
        "debug",
        "info",
        "warning",
        "warn",
        "error",
        "exception",
        "critical",
        "log",
        "success",
        "trace",
        "bind",
        "post",
        "patch",
        "delete",
        "request",
        "execute",
        "executemany",
        "executescript",
        "commit",
        "cursor",
        "fetchone",
        "fetchall",
        "fetchmany",
        "fetchrow",
        "fetchval",
        "scalar",
        "scalars",
    }
)
#: Modules whose functions change none of their arguments and whose objects change only
#: through a MUTATING method: the standard library's computing parts; files, ``os`` and
#: subprocesses too (the run time stops their writes).
READ_ONLY = frozenset(
    {
        "builtins",
        "json",
        "datetime",
        "time",
        "calendar",
        "zoneinfo",
        "math",
        "cmath",
        "decimal",
        "fractions",
        "statistics",
        "re",
        "string",
        "textwrap",
        "html",
        "base64",
        "binascii",
        "hashlib",
        "hmac",
        "uuid",
        "secrets",
        "copy",
        "itertools",
        "functools",
        "operator",
        "collections",
        "dataclasses",
        "enum",
        "typing",
        "types",
        "posixpath",
        "ntpath",
        "genericpath",
        "shlex",
        "unicodedata",
        "email",
        "ipaddress",
        "mimetypes",
        "struct",
        "zlib",
        "gzip",
        "asyncio",
        "anyio",
        "trio",
        "contextlib",
        "csv",
        "xml",
        "os",
        "io",
        "pathlib",
        "shutil",
        "subprocess",
        "tempfile",
        "glob",
        "fnmatch",
        "sniffio",
        "yarl",
        "multidict",
    }
)
#: Libraries whose every call the run time judges: HTTP clients (a read is kept, another
#: request stops the shadow), databases and ORMs (a write stops it), logging (dropped).
JUDGED = HTTP_LIBRARIES | {
    "sqlite3",
    "aiosqlite",
    "sqlalchemy",
    "django",
    "psycopg",
    "psycopg2",
    "asyncpg",
    "pymysql",
    "MySQLdb",
    "redis",
    "pymongo",
    "motor",
    "logging",
    "loguru",
    "structlog",
    "warnings",
}
#: Methods that change the app's HTTP client itself, which its real call then uses.
CLIENT_STATE = frozenset({"close", "aclose", "mount"})
#: Library functions that change their first argument.
ARG_MUTATORS = frozenset(
    {
        "setattr",
        "delattr",
        "setitem",
        "delitem",
        "iadd",
        "iconcat",
        "heappush",
        "heappop",
        "heapify",
        "heapreplace",
        "heappushpop",
        "insort",
        "insort_left",
        "insort_right",
        "shuffle",
        "next",
    }
)
#: Methods that hand back an element of their object (a dict's ``get``): on a shared object,
#: a shared element. Other methods of what a call returned make something new (``.json()``).
ELEMENTS = frozenset({"get", "pop", "popitem", "setdefault", "__getitem__", "values", "items", "first", "last"})
#: Built-ins that run code the check cannot read.
UNREAD = frozenset({"exec", "eval", "compile", "__import__", "globals", "locals"})
#: Built-ins that make a new container of their arguments' elements (a shallow copy).
COPIES: frozenset[Any] = frozenset({dict, list, set, tuple, frozenset, sorted, bytearray})
#: Built-ins that hand back one of their arguments, or its elements.
PASSES: frozenset[Any] = frozenset({getattr, iter, min, max, vars, reversed, filter, map, zip, enumerate, next})
#: "Not found": lookups return it instead of None, which is a value.
NONE: Any = object()


@dataclasses.dataclass(frozen=True, slots=True)
class Owner:
    """The class a method runs on; for a bound method, its instance's attribute types too."""

    cls: type
    attrs: tuple[tuple[str, type], ...] = ()
    exact: bool = False  # the instance's own class: no subclass overrides to consider


@dataclasses.dataclass(frozen=True, slots=True)
class Source:
    """A function's parsed tree, and where it is."""

    node: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda
    file: str
    first: int  # the file's line of the tree's line 1
    name: str

    def line(self, node: ast.AST) -> int:
        """The file's line of a node of the tree."""
        return getattr(node, "lineno", 1) + self.first - 1


@functools.lru_cache(maxsize=4096)
def source(function: types.FunctionType) -> Source | None:
    """The parsed source of a function, or None when it cannot be read (a REPL lambda, generated code)."""
    try:
        lines, first = inspect.getsourcelines(function)
        text = "".join(lines)
        if text[:1] in (" ", "\t"):  # a method or a nested function: parsed inside a block
            text, first = "if 1:\n" + text, first - 1
        tree = ast.parse(text)
    except (OSError, TypeError, SyntaxError):
        return None
    kind = ast.Lambda if function.__name__ == "<lambda>" else (ast.FunctionDef, ast.AsyncFunctionDef)
    for node in ast.walk(tree):
        if isinstance(node, kind) and getattr(node, "name", "<lambda>") == function.__name__:
            return Source(node, inspect.getsourcefile(function) or "?", first, function.__qualname__)
    return None


@functools.cache
def library(module: str | None) -> bool:
    """Whether a module is a library's (installed, standard, or not imported) rather than the
    app's; code without a module (made by ``exec``) is taken for the app's."""
    if module is None:
        return False
    top = module.partition(".")[0]
    if top in sys.stdlib_module_names or top in JUDGED or top in READ_ONLY:
        return True
    file = getattr(sys.modules.get(module) or sys.modules.get(top), "__file__", None)
    return file is None or "site-packages" in file or "dist-packages" in file


def dotted(node: ast.expr, name: Callable[[str], Any]) -> Any:
    """What ``a.b.c`` is, ``a`` given by ``name``, through modules and classes only: no code
    runs (no ``__getattr__``, no property); NONE if not found."""
    if isinstance(node, ast.Name):
        return name(node.id)
    if not isinstance(node, ast.Attribute):
        return NONE
    base = dotted(node.value, name)
    if isinstance(base, types.ModuleType):
        return vars(base).get(node.attr, NONE)
    return inspect.getattr_static(base, node.attr, NONE) if isinstance(base, type) else NONE


def global_name(namespace: dict[str, Any]) -> Callable[[str], Any]:
    """Looks a name up in a module's namespace, then in the built-ins."""
    return lambda name: namespace.get(name, vars(builtins).get(name, NONE))


def annotation(value: Any, namespace: dict[str, Any]) -> type | None:
    """The class an annotation names (``Repo``, ``"api.Client"``, ``Repo | None``,
    ``Optional[Repo]``), or None."""
    if isinstance(value, type):
        return value
    try:
        node: ast.expr = ast.parse(value, mode="eval").body if isinstance(value, str) else ast.Constant(None)
    except SyntaxError:
        return None
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
        node = node.right if isinstance(node.left, ast.Constant) and node.left.value is None else node.left
    elif isinstance(node, ast.Subscript) and ast.unparse(node.value) in ("Optional", "typing.Optional"):
        node = node.slice
    found = dotted(node, global_name(namespace))
    return found if isinstance(found, type) and found not in (Any, object) else None


@functools.lru_cache(maxsize=4096)
def parameter_types(function: types.FunctionType) -> dict[str, type]:
    """The classes a function's parameters are annotated with."""
    found = {name: annotation(value, function.__globals__) for name, value in function.__annotations__.items()}
    return {name: kind for name, kind in found.items() if kind is not None}


@functools.lru_cache(maxsize=4096)
def attribute_type(cls: type, name: str) -> type | None:
    """The type of ``self.<name>`` on ``cls``: annotated on the class, a class attribute's, or
    made in ``__init__`` (``self.session = requests.Session()``, ``self.repo = repo`` with
    ``repo: Repo``); None if unknown."""
    for klass in cls.__mro__:
        module = sys.modules.get(klass.__module__)
        namespace = vars(module) if module is not None else {}
        if (annotated := annotation(vars(klass).get("__annotations__", {}).get(name), namespace)) is not None:
            return annotated
        value = vars(klass).get(name)
        if value is not None and not callable(value) and not isinstance(value, property | functools.cached_property):
            return type(value)
        init = vars(klass).get("__init__")
        found = source(init) if isinstance(init, types.FunctionType) else None
        if found is None or not found.node.args.args or not isinstance(init, types.FunctionType):
            continue
        target = f"{found.node.args.args[0].arg}.{name}"
        for node in ast.walk(found.node):
            if isinstance(node, ast.Assign) and any(ast.unparse(t) == target for t in node.targets):
                if isinstance(node.value, ast.Call):
                    made = dotted(node.value.func, global_name(init.__globals__))
                    return made if isinstance(made, type) else None
                return parameter_types(init).get(node.value.id) if isinstance(node.value, ast.Name) else None
    return None


def class_of(function: types.FunctionType) -> Owner | None:
    """The class a function is a method of, by its qualified name (None for a function, a
    static method, or a class defined inside a function)."""
    *path, name = function.__qualname__.split(".")
    found: Any = function.__globals__.get(path[0], NONE) if path else NONE
    for part in path[1:]:
        found = vars(found).get(part, NONE) if isinstance(found, type) else NONE
    if not isinstance(found, type) or isinstance(vars(found).get(name), staticmethod):
        return None
    return Owner(found)


def subclasses(cls: type) -> list[type]:
    """Every subclass of ``cls``, at any depth (their overrides may be what ``self.m()`` runs)."""
    found: list[type] = []
    todo: list[type] = type.__subclasses__(cls)
    while todo and len(found) < 64:
        klass = todo.pop()
        found.append(klass)
        todo.extend(type.__subclasses__(klass))
    return found
