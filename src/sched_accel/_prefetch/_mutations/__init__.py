"""The one risk of a shadow, checked before it runs: does the per-item function change
Python state that its real call, or the loop, reads later?

The run time drops a shadow's prints and logs and stops it at its first effect (a write
request, a database write, a file opened for writing, a subprocess): those are not this
check's business. What it cannot see is a store into the app's own objects: a dedupe set, a
counter, a cache dict, a list passed in; a shadow doing that makes the real run skip or
double an item. :func:`mutations` reads the function's source and, up to :data:`DEPTH`
calls below it, what it calls that resolves statically (methods of ``self``/``cls``
through the MRO, with subclasses' overrides unless the instance is known; methods of
parameters and of ``self.<attribute>`` whose class is annotated or made in ``__init__``;
module functions and imported names; property getters; callbacks it hands on; nested
functions and lambdas are in its tree). It refuses at the first:

- **store into what the function did not make**: ``self.x = / += / del``, ``obj.a =``,
  ``obj[k] =`` where ``obj`` is a parameter, ``self``, a global, a closure variable, an
  element of one, or what a call on one returned; an assigned ``global`` or ``nonlocal``; a
  mutable default argument changed;
- **mutating call** on such an object (``MUTATING``: ``.add``, ``.append``, ``.update``,
  ``.pop``, ``.write`` (a buffer the run time cannot see), ``.put``, ``.set``, ``.inc``...);
  a library function that changes its first argument (``setattr``, ``heapq.heappush``,
  ``next``); a draw from ``random``'s shared generator (the real run's numbers would change);
- **cache the real call would trust** (``functools.lru_cache``, ``functools.cache``,
  ``cached_property``, cachetools): its output would be the same, but two shadows can both
  miss and send the request twice, a bounded cache evicts what the real run would hit (a
  request sent again), and a hit skips the exact match and ``max_age`` that kept answers
  obey. ``shadow = true`` overrides;
- **call that cannot be followed and could mutate**: a callable parameter (``on_item(x)``),
  a method of an object of unknown type whose name is not in ``READS``, a library function
  given an object the function did not make, source that cannot be read, ``exec``.

Fine: what the function does to objects it made (its own copies too: ``dict(self.defaults)``);
non-mutating calls on what calls returned (a response's ``.json()``); on an object of
unknown type, the methods of ``READS`` (``get``, ``json``, ``info``..., and ``post``,
``execute``, ``commit``, which the run time judges); every call into an HTTP client,
database, ORM or logging library (``JUDGED``: the run time keeps reads and stops writes);
print, ``sys.stdout.write``; the standard library's computing, file and OS modules
(``READ_ONLY``).

Limits: the analysis ignores the order of statements and does not track the types of
locals: a method of an object the function made is not followed, a container it made
holding the app's objects is trusted, ``param += [x]`` on a list parameter is taken for a
rebinding, a decorator's wrapper is not read (the function under it is), and a method name
in ``READS`` on an object of unknown type is taken for a read.
"""

from __future__ import annotations

import dataclasses
import functools
import types
from collections.abc import Callable
from typing import Any

from ._calls import DEPTH, Found
from ._known import MUTATING, NONE, READ_ONLY, READS, Owner, class_of, source
from ._walk import follow

__all__ = ["DEPTH", "MUTATING", "READS", "READ_ONLY", "Verdict", "mutations"]


@dataclasses.dataclass(frozen=True, slots=True)
class Verdict:
    """Whether a function may run as a shadow; if not, why in one line, and the file and
    line that decided."""

    ok: bool
    why: str | None = None
    file: str | None = None
    line: int | None = None


def mutations(function: Callable[..., Any]) -> Verdict:
    """Whether running ``function`` ahead as a shadow leaves the Python state its real call
    reads unchanged, as far as its code and the code it calls show. Computed once per
    function (and class of its instance, for a bound method)."""
    try:
        function, owner, cached = _unwrap(function)
    except Exception as error:  # noqa: BLE001 - an object whose attributes raise
        return _unforeseen(error)
    return _verdict(function, owner, cached)


def _unwrap(function: Any) -> tuple[Any, Owner | None, str | None]:
    """The function under a partial, a bound method, a static or class method, a decorator's
    wrapper or a callable object; the class it runs on; the cache a wrapper keeps, if any."""
    owner: Owner | None = None
    cached: str | None = None
    value: Any = function
    for _ in range(64):  # a chain of wrappers, even one that loops, ends
        if hasattr(value, "cache_info") or (hasattr(value, "__wrapped__") and hasattr(value, "cache")):
            kind = (
                "functools.lru_cache"
                if hasattr(value, "cache_parameters")
                else f"{type(value).__module__}.{type(value).__qualname__}"
            )
            cached = cached or kind
        if isinstance(value, functools.partial):
            value = value.func
        elif isinstance(value, staticmethod | classmethod):
            value = value.__func__
        elif isinstance(value, types.MethodType):
            bound = value.__self__
            owner = Owner(bound, (), True) if isinstance(bound, type) else Owner(type(bound), _attributes(bound), True)
            value = value.__func__
        elif getattr(value, "__wrapped__", None) is not None:
            value = value.__wrapped__
        elif not isinstance(value, types.FunctionType | type) and isinstance(
            getattr(type(value), "__call__", None),  # noqa: B004 - its type's own, a Python function
            types.FunctionType,
        ):
            owner, value = Owner(type(value), _attributes(value), True), type(value).__call__  # a callable object
        else:
            break
    if isinstance(value, types.FunctionType) and owner is None:
        owner = class_of(value)
    return value, owner, cached


def _unforeseen(error: Exception) -> Verdict:
    return Verdict(False, f"could not be checked ({type(error).__name__}: {error}), so it is not shadowed")


@functools.lru_cache(maxsize=1024)
def _verdict(function: Any, owner: Owner | None, cached: str | None) -> Verdict:
    try:
        return _check(function, owner, cached)
    except Exception as error:  # noqa: BLE001 - code the check did not foresee: refused, never raised
        return _unforeseen(error)


def _check(function: Any, owner: Owner | None, cached: str | None) -> Verdict:
    found = source(function) if isinstance(function, types.FunctionType) else None
    if found is None:
        name = getattr(function, "__qualname__", repr(function))
        return Verdict(False, f"the source of {name} cannot be read, so what it changes cannot be checked")
    if cached is not None:
        tail = ": a shadow would fill the cache its real call trusts (two shadows may both miss and send twice)"
        finding: Found | None = Found(
            f"caches its results ({cached})", found.file, found.line(found.node), (found.name,), tail
        )
    else:
        finding = follow({}, function, owner, None, DEPTH)[1]
    if finding is None:
        return Verdict(True)
    return Verdict(False, finding.why(), finding.file, finding.line)


def _attributes(instance: object) -> tuple[tuple[str, type], ...]:
    """The types of an instance's own attributes (``self.session`` is a ``requests.Session``)."""
    values = getattr(instance, "__dict__", None)
    if not isinstance(values, dict):
        return ()
    return tuple(sorted((str(k), type(v)) for k, v in values.items() if v is not None and v is not NONE))
