"""Target specs: ``"pkg.mod:Class.method"`` or ``"jobs/tracker.py:main"``, and resolving them.

A spec names a module (or a script file run as ``__main__``) and a qualname inside it.
Resolving walks the qualname through classes, looking the last name up in the ``__dict__``
that defines it, so that classmethods and staticmethods are seen for what they are; a name
on the way is read as Python reads it (a Django model's ``objects`` gives its manager). A
name that is not there is reported with the close names that are (:func:`close_names`).

Two kinds of object are patched where the framework calls them, not where the spec finds them:

- a **Celery task** (``@app.task``, ``@shared_task``, a ``Task`` subclass's instance): a
  worker runs the ``run`` it finds on the task (its tracer takes ``task.run``; a custom
  ``__call__`` calls it too), never the module's attribute, so ``module:task`` (and
  ``module:task.run``) patch that ``run``: on the task's class, or on the task itself when it
  has its own (``autoretry_for`` wraps the class's in one). A task its app has not made yet
  (the decorator's lazy proxy) is not forced into being, which would bind it to an app not
  configured yet: it is patched when the app makes it (:class:`~._patching.Later`);
- a **method of a Django model's manager** (``City.objects.all``): the manager is made per
  model from a class that every such model shares (``all`` is defined on that class), so the
  method is patched on the class, for that model's manager only (:class:`~._patching.Guarded`).
"""

from __future__ import annotations

import difflib
import functools
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
from ._patching import Guarded, Later
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
            raise ValueError(
                '"module:qualname", a colon then the function\'s name, for example "legacy_app.jobs:update_scores"'
            )
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
            if parts[depth:] == ["run"] and is_celery_task(parent):  # "module:task.run": the task's run
                return _celery_run(self, parent)
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
                parent = self._through(parent, name, raw)
                continue
            if is_celery_task(raw):
                return _celery_run(self, raw)
            return _manager_method(self, owner, name) or Resolved.make(self, owner, name, raw)
        raise AssertionError("unreachable")  # pragma: no cover

    def _through(self, parent: Any, name: str, raw: Any) -> Any:
        """The value of a name on the way to the target: a class's attribute as Python reads
        it (a descriptor's value: a Django model's ``objects`` gives its manager), else as held."""
        if not inspect.isclass(parent) or not hasattr(type(raw), "__get__") or is_celery_task(raw):
            return raw
        try:
            return getattr(parent, name)
        except Exception as exc:  # noqa: BLE001 - the descriptor's own refusal (an abstract model's manager)
            raise TargetError(f"{self.text}: reading {name} failed: {type(exc).__name__}: {exc}") from exc


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
    siblings = sorted(
        {m.name for m in pkgutil.iter_modules(path)} | (set() if package else set(sys.builtin_module_names))
    )
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
    """Where a target lives (``owner.attribute``), what it is, and the plain function.

    ``label`` says where a framework's object is patched (``celery task (run)``), for the
    patched line and ``check``; :attr:`described` is it, or the kind.
    """

    spec: TargetSpec
    owner: object  # the module or class whose attribute it is (or a Guarded or Later one: ``_patching``)
    attribute: str
    raw: object  # as found in the owner's __dict__ (a staticmethod, a classmethod, a function)
    function: Callable[..., Any]
    kind: Kind
    is_async: bool
    label: str = ""

    @property
    def described(self) -> str:
        """What it is, for people: ``function``, ``method``... or where a framework's object is patched."""
        return self.label or self.kind

    @classmethod
    def make(
        cls,
        spec: TargetSpec,
        owner: object,
        attribute: str,
        raw: object,
        *,
        on_class: bool | None = None,
        label: str = "",
    ) -> Resolved:
        """``on_class``: the owner is a class (default: whether ``owner`` is one)."""
        kind: Kind
        function: object
        if isinstance(raw, staticmethod):
            kind, function = "staticmethod", raw.__func__
        elif isinstance(raw, classmethod):
            kind, function = "classmethod", raw.__func__
        elif inspect.isclass(owner) if on_class is None else on_class:
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
            label=label,
        )


# -- Celery tasks ----------------------------------------------------------------------------
#: How a Celery task's target is described, in the patched line and by ``check``.
CELERY_TASK = "celery task (run)"

Subscribe = Callable[[Callable[[object], None]], None]


def is_celery_task(value: object) -> bool:
    """Whether ``value`` is a Celery task, or the proxy of one that ``@app.task`` or
    ``@shared_task`` returns; told from its type and the proxy's own slots, so that a proxy is
    never evaluated. False when celery was never imported (nothing is imported here)."""
    if "celery" not in sys.modules:
        return False
    local = sys.modules.get("celery.local")
    if local is not None and issubclass(type(value), local.Proxy):
        return _made(value) is not None or _promise(value) is not None
    task = sys.modules.get("celery.app.task")
    return task is not None and issubclass(type(value), task.Task)


def _celery_run(spec: TargetSpec, value: object) -> Resolved:
    """The ``run`` a worker calls for the task ``value``: where it is now, or, for a task
    its app has not made yet, where it will be (patched then)."""
    task = _made(value)
    if task is not None:
        owner, raw = _run_of(task)
        return Resolved.make(spec, owner, "run", raw, label=CELERY_TASK)
    promise = _promise(value)
    assert promise is not None  # is_celery_task said so
    function, bound, subscribe = promise
    try:
        later = object.__getattribute__(value, "_sched_accel_later")
    except AttributeError:  # the first time this proxy is resolved: its owner-to-be, kept on it
        later = Later(subscribe)
        object.__setattr__(value, "_sched_accel_later", later)
    raw = function if bound else staticmethod(function)
    return Resolved.make(spec, later, "run", raw, on_class=True, label=CELERY_TASK)


