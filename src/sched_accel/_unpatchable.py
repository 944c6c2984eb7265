"""Targets that cannot be patched safely, refused with the reason and what to name instead.

Three rules, checked from the spec's text when the config is validated
(:func:`refused_module`) and on the object itself when the target resolves
(:func:`refused_object`):

- **built-in and C functions**, anything without Python code once unwrapped (``len``,
  ``dict.get``, a slot wrapper, a ``functools.partial``): a wrapper on them changes them
  for every caller in the interpreter, and there is no code of the app's to accelerate;
- **methods of a metaclass** (a subclass of ``type``: ``type.__call__``,
  ``ABCMeta.__call__``): they run whenever any class of that kind is made or called,
  sched_accel's own included;
- **modules sched_accel itself runs on** (:data:`STDLIB`, :data:`LIBRARIES`): patching
  them reaches into our own work, and a loop in them is not the app's.

A ``fetch`` may name an HTTP client library's method (:data:`HTTP_LIBRARIES`): the
per-item check (``_prefetch.library_method``) explains that it is never run ahead, and the
loop's requests are prefetched at the HTTP level instead. The other rules hold for it too.
"""

from __future__ import annotations

import functools
import inspect
import types
from collections.abc import Callable
from typing import Any, Literal

from ._integrations import MODULES

__all__ = ["HTTP_LIBRARIES", "LIBRARIES", "STDLIB", "Role", "refused_module", "refused_object"]

#: What a spec names in a target: the key it is declared under.
Role = Literal["loop", "replacement", "fetch", "items"]

#: The standard library modules (top-level names) that sched_accel or its dependencies use
#: at run time. A private C twin (``_json``, ``_asyncio``, ``_socket``) counts as its module.
STDLIB = frozenset(
    {
        # the interpreter, imports and introspection
        "builtins",
        "sys",
        "types",
        "abc",
        "inspect",
        "importlib",
        "pkgutil",
        "site",
        "sysconfig",
        "ast",
        "copy",
        "copyreg",
        "dataclasses",
        "enum",
        "functools",
        "gc",
        "itertools",
        "operator",
        "typing",
        "warnings",
        "weakref",
        "_weakrefset",
        "collections",
        "_collections_abc",
        "contextlib",
        "contextvars",
        "traceback",
        "linecache",
        "tokenize",
        "token",
        "keyword",
        "reprlib",
        "marshal",
        "zipimport",
        "runpy",
        "codecs",
        "encodings",
        "io",
        "atexit",
        "signal",
        "stat",
        "errno",
        # threads, tasks and time
        "threading",
        "_thread",
        "asyncio",
        "concurrent",
        "queue",
        "selectors",
        "select",
        "time",
        "datetime",
        "heapq",
        "bisect",
        "random",
        "math",
        "statistics",
        # operating system, files, processes
        "os",
        "posix",
        "posixpath",
        "ntpath",
        "genericpath",
        "nt",
        "pathlib",
        "tempfile",
        "shutil",
        "fnmatch",
        "glob",
        "subprocess",
        "argparse",
        "platform",
        "locale",
        "fcntl",
        "pwd",
        # text and data
        "json",
        "tomllib",
        "re",
        "sre_compile",
        "sre_parse",
        "sre_constants",
        "string",
        "textwrap",
        "difflib",
        "struct",
        "binascii",
        "base64",
        "zlib",
        "unicodedata",
        "logging",
        "html",
        # network and crypto
        "socket",
        "ssl",
        "http",
        "urllib",
        "email",
        "ipaddress",
        "mimetypes",
        "hashlib",
        "hmac",
        "secrets",
        "uuid",
    }
)
#: The packages sched_accel runs on (itself, its dependencies and theirs) or patches at the
#: HTTP level.
LIBRARIES = frozenset(
    {
        "sched_accel",
        "_sched_accel_boot",
        "wrapt",
        "httpx",
        "httpcore",
        "h11",
        "h2",
        "anyio",
        "sniffio",
        "idna",
        "certifi",
        "loguru",
        "aiohttp",
        "aiohappyeyeballs",
        "aiosignal",
        "yarl",
        "multidict",
        "frozenlist",
        "propcache",
        "attrs",
        "attr",
        "requests",
        "urllib3",
        "charset_normalizer",
        "redis",
        "trio",
        "outcome",
        "sortedcontainers",
        "exceptiongroup",
        "typing_extensions",
        "opentelemetry",
        "prometheus_client",
    }
)
#: The HTTP client libraries whose methods a ``fetch`` may name (reported by
#: ``_prefetch.library_method``, prefetched at the HTTP level): each integration's modules.
HTTP_LIBRARIES = MODULES

