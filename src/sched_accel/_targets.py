"""Target specs: ``"pkg.mod:Class.method"`` or ``"jobs/tracker.py:main"``, and resolving them.

A spec names a module (or a script file run as ``__main__``) and a qualname inside it.
Resolving walks the qualname through classes, looking the last name up in the ``__dict__``
that defines it, so that classmethods and staticmethods are seen for what they are. A name
that is not there is reported with the close names that are (:func:`close_names`).
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import os
import pkgutil
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, Literal

import _sched_accel_boot as boot

from ._exceptions import TargetError
from ._unpatchable import Role, refused_module, refused_object

__all__ = ["ArgumentLocator", "Resolved", "TargetSpec", "close_modules", "close_names", "did_you_mean"]

Kind = Literal["function", "method", "classmethod", "staticmethod"]


def _is_dotted(name: str) -> bool:
    return bool(name) and all(part.isidentifier() for part in name.split("."))


@dataclass(frozen=True, slots=True)
class TargetSpec:
    """A parsed ``where:qualname``; ``path`` is set (absolute) for a script target.

    ``role`` is the key it was declared under (``loop``, ``fetch``...), which decides what it
    may not name (see ``_unpatchable``); without one, the rules of a loop apply.
    """

    text: str
    qualname: str
    module: str | None = None
    path: str | None = None
    role: Role | None = field(default=None, compare=False, repr=False)

    @classmethod
    def parse(cls, value: object, *, base: str = ".", allow_path: bool = True, role: Role | None = None) -> TargetSpec:
        """Parse a spec, raising ValueError with what is allowed; with a ``role``, also when
        its module is one that the role may never name (a module sched_accel runs on)."""
        if not isinstance(value, str):
            raise ValueError('a string "module:qualname"')
        where, qualname = boot.split_target(value.strip())
        if not qualname:
            raise ValueError('"module:qualname", a colon then the function\'s name, for example "legacy_app.jobs:update_scores"')
        if "<locals>" in qualname:
            raise ValueError(
                "a function defined inside another function cannot be reached from outside; "
                "declare the enclosing function as the loop"
            )
        if not _is_dotted(qualname):
            raise ValueError("the qualname after the colon must be dotted Python names, like Class.method")
        if boot.is_path(where):
            if not allow_path:
                raise ValueError('a module path "package.module:qualname"; a script path is allowed only for `loop`')
            path = os.path.realpath(os.path.join(base, os.path.expanduser(where)))
            return cls(text=value.strip(), qualname=qualname, path=path, role=role)
        if not _is_dotted(where):
            raise ValueError('"package.module:qualname" with a dotted module name before the colon')
        if role is not None and (reason := refused_module(where, role)) is not None:
            raise ValueError(reason)
        return cls(text=value.strip(), qualname=qualname, module=where, role=role)

    @property
    def is_script(self) -> bool:
        """Whether the loop lives in a script run as ``python path.py`` (its ``__main__``)."""
        return self.path is not None

    def resolve(self, module: ModuleType) -> Resolved:
        """Find the qualname inside ``module``; raise :class:`TargetError` saying why not."""
        parts = self.qualname.split(".")
        parent: Any = module
        for depth, name in enumerate(parts):
            owner = parent
            if inspect.isclass(parent):
                raw = next((vars(k)[name] for k in inspect.getmro(parent) if name in vars(k)), _MISSING)
            else:
                raw = getattr(parent, name, _MISSING)
            if raw is _MISSING:
                where = ".".join(parts[:depth]) or module.__name__
                raise TargetError(
                    f"{self.text}: {where!s} has no attribute {name!r}{did_you_mean(close_names(name, parent))}; "
                    "check the spelling, or run `sched-accel check` to list what resolves"
                )
            if depth < len(parts) - 1:
                parent = raw
                continue
            return Resolved.make(self, owner, name, raw)
        raise AssertionError("unreachable")  # pragma: no cover


_MISSING: Any = object()


def close_names(name: str, owner: object) -> list[str]:
    """The attributes of ``owner`` (a module, a class and its bases) spelled like ``name``,
    best first: its public names, or its private ones when no public name is close."""
    try:
        if inspect.isclass(owner):
            names = {n for k in inspect.getmro(owner) if k is not object for n in vars(k)}
        else:
            names = set(vars(owner)) if hasattr(owner, "__dict__") else set(dir(owner))
    except Exception:  # noqa: BLE001 - an object that cannot list its names: no guess
        return []
    public = sorted(n for n in names if not n.startswith("_"))
    private = sorted(names.difference(public))
    first, then = (private, public) if name.startswith("_") else (public, private)
    return _closest(name, first) or _closest(name, then)


def close_modules(name: str) -> list[str]:
    """Modules next to ``name`` (``pkg.jobz`` -> ``pkg.jobs``) spelled like it, best first;
    nothing when its package itself cannot be imported."""
    package, _, leaf = name.rpartition(".")
    try:
        path = importlib.import_module(package).__path__ if package else sys.path
    except Exception:  # noqa: BLE001 - no such package, a plain module, or its code failed: no guess
        return []
    siblings = sorted({m.name for m in pkgutil.iter_modules(path)} | (set() if package else set(sys.builtin_module_names)))
    return [f"{package}.{m}" if package else m for m in _closest(leaf, siblings)]


def _closest(word: str, candidates: list[str]) -> list[str]:
    """Up to three of ``candidates`` spelled like ``word``: the closest, and those nearly as close."""
    matches = difflib.get_close_matches(word, candidates, n=3, cutoff=0.6)
    scores = [difflib.SequenceMatcher(None, word, match).ratio() for match in matches]
    return [match for match, score in zip(matches, scores, strict=True) if score >= scores[0] - 0.1]


def did_you_mean(names: list[str]) -> str:
    """`` (did you mean 'a', 'b' or 'c'?)``, or nothing when there is no close name."""
    if not names:
        return ""
    quoted = [repr(n) for n in names]
    listed = f"{', '.join(quoted[:-1])} or {quoted[-1]}" if len(quoted) > 1 else quoted[0]
    return f" (did you mean {listed}?)"


@dataclass(frozen=True, slots=True)
class Resolved:
    """Where a target lives (``owner.attribute``), what it is, and the plain function."""

    spec: TargetSpec
    owner: object  # the module or class whose attribute it is
    attribute: str
    raw: object  # as found in the owner's __dict__ (a staticmethod, a classmethod, a function)
    function: Callable[..., Any]
    kind: Kind
    is_async: bool

    @classmethod
    def make(cls, spec: TargetSpec, owner: object, attribute: str, raw: object) -> Resolved:
        kind: Kind
        function: object
        if isinstance(raw, staticmethod):
            kind, function = "staticmethod", raw.__func__
        elif isinstance(raw, classmethod):
            kind, function = "classmethod", raw.__func__
        elif inspect.isclass(owner):
            kind, function = "method", raw
        else:
            kind, function = "function", raw
        if not callable(function) or inspect.isclass(function):
            raise TargetError(f"{spec.text}: is a {type(raw).__name__}, not a function; name the function to patch")
        role = spec.role or "loop"
        refused = refused_object(function, owner, role)
        if refused is None and spec.module is not None:
            refused = refused_module(spec.module, role)
        if refused is not None:
            raise TargetError(f"{spec.text}: {refused}")
        plain = inspect.unwrap(function)
        if inspect.isgeneratorfunction(plain) or inspect.isasyncgenfunction(plain):
            raise TargetError(
                f"{spec.text}: is a generator function; its items are produced lazily and cannot "
                "be run again on fallback, so declare the function that consumes it instead"
            )
        return cls(
            spec=spec,
            owner=owner,
            attribute=attribute,
            raw=raw,
            function=function,
            kind=kind,
            is_async=inspect.iscoroutinefunction(plain),
        )


class ArgumentLocator:
    """Finds one argument of a call, by parameter name or position (a loop's ``items``).

    ``find`` returns the argument's value and a function giving the call's arguments with
    that value replaced, or None when the call does not pass it.
    """

    def __init__(self, where: str | int) -> None:
        self.where = where
        self._signature: inspect.Signature | None = None

    def find(
        self, call: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> tuple[Any, Callable[[Any], tuple[tuple[Any, ...], dict[str, Any]]]] | None:
        where = self.where
        if isinstance(where, int):
            if where >= len(args):
                return None
            return args[where], lambda new: ((*args[:where], new, *args[where + 1 :]), kwargs)
        if where in kwargs:
            return kwargs[where], lambda new: (args, {**kwargs, where: new})
        if self._signature is None:
            self._signature = inspect.signature(call)
        try:
            bound = self._signature.bind_partial(*args, **kwargs)
        except TypeError:
            return None  # the call itself will raise the TypeError
        if where not in bound.arguments:
            return None

        def replaced(new: Any) -> tuple[tuple[Any, ...], dict[str, Any]]:
            bound.arguments[where] = new
            return bound.args, bound.kwargs

        return bound.arguments[where], replaced