def _made(value: object) -> object | None:
    """The task ``value`` is (a Task) or holds (an evaluated ``@app.task`` proxy), or None."""
    task = sys.modules.get("celery.app.task")
    if task is not None and issubclass(type(value), task.Task):
        return value
    try:
        thing: object = object.__getattribute__(value, "__thing")  # celery.local.PromiseProxy, once evaluated
    except AttributeError:
        return None
    return thing


def _run_of(task: object) -> tuple[object, object]:
    """Where a worker finds the task's body: the task's own ``run`` when it has one (set by
    ``autoretry_for``, around the class's), else its class's (the tracer and ``Task.__call__``
    both read ``task.run``). Patching the class reaches that task only: each task has its own."""
    own = vars(task).get("run") if hasattr(task, "__dict__") else None
    if own is not None:
        return task, own
    kind = type(task)
    return kind, next(vars(k)["run"] for k in inspect.getmro(kind) if "run" in vars(k))


def _promise(proxy: object) -> tuple[Callable[..., Any], bool, Subscribe] | None:
    """For the proxy of a task not made yet: its function, whether ``run`` takes the task as
    ``self`` (``bind=True``), and how to learn when an app makes it; None for another proxy."""
    try:
        local = object.__getattribute__(proxy, "_Proxy__local")
        args = object.__getattribute__(proxy, "_Proxy__args")
        options = object.__getattribute__(proxy, "_Proxy__kwargs")
    except AttributeError:
        return None
    name = getattr(local, "__name__", None)
    if name == "_task_from_fun" and args and inspect.isfunction(args[0]):  # @app.task, the app not finalized
        return args[0], bool(options.get("bind")), functools.partial(_when_evaluated, proxy)
    if name == "task_by_cons" and inspect.isfunction(local):  # @shared_task: the current app's task
        try:
            cells = dict(
                zip(local.__code__.co_freevars, (c.cell_contents for c in local.__closure__ or ()), strict=True)
            )
        except ValueError:  # an empty cell
            return None
        function, task_name = cells.get("fun"), cells.get("name")
        if not inspect.isfunction(function) or not isinstance(task_name, str | None):
            return None
        # Its decorator's options are out of reach: a bound task's function takes self first.
        bound = next(iter(inspect.signature(function).parameters), None) == "self"
        return function, bound, functools.partial(_when_made, function, task_name)
    return None


def _when_evaluated(proxy: Any, callback: Callable[[object], None]) -> None:
    """``callback(owner of run)`` once ``@app.task``'s proxy is evaluated: when the app is
    finalized (a worker does that before it runs anything) or the task first used."""
    proxy.__then__(lambda: callback(_run_of(proxy._get_current_object())[0]))


def _when_made(function: Callable[..., Any], name: str | None, callback: Callable[[object], None]) -> None:
    """``callback(owner of run)`` for the task each app makes of a ``@shared_task``
    function: now in the apps already finalized, else once one is."""
    state = sys.modules.get("celery._state")
    if state is None:
        return

    def made(sender: Any, **_: object) -> None:  # the app: a receiver of its on_after_finalize
        try:
            task = sender._tasks.get(name or sender.gen_task_name(function.__name__, function.__module__))
            if task is None:
                return
            own = vars(type(task)).get("_decorated_fun", vars(type(task)).get("__wrapped__"))
            if getattr(own, "__func__", own) is function:  # not another function's task of that name
                callback(_run_of(task)[0])
        except Exception as exc:  # inside the app's finalize: nothing of ours may raise there
            from ._log import internal_error

            internal_error(f"finding the Celery task of {function.__qualname__}", exc)

    def finalizing(app: Any) -> None:  # its tasks are made after this: patch them once they all are
        app.on_after_finalize.connect(made, weak=False)

    state.connect_on_app_finalize(finalizing)
    for app in list(state._get_active_apps()):
        if app.finalized:
            made(app)


# -- Django managers ---------------------------------------------------------------------------
def _manager_method(spec: TargetSpec, manager: object, name: str) -> Resolved | None:
    """A method of a Django model's manager (``City.objects.all``), patched on the manager's
    class for calls on that model's manager only; None when ``manager`` is no manager, or
    the name is its own attribute (then it is patched on it)."""
    managers = sys.modules.get("django.db.models.manager")
    if managers is None or not issubclass(type(manager), managers.BaseManager):
        return None
    kind = type(manager)
    raw = next((vars(k)[name] for k in inspect.getmro(kind) if name in vars(k)), _MISSING)
    if raw is _MISSING:
        return None
    model, called = getattr(manager, "model", None), getattr(manager, "name", None)
    what = f"{getattr(model, '__name__', model)}.{called}"
    guarded = Guarded(kind, ("django manager", model, called), functools.partial(_is_manager, model, called))
    label = f"method of the manager {what} (on {kind.__qualname__}, for that manager's calls only)"
    return Resolved.make(spec, guarded, name, raw, on_class=True, label=label)


def _is_manager(model: object, name: object, instance: object) -> bool:
    """Whether ``instance`` is ``model``'s manager called ``name`` (a related manager has no name)."""
    return getattr(instance, "model", None) is model and getattr(instance, "name", None) == name


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
