"""Putting wrappers in place with wrapt, and taking them out again.

The loop gets a ``FunctionWrapper`` whose ``enabled`` callable is the target's switch, so
turning off reaches every alias at once. The per-item call is wrapped where it is defined
and, when the loop's module bound it with ``from x import f``, under that name too.
wrapt itself is imported here, that is only once a target module has been imported.

Besides a module, class or instance, the owner of what is wrapped may be:

- a :class:`Guarded` class attribute, wrapped for some of the class's instances only (a
  Django model's manager: its class is shared by every model's manager). Every guard on one
  attribute shares one wrapper of ours, which hands each call to the wrapper of the guard
  that applies, or lets it through;
- a :class:`Later` attribute, whose owner does not exist yet (a Celery task whose app has
  not made it): wrapped when it does, unless the patch was removed first.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

__all__ = ["Guarded", "Later", "Patch", "aliases", "apply", "existing", "is_ours"]


@dataclass(slots=True)
class Patch:
    """Wrappers installed for one target: ``(owner, attribute, handle)`` triples."""

    name: str
    installed: list[tuple[object, str, object]] = field(default_factory=list)

    def remove(self) -> None:
        """Restore every attribute we replaced (other wrappers above ours stay)."""
        import wrapt

        while self.installed:
            owner, attribute, handle = self.installed.pop()
            if isinstance(handle, _Waiting):
                handle.cancel()
            elif isinstance(owner, Guarded):
                assert isinstance(handle, _Router)
                handle.leave(owner, attribute)
            else:
                wrapt.unwrap_object(owner, attribute, handle, missing_ok=True)


@dataclass(frozen=True, slots=True, eq=False)
class Guarded:
    """``owner.attribute`` for the calls whose instance ``applies`` only; ``key`` names the
    guard: one wrapper per key and attribute."""

    owner: type
    key: Hashable
    applies: Callable[[object], bool]


class Later:
    """An owner that does not exist yet: ``subscribe(callback)`` calls ``callback(owner)``
    once it does (once per owner made, when several are: each is wrapped). Whoever resolves
    the same thing twice must get the same ``Later``, so that a second wrapper for an
    attribute finds the first (:func:`existing`)."""

    def __init__(self, subscribe: Callable[[Callable[[object], None]], None]) -> None:
        self._subscribe = subscribe
        self.wrappers: dict[str, Callable[..., Any]] = {}  # attribute -> the wrapper waiting for it


class _Waiting:
    """A wrapper waiting for its :class:`Later` owner; cancelled when its patch is removed."""

    def __init__(self, later: Later, attribute: str) -> None:
        self.later, self.attribute = later, attribute
        self.cancelled = False
        self.lock = threading.Lock()

    def cancel(self) -> None:
        with self.lock:
            self.cancelled = True
            self.later.wrappers.pop(self.attribute, None)


class _Route:
    __slots__ = ("applies", "enabled", "wrapper")

    def __init__(
        self, applies: Callable[[object], bool], wrapper: Callable[..., Any], enabled: Callable[[], bool]
    ) -> None:
        self.applies, self.wrapper, self.enabled = applies, wrapper, enabled


class _Router:
    """The one wrapper of ours on a class attribute that :class:`Guarded` owners share."""

    def __init__(self) -> None:
        self.routes: dict[Hashable, _Route] = {}
        self.handle: object = None

    def enabled(self) -> bool:
        return any(route.enabled() for route in list(self.routes.values()))

    def __call__(
        self, wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        for route in list(self.routes.values()):
            if route.enabled() and route.applies(instance):
                return route.wrapper(wrapped, instance, args, kwargs)
        return wrapped(*args, **kwargs)

    def leave(self, guarded: Guarded, attribute: str) -> None:
        """Take the guard's route out; the last one out takes the router off the class."""
        import wrapt

        self.routes.pop(guarded.key, None)
        if not self.routes:
            wrapt.unwrap_object(guarded.owner, attribute, self.handle, missing_ok=True)


