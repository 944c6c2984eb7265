"""Putting wrappers in place with wrapt, and taking them out again.

The loop gets a ``FunctionWrapper`` whose ``enabled`` callable is the target's switch, so
turning off reaches every alias at once. The per-item call is wrapped where it is defined
and, when the loop's module bound it with ``from x import f``, under that name too.
wrapt itself is imported here, that is only once a target module has been imported.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

__all__ = ["Patch", "aliases", "apply", "existing", "is_ours"]


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
            wrapt.unwrap_object(owner, attribute, handle, missing_ok=True)


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

    current = owner.__dict__.get(attribute) if hasattr(owner, "__dict__") else getattr(owner, attribute, None)
    if current is not None and is_ours(current):
        return None
    handle = wrapt.wrap_object(owner, attribute, _wrapper_type(), (wrapper, enabled))
    patch.installed.append((owner, attribute, handle))
    return handle


def existing(owner: object, attribute: str) -> Any:
    """The wrapper function of our wrapper at ``owner.attribute``, if one is there."""
    import wrapt

    current = owner.__dict__.get(attribute) if hasattr(owner, "__dict__") else getattr(owner, attribute, None)
    if current is None:
        return None
    kind = _wrapper_type()
    found = wrapt.find_wrapper(current, predicate=lambda entry: type(entry) is kind)
    return None if found is None else found._self_wrapper


def aliases(module: ModuleType, original: object, *, skip: str | None = None) -> list[str]:
    """Names in ``module`` bound to ``original`` itself (``from x import f``)."""
    return [name for name, value in vars(module).items() if value is original and name != skip]
