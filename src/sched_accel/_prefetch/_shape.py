"""The shape of the loop's per-item call: how to make, from an item, the call the loop
will make for it, and whether a real call is the one predicted.

``args = ["item.chain", "item.address"]`` paths are attribute, key or index lookups on an
item; no code is evaluated. ``fields(item)`` is the other way round: the item's scalar
values, each with its path.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from types import MemberDescriptorType
from typing import Any

from .._engine import Slot

__all__ = ["CallShape", "fields", "fingerprint", "item_path", "same", "text_of", "unplaced"]

#: Fields looked at per item (the item itself, its attributes or keys, theirs).
MAX_FIELDS = 64


def item_path(path: str) -> Callable[[Any], Any]:
    """``"item"``, ``"item.chain"``, ``"item.0"``: attribute, key or index lookups on an item.

    No code is evaluated: each dotted part is an attribute name, a mapping key or an index.
    """
    parts = path.split(".")
    if parts[0] != "item" or not all(parts[1:]):
        raise ValueError(f"{path!r}: an item path starts with 'item', like 'item' or 'item.address'")
    steps = parts[1:]

    def get(item: Any) -> Any:
        value = item
        for step in steps:
            if isinstance(value, dict):
                value = value[step]
            elif step.isdigit() and isinstance(value, list | tuple):
                value = value[int(step)]
            else:
                value = getattr(value, step)
        return value

    return get


def text_of(value: Any) -> str | None:
    """The text of a value as clients and f-strings write it (``str``), for the values an item
    is told by: strings, numbers and bools."""
    if isinstance(value, str):
        return value or None
    if isinstance(value, bool | int | float):
        return str(value)
    return None


def _slots(value: Any) -> Iterator[tuple[str, Any]]:
    """The public slots of an object and their values, read from the slots themselves (no
    property or other code runs)."""
    for klass in type(value).__mro__:
        names = klass.__dict__.get("__slots__", ())
        for name in (names,) if isinstance(names, str) else names:
            slot = klass.__dict__.get(name)
            if isinstance(name, str) and not name.startswith("_") and isinstance(slot, MemberDescriptorType):
                try:
                    yield name, slot.__get__(value, klass)
                except AttributeError:  # never set
                    continue


def _children(value: Any) -> Iterator[tuple[str, Any]]:
    if isinstance(value, dict):
        for key, child in value.items():
            if isinstance(key, str) and key and "." not in key:
                yield key, child
        return
    if isinstance(value, list | tuple):
        yield from ((str(index), child) for index, child in enumerate(value))
        return
    attributes = getattr(value, "__dict__", None)
    if isinstance(attributes, dict):
        yield from (
            (name, child) for name, child in attributes.items() if isinstance(name, str) and not name.startswith("_")
        )
    yield from _slots(value)


def _leaves(item: Any) -> Iterator[tuple[str, Any]]:
    """``(item path, value)`` for the item or its values that are scalars or None, two levels
    deep, at most ``MAX_FIELDS``."""
    count = 0

    def walk(value: Any, path: str, depth: int) -> Iterator[tuple[str, Any]]:
        nonlocal count
        if value is None or isinstance(value, str | bool | int | float):
            count += 1
            yield path, value
            return
        if depth == 0:
            return
        for name, child in _children(value):
            if count >= MAX_FIELDS:
                return
            yield from walk(child, f"{path}.{name}", depth - 1)

    return walk(item, "item", 2)


def fields(item: Any) -> list[tuple[str, str]]:
    """``(item path, text)`` for the item (a string, a number or a bool) or its scalar
    fields, two levels deep, at most ``MAX_FIELDS``."""
    return [(path, text) for path, value in _leaves(item) if (text := text_of(value)) is not None]


#: Characters that change a URL's shape where they are written as they are.
_SHAPING = frozenset("/?#&=")


def unplaced(item: Any) -> dict[str, str]:
    """The values of an item whose place in a URL cannot be seen, by item path: None, an
    empty string, and text that changes the URL's shape when written into it as it is (a
    ``/``, ``?``, ``#``, ``&`` or ``=``, or a dot segment). A URL predicted for another item
    holds only if these are the same as in the item it was learned from."""
    found: dict[str, str] = {}
    for path, value in _leaves(item):
        if value is None or value == "":
            found[path] = repr(value)
        elif isinstance(value, str) and (value in (".", "..") or not _SHAPING.isdisjoint(value)):
            found[path] = value
    return found


def same(a: Any, b: Any) -> bool:
    if a is b:
        return True
    try:
        return bool(a == b)
    except Exception:
        return False


_IMMUTABLE = (str, int, float, bool, bytes, type(None), complex)
#: Values looked at per fingerprint, at most: a bigger argument is told apart by identity.
_FINGERPRINT_BUDGET = 2000


def fingerprint(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """What a call's arguments hold, three levels deep, to tell whether they changed between
    the moment a call was sent ahead and the moment the loop makes it (a loop that changes
    the item first). None when every argument is a plain immutable value (nothing can change)."""
    if all(type(a) in _IMMUTABLE for a in args) and all(type(v) in _IMMUTABLE for v in kwargs.values()):
        return None
    budget = [_FINGERPRINT_BUDGET]

    def walk(value: Any, depth: int) -> Any:
        budget[0] -= 1
        kind = type(value)
        if kind in _IMMUTABLE:
            return value
        if depth == 0 or budget[0] <= 0:
            return ("id", id(value))
        if kind in (list, tuple) or isinstance(value, list | tuple):
            return (kind.__name__, tuple(walk(v, depth - 1) for v in value))
        if isinstance(value, dict):
            return ("dict", tuple((walk(k, 0), walk(v, depth - 1)) for k, v in value.items()))
        if isinstance(value, set | frozenset):
            return ("set", id(value), len(value))
        attributes = getattr(value, "__dict__", None)
        if isinstance(attributes, dict):
            return (id(value), tuple((k, walk(v, depth - 1)) for k, v in attributes.items()))
        slots = getattr(kind, "__slots__", None)
        if isinstance(slots, tuple):
            return (id(value), tuple(walk(getattr(value, n, None), depth - 1) for n in slots if isinstance(n, str)))
        return ("id", id(value))

    return (walk(args, 3), walk(kwargs, 3))


class CallShape:
    """How the loop calls the per-item function: the bound callable, the other arguments,
    and where the item goes (``position`` in args, or keyword ``keyword``), or a builder
    that makes the arguments from the item (declared ``args``)."""

    __slots__ = ("args", "builder", "call", "instance", "keyword", "kwargs", "position")

    def __init__(
        self,
        call: Callable[..., Any],
        instance: Any,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        *,
        position: int | None = None,
        keyword: str | None = None,
        builder: Callable[[Any], tuple[Any, ...]] | None = None,
    ) -> None:
        self.call = call
        self.instance = instance
        self.args = args
        self.kwargs = kwargs
        self.position = position
        self.keyword = keyword
        self.builder = builder

    def arguments(self, item: Any) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """The arguments of the call the loop will make for ``item``."""
        if self.builder is not None:
            return self.builder(item), self.kwargs
        if self.position is not None:
            args = list(self.args)
            args[self.position] = item
            return tuple(args), self.kwargs
        assert self.keyword is not None
        return self.args, {**self.kwargs, self.keyword: item}

    def matches(self, slot: Slot[Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> bool:
        """Whether a real call is the one ``slot`` predicted (same instance, same arguments)."""
        if instance is not self.instance or len(args) != len(slot.args) or kwargs.keys() != slot.kwargs.keys():
            return False
        return all(same(a, b) for a, b in zip(args, slot.args, strict=True)) and all(
            same(kwargs[k], slot.kwargs[k]) for k in kwargs
        )
