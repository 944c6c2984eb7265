"""The calls in a function's tree: what each one is, followed into the app's code where it
resolves statically, judged by the tables of ``_known`` where it is a library's.

A call resolves through the name it is made on: a module-level name (a function, a class
constructed, a module's member, a module-level object's method), ``self``/``cls`` (the
method on the class through its MRO, and every subclass's override unless the instance is
known), a parameter or ``self.<attribute>`` of a known type. What is found is followed with
the states of its arguments: a helper that appends to a list the caller made is fine, the
same helper given ``self.rows`` is not.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import inspect
import os
import types
from typing import Any

from ..._unpatchable import HTTP_LIBRARIES
from ._known import (
    ARG_MUTATORS,
    CLIENT_STATE,
    COPIES,
    ELEMENTS,
    JUDGED,
    MUTATING,
    NONE,
    PASSES,
    READ_ONLY,
    READS,
    UNREAD,
    Owner,
    Source,
    attribute_type,
    class_of,
    library,
    source,
    subclasses,
)

__all__ = ["DEPTH", "ELEMENT", "FRESH", "OUTSIDE", "RESULT", "SHALLOW", "Arguments", "Calls", "Found", "Outcome"]

#: How many calls below the function the check follows; a call past them is refused.
DEPTH = 5
#: Where a value comes from: made by the function; a container it made holding others'
#: objects (``dict(self.defaults)``); returned by a call on others' (``self.cache.get(k)``,
#: a response); others' own (a parameter, ``self``, a global, a closure variable, an
#: element of one).
FRESH, SHALLOW, RESULT, OUTSIDE = 0, 1, 2, 3
#: The state of an element or an attribute of a value, by the value's state.
ELEMENT = (FRESH, RESULT, RESULT, OUTSIDE)
#: A call's arguments: the states of the positional ones, of the keywords, and whether a
#: ``*args``/``**kwargs`` hides some.
Arguments = tuple[tuple[int, ...], dict[str, int], bool]
_UNKNOWN: Arguments = ((), {}, True)


@dataclasses.dataclass(frozen=True, slots=True)
class Found:
    """A store or a call that may change state, where it is, and the calls that led there."""

    what: str
    file: str
    line: int
    path: tuple[str, ...]  # the functions, innermost first
    tail: str = ""

    def why(self) -> str:
        """One line: ``stores self.seen (tracker.py:41, in Tracker._remember called from Tracker.fetch)``."""
        where = f"{os.path.basename(self.file)}:{self.line}, in {' called from '.join(self.path)}"
        return f"{self.what} ({where}){self.tail}"


#: What a call or a function returns (its state), and its first finding.
Outcome = tuple[int, Found | None]


def shown(node: ast.AST) -> str:
    """An expression as the source has it, cut to a readable length."""
    text = ast.unparse(node)
    return text if len(text) <= 60 else text[:57] + "..."


class Calls:
    """The call half of one function's check; the tree half (``_walk``) gives the states of
    expressions and runs the followed functions."""

    memo: dict[Any, Outcome]
    source: Source
    owner: Owner | None
    me: str | None  # the name of self or cls
    names: dict[str, int]
    parameters: set[str]
    annotated: dict[str, type]  # the classes the parameters are annotated with
    defs: set[str]
    depth: int
    busy: frozenset[Any]

    def state(self, node: ast.expr) -> int:
        """Where the value of an expression comes from (the tree half says)."""
        raise NotImplementedError

    def static(self, node: ast.expr) -> Any:
        """What a name not bound by the function is (the tree half says); NONE if unknown."""
        raise NotImplementedError

    def follow(self, function: types.FunctionType, owner: Owner | None, states: tuple[int, ...]) -> Outcome:
        """A function followed with its parameters in ``states`` (the tree half runs it)."""
        raise NotImplementedError

    def at(self, node: ast.AST, what: str, tail: str = "") -> Found:
        """A finding at a node of this function."""
        return Found(what, self.source.file, self.source.line(node), (self.source.name,), tail)

    def _unfollowed(self, node: ast.AST, text: str, what: str = "") -> Found:
        return self.at(node, f"calls {text}", f",{what} which could not be followed")

    def _changes(self, node: ast.AST, text: str, base: ast.AST) -> Found:
        return self.at(node, f"calls {text}", f", which changes {shown(base)}")

    def arguments(self, node: ast.Call) -> Arguments:
        """The states of a call's arguments."""
        positional = tuple(self.state(a) for a in node.args if not isinstance(a, ast.Starred))
        keywords = {k.arg: self.state(k.value) for k in node.keywords if k.arg is not None}
        hidden = any(isinstance(a, ast.Starred) for a in node.args) or any(k.arg is None for k in node.keywords)
        return positional, keywords, hidden

    def call(self, node: ast.Call) -> Outcome:
        """What a call returns, and whether it may change state."""
        func, text = node.func, shown(node.func)
        if isinstance(func, ast.Attribute):
            return self._method(func.value, func.attr, node, text)
        if isinstance(func, ast.Name) and func.id in self.defs:
            return FRESH, None  # a nested function or class: its code is in this tree
        if isinstance(func, ast.Name) and func.id not in self.names:
            return self.call_object(self.static(func), node, text, self.arguments(node))
        if self.state(func) == FRESH:
            return FRESH, None  # a lambda or an object the function made
        what = " a parameter," if isinstance(func, ast.Name) and func.id in self.parameters else ""
        return RESULT, self._unfollowed(node, text, what)

    def _method(self, base: ast.expr, name: str, node: ast.Call, text: str) -> Outcome:
        arguments = self.arguments(node)
        if self.owner is not None and isinstance(base, ast.Call) and ast.unparse(base.func) == "super":
            parents = [k for k in self.owner.cls.__mro__[1:] if name in vars(k)]
            return (
                self._member(parents[0], name, node, text, arguments, OUTSIDE, self.owner) if parents else (FRESH, None)
            )
        if ast.unparse(base) in ("sys.stdout", "sys.stderr"):
            return FRESH, None  # dropped at run time, like print
        found = self.static(base)
        if isinstance(found, types.ModuleType):
            return self.call_object(vars(found).get(name, NONE), node, text, arguments)
        if isinstance(found, type):
            return self._member(found, name, node, text, arguments, None, Owner(found))
        if found is not NONE:  # an object made at module level: a logger, a session, a dict
            return self._typed(type(found), name, node, text, arguments, base, OUTSIDE)
        state = self.state(base)
        if isinstance(base, ast.Name) and base.id == self.me and self.owner is not None:
            return self._member(self.owner.cls, name, node, text, arguments, state, self.owner)
        if state <= SHALLOW:
            return ELEMENT[state], None  # the function's own object
        if state == RESULT:  # what a call returned: a response, or a shared element
            return (RESULT if name in ELEMENTS else FRESH), self._changes(
                node, text, base
            ) if name in MUTATING else None
        return self._typed(self._type(base), name, node, text, arguments, base, state)

    def _type(self, base: ast.expr) -> type | None:
        """The class of a parameter or of ``self.<attribute>``, when known."""
        if isinstance(base, ast.Name):
            return self.annotated.get(base.id)
        if isinstance(base, ast.Attribute) and isinstance(base.value, ast.Name) and base.value.id == self.me:
            assert self.owner is not None
            return dict(self.owner.attrs).get(base.attr) or attribute_type(self.owner.cls, base.attr)
        return None

    def _typed(
        self,
        kind: type | None,
        name: str,
        node: ast.Call,
        text: str,
        arguments: Arguments,
        base: ast.expr,
        state: int,
    ) -> Outcome:
        """A method called on others' object, of class ``kind`` if known."""
        if kind is not None and not library(kind.__module__):
            return self._member(kind, name, node, text, arguments, state, Owner(kind))
        top = "" if kind is None else kind.__module__.partition(".")[0]
        if top in HTTP_LIBRARIES and name in CLIENT_STATE:
            return RESULT, self.at(node, f"calls {text}", ", which changes the app's HTTP client")
        if top in JUDGED:
            return FRESH, None  # the run time judges: a read is kept, a write stops the shadow
        if name in MUTATING:
            return RESULT, self._changes(node, text, base)
        if top in READ_ONLY or name in READS:
            return (RESULT if name in ELEMENTS else FRESH), None
        return RESULT, self._unfollowed(node, text)

    def _member(
        self,
        cls: type,
        name: str,
        node: ast.Call,
        text: str,
        arguments: Arguments,
        bound: int | None,
        owner: Owner,
    ) -> Outcome:
        """``cls``'s attribute ``name`` called, on an instance in state ``bound`` (None: on the class)."""
        if library(cls.__module__):
            return self._typed(cls, name, node, text, arguments, node.func, OUTSIDE)
        raw = inspect.getattr_static(cls, name, NONE)
        if raw is NONE or not (callable(raw) or isinstance(raw, staticmethod | classmethod)):
            return RESULT, self._unfollowed(node, text)  # set on the instance (a callback), or by __getattr__
        classes = [cls] if owner.exact or bound is None else [cls, *subclasses(cls)]
        outcomes = []
        for klass in classes:
            method = inspect.getattr_static(klass, name, raw)
            if method is raw and klass is not cls:
                continue
            mine = dataclasses.replace(owner, cls=klass)
            positional, keywords, hidden = arguments
            if isinstance(method, classmethod) and isinstance(method.__func__, types.FunctionType):
                outcome = self.into(method.__func__, mine, ((OUTSIDE, *positional), keywords, hidden), node, text)
            elif isinstance(method, types.FunctionType) and bound is not None:
                outcome = self.into(method, mine, ((bound, *positional), keywords, hidden), node, text)
            else:  # a static method, Class.method(obj), a cached method, a callable class attribute
                outcome = self.call_object(
                    method.__func__ if isinstance(method, staticmethod) else method, node, text, arguments
                )
            outcomes.append(outcome)
        found = [f for _, f in outcomes if f is not None]
        return max(state for state, _ in outcomes), found[0] if found else None

    def call_object(self, value: Any, node: ast.AST, text: str, arguments: Arguments) -> Outcome:
        """A call of an object found statically: the app's function or class is followed,
        a library's is judged by its module."""
        for _ in range(64):  # a chain of wrappers, even one that loops, ends
            if value is NONE:
                break
            mine = not library(getattr(value, "__module__", None) or "builtins")  # a library's caches are its own
            if mine and (hasattr(value, "cache_info") or (hasattr(value, "__wrapped__") and hasattr(value, "cache"))):
                tail = ", whose cache a shadow would fill before the real call trusts it (two shadows may both miss)"
                return RESULT, self.at(node, f"calls {text}", tail)
            if isinstance(value, functools.partial):
                value, arguments = value.func, _UNKNOWN
            elif getattr(value, "__wrapped__", None) is not None:
                value = value.__wrapped__
            else:
                break
        if value is NONE:
            return RESULT, self._unfollowed(node, text)
        if isinstance(value, types.MethodType) and isinstance(value.__func__, types.FunctionType):
            instance = value.__self__
            owner = Owner(instance if isinstance(instance, type) else type(instance), (), True)
            return self.into(value.__func__, owner, ((OUTSIDE, *arguments[0]), arguments[1], arguments[2]), node, text)
        if isinstance(value, types.FunctionType) and not library(value.__module__):
            return self.into(value, None, arguments, node, text)
        if isinstance(value, type) and not library(value.__module__):
            return self._construct(value, node, text, arguments)
        call = inspect.getattr_static(type(value), "__call__", None)
        if not isinstance(value, type) and isinstance(call, types.FunctionType) and not library(call.__module__):
            owner = Owner(type(value), (), True)
            return self.into(call, owner, ((OUTSIDE, *arguments[0]), arguments[1], arguments[2]), node, text)
        return self._library_call(value, node, text, arguments)

    def _construct(self, cls: type, node: ast.AST, text: str, arguments: Arguments) -> Outcome:
        """An app's class made: its ``__init__`` and ``__post_init__`` run on a new object."""
        positional, keywords, hidden = arguments
        for name, given in (
            ("__init__", ((FRESH, *positional), keywords, hidden)),
            ("__post_init__", ((FRESH,), {}, False)),
        ):
            method = inspect.getattr_static(cls, name, None)
            if not isinstance(method, types.FunctionType) or library(method.__module__):
                continue
            if source(method) is None and dataclasses.is_dataclass(cls):
                continue  # generated by dataclasses: it only sets the new object's fields
            found = self.into(method, Owner(cls, (), True), given, node, text)[1]
            if found is not None:
                return FRESH, found
        return FRESH, None

    def _library_call(self, value: Any, node: ast.AST, text: str, arguments: Arguments) -> Outcome:
        """A library's function or class called: judged by its module (``_known``)."""
        owner = getattr(value, "__self__", None)  # a built-in method: random.random is Random().random
        module = getattr(value, "__module__", None) or getattr(type(owner), "__module__", None) or "builtins"
        top, name = module.partition(".")[0], getattr(value, "__name__", "")
        positional, keywords, hidden = arguments
        every = [*positional, *keywords.values(), *([OUTSIDE] if hidden else [])]
        first = positional[0] if positional else (OUTSIDE if hidden else FRESH)
        if name in ARG_MUTATORS and first >= RESULT and isinstance(node, ast.Call) and node.args:
            return RESULT, self._changes(node, text, node.args[0])
        if top == "random" and not isinstance(value, type):
            return RESULT, self.at(
                node, f"calls {text}", ", which draws from random's shared generator the real run draws from"
            )
        if top == "builtins" and name in UNREAD:
            return RESULT, self._unfollowed(node, text)
        if _member_of(value, COPIES):
            return (FRESH if max(every, default=FRESH) == FRESH else SHALLOW), None
        if _member_of(value, PASSES):
            return ELEMENT[max(every, default=FRESH)], None
        if top in JUDGED or top in READ_ONLY or OUTSIDE not in every:
            return FRESH, None  # what a library makes from the function's own values is its own
        return RESULT, self._unfollowed(node, text)

    def into(
        self, function: types.FunctionType, owner: Owner | None, arguments: Arguments, node: ast.AST, text: str
    ) -> Outcome:
        """The app's function called: followed with its arguments' states, one call deeper."""
        found = source(function)
        if found is None:
            return RESULT, self.at(node, f"calls {text}", ", whose source cannot be read")
        if self.depth <= 0:
            return RESULT, self.at(node, f"calls {text}", f", which is past the {DEPTH} calls this check follows")
        if owner is None and (mine := class_of(function)) is not None and found.node.args.args:
            owner = mine  # a method reached through its class: Class.method(obj)
        state, inner = self.follow(function, owner, _bind(found.node.args, arguments))
        return state, None if inner is None else dataclasses.replace(inner, path=(*inner.path, self.source.name))


