"""Putting a shadow's wrappers in place: once per process, with wrapt, never taken out.

Each is a plain :class:`wrapt.FunctionWrapper` (not ``_patching``'s type, so that the target
patches, e.g. ``skip_sleeps``'s :class:`SleepSkipper` on the same ``time.sleep``, see neither
each other nor ours, and each is removed from the chain without disturbing the other; a
subclass would double what binding a wrapped method costs) whose ``enabled`` is
``ACTING.get`` or ``SHADOW.get``: outside a shadow, wrapt calls the original at once after
one C call, so the wrappers can stay for the process's life. Ours are told from others by
their wrapper function (:data:`_ours`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

__all__ = ["Args", "Kwargs", "Wrapper", "is_ours", "wrap"]

Args = tuple[Any, ...]
Kwargs = dict[str, Any]
Wrapper = Callable[[Callable[..., Any], Any, Args, Kwargs], Any]

_lock = threading.Lock()
_ours: set[int] = set()  # id() of the wrapper functions we installed (they live for good)
_kept: list[Wrapper] = []  # ... kept alive, so that their ids stay theirs


def is_ours(entry: object) -> bool:
    """Whether a wrapper chain's ``entry`` is one of our wrappers."""
    return id(getattr(entry, "_self_wrapper", None)) in _ours


def wrap(owner: object, attribute: str, wrapper: Wrapper, enabled: Callable[[], object]) -> bool:
    """Wrap ``owner.attribute`` unless our wrapper is already on it (here or in its chain);
    False when there is nothing callable of that name."""
    import wrapt

    with _lock:
        current = owner.__dict__.get(attribute) if isinstance(owner, type) else getattr(owner, attribute, None)
        if current is None:
            current = getattr(owner, attribute, None)
        if current is None or not callable(current):
            return False
        if wrapt.find_wrapper(current, predicate=is_ours) is not None:
            return True
        wrapt.wrap_object(owner, attribute, wrapt.FunctionWrapper, (wrapper, enabled))
        _ours.add(id(wrapper))
        _kept.append(wrapper)
        return True