_INSTEAD: dict[Role, str] = {
    "loop": "name the app's own function that contains the loop",
    "replacement": "name the app's own function that does the loop's work",
    "fetch": "name the app's own function that fetches one item, or leave `fetch` out to prefetch the loop's HTTP requests",
    "items": "name the app's own function that returns the items",
}
_C_FUNCTIONS = (
    types.BuiltinFunctionType,
    types.MethodWrapperType,
    types.WrapperDescriptorType,
    types.MethodDescriptorType,
    types.ClassMethodDescriptorType,
)


def _ours(module: str, role: Role) -> str | None:
    """What ``module`` (any dotted name in it) is to sched_accel, as a phrase that follows
    "json is" or "is defined in json,"; None when sched_accel does not run on it."""
    top = module.partition(".")[0]
    if role == "fetch" and top in HTTP_LIBRARIES:
        return None
    if top == "builtins":
        return "the module of the interpreter's built-in functions and types, which every module calls, sched_accel included"
    if top in ("sched_accel", "_sched_accel_boot"):
        return "sched_accel's own code"
    if top in LIBRARIES:
        return (
            "a library that sched_accel itself runs on or patches: patching it would reach into sched_accel's own work"
        )
    if top in STDLIB or (top.startswith("_") and top[1:] in STDLIB):
        return "part of the standard library that sched_accel itself runs on: patching it would reach into sched_accel's own work"
    return None


def refused_module(module: str, role: Role) -> str | None:
    """Why nothing in ``module`` may be named as the ``role`` of a target, with what to name
    instead; None when the module is not one sched_accel runs on."""
    what = _ours(module, role)
    return None if what is None else f"{module} is {what}; {_INSTEAD[role]}"


def refused_object(function: Callable[..., Any], owner: object, role: Role) -> str | None:
    """Why ``function`` (found on ``owner``, a module or a class) cannot be patched safely as
    the ``role`` of a target, with what to name instead; None when it can."""
    instead = _INSTEAD[role]
    if isinstance(owner, type) and issubclass(owner, type):
        return (
            f"is a method of the metaclass {owner.__module__}.{owner.__qualname__} (a subclass of type), which runs "
            f"whenever any class of that kind is made or called, sched_accel's own included; {instead}"
        )
    try:
        plain = inspect.unwrap(function)
        code = getattr(plain, "__code__", None)
        module = getattr(plain, "__module__", None)
    except Exception:  # noqa: BLE001 - a __wrapped__ chain that loops, an attribute that raises
        return f"is a {type(function).__name__} whose wrapped function cannot be read; {instead}"
    if isinstance(plain, functools.partial):
        return f"is a functools.partial object, not a function with code of its own; {instead}"
    if isinstance(plain, _C_FUNCTIONS):
        return (
            f"is a built-in or C function ({type(plain).__name__}): it has no Python code to wrap, and every caller "
            f"in the interpreter, sched_accel included, shares it; {instead}"
        )
    if not isinstance(code, types.CodeType):
        return f"is a {type(plain).__name__} object, not a function with code of its own; {instead}"
    what = _ours(module, role) if isinstance(module, str) else None
    return None if what is None else f"is defined in {module}, {what}; {instead}"
