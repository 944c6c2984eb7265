"""One function's tree walked: where each name's value comes from, then the first store
into what the function did not make, or the first call that may change it (``_calls``).

Names take the highest state any of their bindings gives them (the analysis ignores the
order of statements); the parameters of nested functions and lambdas are others' objects,
since the check cannot see who calls them.
"""

from __future__ import annotations

import ast
import functools
import importlib.util
import inspect
import sys
import types
from collections.abc import Iterator
from typing import Any

from ._calls import ELEMENT, FRESH, OUTSIDE, RESULT, SHALLOW, Arguments, Calls, Found, Outcome, shown
from ._known import NONE, Owner, Source, dotted, global_name, library, parameter_types, source

__all__ = ["follow"]

_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)


def follow(
    memo: dict[Any, Outcome],
    function: types.FunctionType,
    owner: Owner | None,
    states: tuple[int, ...] | None,
    depth: int,
    busy: frozenset[Any] = frozenset(),
) -> Outcome:
    """What a function (whose source reads) returns and its first finding, its parameters in
    ``states`` (all others' objects if None). Each is followed once per check (``memo``); a
    call back into one being followed is taken as clean: its finding is that one's."""
    key = (function, owner, states)
    if key in busy:
        return RESULT, None
    if (key, depth) not in memo:
        found = source(function)
        assert found is not None, "callers read the source first"
        memo[key, depth] = _Check(memo, found, function, owner, states, depth, busy | {key}).run()
    return memo[key, depth]


def _own(scope: ast.AST) -> Iterator[ast.AST]:
    """The nodes of one scope: nested functions, lambdas and classes, not what is inside them."""
    todo = list(ast.iter_child_nodes(scope))
    while todo:
        node = todo.pop()
        yield node
        if not isinstance(node, _SCOPES):
            todo.extend(ast.iter_child_nodes(node))


def _parameters(arguments: ast.arguments) -> list[str]:
    every = [*arguments.posonlyargs, *arguments.args, arguments.vararg, *arguments.kwonlyargs, arguments.kwarg]
    return [a.arg for a in every if a is not None]