def _member_of(value: Any, table: frozenset[Any]) -> bool:
    try:
        return value in table
    except TypeError:  # unhashable
        return False


def _bind(arguments: ast.arguments, given: Arguments) -> tuple[int, ...]:
    """The states of a function's parameters (in ``_walk``'s order) for a call's arguments;
    a default that is not a constant is shared by every call: others' object."""
    positional, keywords, hidden = given
    ordered = [*arguments.posonlyargs, *arguments.args]
    defaults = dict(
        zip([a.arg for a in ordered][len(ordered) - len(arguments.defaults) :], arguments.defaults, strict=True)
    )
    defaults.update(
        {a.arg: d for a, d in zip(arguments.kwonlyargs, arguments.kw_defaults, strict=True) if d is not None}
    )

    def default(name: str) -> int:
        value = defaults.get(name)
        return OUTSIDE if hidden or (value is not None and not isinstance(value, ast.Constant)) else FRESH

    names = {a.arg for a in ordered}
    states = [
        positional[i] if i < len(positional) else keywords.get(a.arg, default(a.arg)) for i, a in enumerate(ordered)
    ]
    if arguments.vararg is not None:
        states.append(OUTSIDE if hidden else max(positional[len(ordered) :], default=FRESH))
    states += [keywords.get(a.arg, default(a.arg)) for a in arguments.kwonlyargs]
    if arguments.kwarg is not None:
        extra = [state for key, state in keywords.items() if key not in names]
        states.append(OUTSIDE if hidden else max(extra, default=FRESH))
    return tuple(states)