@functools.cache
def _wrapper_type() -> type:
    """wrapt's FunctionWrapper, subclassed so that our wrappers can be told from others."""
    import wrapt

    class SchedAccelWrapper(wrapt.FunctionWrapper[..., Any]):
        """A FunctionWrapper installed by sched_accel."""

    return SchedAccelWrapper


def is_ours(obj: object) -> bool:
    """Whether ``obj`` is, or wraps, a wrapper installed by sched_accel."""
    import wrapt

    kind = _wrapper_type()
    return wrapt.find_wrapper(obj, predicate=lambda entry: type(entry) is kind) is not None


def apply(
    patch: Patch,
    owner: object,
    attribute: str,
    wrapper: Callable[..., Any],
    enabled: Callable[[], bool],
) -> Any:
    """Wrap ``owner.attribute`` unless one of our wrappers is already there; return the handle."""
    import wrapt

    if isinstance(owner, Guarded):
        return _apply_guarded(patch, owner, attribute, wrapper, enabled)
    if isinstance(owner, Later):
        return _apply_later(patch, owner, attribute, wrapper, enabled)
    current = _current(owner, attribute)
    if current is not None and is_ours(current):
        return None
    handle = wrapt.wrap_object(owner, attribute, _wrapper_type(), (wrapper, enabled))
    patch.installed.append((owner, attribute, handle))
    return handle


def _apply_guarded(
    patch: Patch, owner: Guarded, attribute: str, wrapper: Callable[..., Any], enabled: Callable[[], bool]
) -> Any:
    import wrapt

    router = existing(owner.owner, attribute)
    if not isinstance(router, _Router):
        current = _current(owner.owner, attribute)
        if current is not None and is_ours(current):
            return None  # an unguarded wrapper of ours is there: it sees these calls already
        router = _Router()
        router.handle = wrapt.wrap_object(owner.owner, attribute, _wrapper_type(), (router, router.enabled))
    if owner.key in router.routes:
        return None
    router.routes[owner.key] = _Route(owner.applies, wrapper, enabled)
    patch.installed.append((owner, attribute, router))
    return router


def _apply_later(
    patch: Patch, owner: Later, attribute: str, wrapper: Callable[..., Any], enabled: Callable[[], bool]
) -> Any:
    if attribute in owner.wrappers:
        return None
    waiting = _Waiting(owner, attribute)
    owner.wrappers[attribute] = wrapper

    def arrived(real: object) -> None:
        # Called from the app's own code (a Celery app finalizing): nothing of ours may raise there.
        try:
            with waiting.lock:
                if not waiting.cancelled:
                    apply(patch, real, attribute, wrapper, enabled)
        except Exception as exc:
            from ._log import internal_error

            internal_error(f"patching {patch.name} once its owner was made", exc)

    patch.installed.append((owner, attribute, waiting))
    owner._subscribe(arrived)
    return waiting


def _current(owner: object, attribute: str) -> Any:
    return owner.__dict__.get(attribute) if hasattr(owner, "__dict__") else getattr(owner, attribute, None)


def existing(owner: object, attribute: str) -> Any:
    """The wrapper function of our wrapper at ``owner.attribute``, if one is there."""
    import wrapt

    if isinstance(owner, Later):
        return owner.wrappers.get(attribute)
    if isinstance(owner, Guarded):
        router = existing(owner.owner, attribute)
        route = router.routes.get(owner.key) if isinstance(router, _Router) else None
        return None if route is None else route.wrapper
    current = _current(owner, attribute)
    if current is None:
        return None
    kind = _wrapper_type()
    found = wrapt.find_wrapper(current, predicate=lambda entry: type(entry) is kind)
    return None if found is None else found._self_wrapper


def aliases(module: ModuleType, original: object, *, skip: str | None = None) -> list[str]:
    """Names in ``module`` bound to ``original`` itself (``from x import f``)."""
    return [name for name, value in vars(module).items() if value is original and name != skip]