class _Check(Calls):
    """One function's tree: the state of each name, then the first finding."""

    def __init__(
        self,
        memo: dict[Any, Outcome],
        found: Source,
        function: types.FunctionType,
        owner: Owner | None,
        states: tuple[int, ...] | None,
        depth: int,
        busy: frozenset[Any],
    ) -> None:
        self.memo, self.source, self.function, self.owner = memo, found, function, owner
        self.depth, self.busy = depth, busy
        cells = zip(function.__code__.co_freevars, function.__closure__ or (), strict=False)
        closure = {name: _contents(cell) for name, cell in cells}
        self.global_name = global_name({**function.__globals__, **closure})
        parameters = _parameters(found.node.args)
        self.me = parameters[0] if owner is not None and parameters else None  # self or cls
        self.names = {name: OUTSIDE if states is None else states[i] for i, name in enumerate(parameters)}
        self.parameters = set(parameters)
        self.annotated = parameter_types(function)
        self.declared: dict[str, str] = {}  # names declared global or nonlocal, and what they are
        self.defs = set()  # nested functions and classes: their code is in this tree
        self.imports: dict[str, Any] = {}
        self.literals: dict[str, list[ast.Dict | None]] = {}  # each binding of a name: a dict literal, or not
        self.bindings: list[tuple[ast.expr, ast.expr, bool]] = []  # target, value, bound to each element
        self.found: Found | None = None
        self._scan(found.node, ())

    def _scan(self, scope: ast.AST, enclosing: tuple[set[str], ...]) -> None:
        own = list(_own(scope))
        declared = {name: type(n) for n in own if isinstance(n, ast.Global | ast.Nonlocal) for name in n.names}
        bound = {n.id for n in own if isinstance(n, ast.Name) and not isinstance(n.ctx, ast.Load)}
        bound |= set(_parameters(scope.args)) if isinstance(scope, ast.FunctionDef | ast.AsyncFunctionDef) else set()
        for name, kind in declared.items():
            if kind is ast.Global or not any(name in names for names in enclosing):
                self.declared[name] = "the global" if kind is ast.Global else "the closure variable"
        for node in own:
            if isinstance(node, _SCOPES):
                self.defs |= set() if isinstance(node, ast.Lambda) else {node.name}
                inner = [] if isinstance(node, ast.ClassDef) else _parameters(node.args)
                self.names.update(dict.fromkeys(inner, OUTSIDE))  # called from where the check cannot see
                self._scan(node, (*enclosing, bound - set(declared)))
            elif isinstance(node, ast.Assign | ast.AnnAssign | ast.NamedExpr) and node.value is not None:
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                self.bindings += [(target, node.value, False) for target in targets]
                for name in (target.id for target in targets if isinstance(target, ast.Name)):
                    self.literals.setdefault(name, []).append(node.value if isinstance(node.value, ast.Dict) else None)
            elif isinstance(node, ast.For | ast.AsyncFor | ast.comprehension):
                self.bindings.append((node.target, node.iter, True))
            elif isinstance(node, ast.withitem) and node.optional_vars is not None:
                self.bindings.append((node.optional_vars, node.context_expr, False))
            elif isinstance(node, ast.ExceptHandler) and node.name is not None:
                self.names.setdefault(node.name, FRESH)  # the exception raised in its code
            elif isinstance(node, ast.Import | ast.ImportFrom):
                self._import(node)

    def _import(self, node: ast.Import | ast.ImportFrom) -> None:
        package = self.function.__globals__.get("__package__") or ""
        for alias in node.names:
            if isinstance(node, ast.Import):
                name = alias.asname or alias.name.partition(".")[0]
                self.imports[name] = sys.modules.get(alias.name if alias.asname else name, NONE)
                continue
            try:
                module = sys.modules.get(importlib.util.resolve_name("." * node.level + (node.module or ""), package))
            except ImportError:
                module = None
            self.imports[alias.asname or alias.name] = vars(module).get(alias.name, NONE) if module else NONE

    def run(self) -> Outcome:
        """What the function returns (its state) and its first finding."""
        for _ in range(len(self.bindings) + 1):  # states only rise: settled in a few passes
            if not [target for target, value, each in self.bindings if self._bind(target, value, each)]:
                break
        self._visit(self.source.node)
        node = self.source.node
        values = (
            [node.body]
            if isinstance(node, ast.Lambda)
            else [
                n.value
                for n in _own(node)
                if isinstance(n, ast.Return | ast.Yield | ast.YieldFrom) and n.value is not None
            ]
        )
        return max((self.state(value) for value in values), default=FRESH), self.found

    def follow(self, function: types.FunctionType, owner: Owner | None, states: tuple[int, ...]) -> Outcome:
        """A function this one calls, followed one call deeper."""
        return follow(self.memo, function, owner, states, self.depth - 1, self.busy)

    def _bind(self, target: ast.expr, value: ast.expr, each: bool) -> bool:
        if isinstance(target, ast.Tuple | ast.List) and isinstance(value, ast.Tuple | ast.List) and not each:
            if len(target.elts) == len(value.elts):
                return bool([t for t, v in zip(target.elts, value.elts, strict=True) if self._bind(t, v, False)])
        return self._bind_name(target, ELEMENT[self.state(value)] if each else self.state(value))

    def _bind_name(self, target: ast.expr, state: int) -> bool:
        if isinstance(target, ast.Tuple | ast.List | ast.Starred):
            parts = [target.value] if isinstance(target, ast.Starred) else target.elts
            return bool([part for part in parts if self._bind_name(part, ELEMENT[state])])
        if not isinstance(target, ast.Name) or target.id in self.declared or self.names.get(target.id, -1) >= state:
            return False
        self.names[target.id] = state
        return True

    def state(self, node: ast.expr) -> int:
        """Where the value of an expression comes from."""
        if isinstance(node, ast.Name):
            return FRESH if node.id in self.defs else self.names.get(node.id, OUTSIDE)
        if isinstance(node, ast.Subscript) and (value := self._literal(node)) is not None:
            return self.state(value)
        if isinstance(node, ast.Attribute | ast.Subscript):
            return ELEMENT[self.state(node.value)]
        if isinstance(node, ast.Starred | ast.Await | ast.NamedExpr):
            return self.state(node.value)
        if isinstance(node, ast.Call):
            return self.call(node)[0]
        if isinstance(node, ast.BoolOp):
            return max(self.state(part) for part in node.values)
        if isinstance(node, ast.IfExp):
            return max(self.state(node.body), self.state(node.orelse))
        parts: list[ast.expr] = []
        if isinstance(node, ast.List | ast.Tuple | ast.Set):
            parts = node.elts
        elif isinstance(node, ast.Dict):
            parts = [*(key for key in node.keys if key is not None), *node.values]
        elif isinstance(node, ast.ListComp | ast.SetComp | ast.GeneratorExp):
            parts = [node.elt]
        elif isinstance(node, ast.DictComp):
            parts = [node.key, node.value]
        elif isinstance(node, ast.BinOp):
            parts = [node.left, node.right]
        elif not isinstance(node, ast.Constant | ast.JoinedStr | ast.Compare | ast.UnaryOp | ast.Lambda):
            return RESULT
        return FRESH if all(self.state(part) == FRESH for part in parts) else SHALLOW

    def _literal(self, node: ast.Subscript) -> ast.expr | None:
        """What ``name["key"]`` was made with, when every binding of ``name`` is a dict literal
        holding that key (``out = {"rows": []}``: ``out["rows"]`` is the function's own list)."""
        if not isinstance(node.value, ast.Name) or not isinstance(node.slice, ast.Constant):
            return None
        literals = self.literals.get(node.value.id, [None])
        found = [
            v
            for d in literals
            if d is not None
            for k, v in zip(d.keys, d.values, strict=True)
            if isinstance(k, ast.Constant) and k.value == node.slice.value
        ]
        names_bound = sum(
            1 for target, _, _ in self.bindings if isinstance(target, ast.Name) and target.id == node.value.id
        )
        if len(found) != len(literals) or len(literals) != names_bound or node.value.id in self.parameters:
            return None
        return ast.BoolOp(ast.Or(), found) if len(found) > 1 else found[0]

    def static(self, node: ast.expr) -> Any:
        """What a name or dotted name not bound by the function is: a module, a class, a
        function, a module-level object, an import inside the function; NONE otherwise."""

        def name(text: str) -> Any:
            if text in self.imports:
                return self.imports[text]
            return NONE if text in self.names or text in self.defs else self.global_name(text)

        return dotted(node, name)

    def _visit(self, node: ast.AST) -> None:
        if self.found is not None:
            return
        children = list(ast.iter_child_nodes(node))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):  # decorators run once, at def
            children = [child for child in children if child not in node.decorator_list]
        if isinstance(node, ast.Assign | ast.Delete):
            self._stores(node.targets, "deletes" if isinstance(node, ast.Delete) else "stores", node)
        elif isinstance(node, ast.AugAssign | ast.For | ast.AsyncFor) or (
            isinstance(node, ast.AnnAssign) and node.value
        ):
            self._stores([node.target], "updates" if isinstance(node, ast.AugAssign) else "stores", node)
        elif isinstance(node, ast.withitem) and node.optional_vars is not None:
            self._stores([node.optional_vars], "stores", node.context_expr)
        elif isinstance(node, ast.Call):
            self.found = self.call(node)[1]
            func = node.func
            children = [*node.args, *node.keywords, *([func.value] if isinstance(func, ast.Attribute) else [])]
        elif isinstance(node, ast.Attribute | ast.Name) and isinstance(node.ctx, ast.Load):
            self.found = self._reference(node)
        for child in children:
            self._visit(child)

    def _stores(self, targets: list[ast.expr], verb: str, node: ast.AST) -> None:
        for target in targets:
            if isinstance(target, ast.Tuple | ast.List | ast.Starred):
                self._stores([target.value] if isinstance(target, ast.Starred) else target.elts, verb, node)
            elif isinstance(target, ast.Name) and target.id in self.declared:
                self.found = self.found or self.at(node, f"{verb} {self.declared[target.id]} {target.id}")
            elif isinstance(target, ast.Attribute | ast.Subscript) and self.state(target.value) >= RESULT:
                self.found = self.found or self.at(node, f"{verb} {shown(target)}")

    def _reference(self, node: ast.Attribute | ast.Name) -> Found | None:
        """A property read, or a method or function named but not called here (a callback):
        followed as if called with arguments the check cannot see."""
        unknown: Arguments = ((OUTSIDE,), {}, True)
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == self.me:
            assert self.owner is not None
            raw = inspect.getattr_static(self.owner.cls, node.attr, NONE)
            if isinstance(raw, functools.cached_property):
                tail = ", a cached_property: a shadow would fill it before the real call trusts it"
                return self.at(node, f"reads {shown(node)}", tail)
            if isinstance(raw, property) and isinstance(raw.fget, types.FunctionType):
                return self.into(raw.fget, self.owner, ((OUTSIDE,), {}, False), node, shown(node))[1]
            if isinstance(raw, types.FunctionType) and not library(raw.__module__):
                return self.into(raw, self.owner, unknown, node, shown(node))[1]
        elif isinstance(node, ast.Name) and node.id not in self.names and node.id not in self.defs:
            value = self.static(node)
            if (isinstance(value, types.FunctionType) and not library(value.__module__)) or hasattr(
                value, "cache_info"
            ):
                return self.call_object(value, node, node.id, ((), {}, True))[1]
        return None


def _contents(cell: types.CellType) -> Any:
    try:
        return cell.cell_contents
    except ValueError:  # a closure variable not yet assigned
        return NONE
