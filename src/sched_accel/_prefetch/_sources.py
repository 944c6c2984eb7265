"""Where a run's items come from: each :data:`~sched_accel._settings.ItemSource` form, read
without the loop noticing.

A sequence, set or mapping is read twice (ours, then the loop's); an iterator over one of
those (``iter(rows)``, ``reversed(rows)``, ``dict.items()``'s) is split with
``itertools.tee``, so the loop still sees every item, and an exception it raises reaches
the loop where it would have without us. A generator, or any other iterator, runs the
app's code as it is read (it may stop when the loop tells it to, or yield what the loop
just changed), so it is never read ahead of the loop; nor is any other iterable (a queue
object whose ``__iter__`` pops, a database cursor). ``items = "learned"`` serves those.

A Django QuerySet (``City.objects.all()``) is read from the rows the loop's own iteration
fetched: iterating it runs its one query and keeps every row on it (``_result_cache``) before
the loop's first item, and our reader takes them from there when it first needs an item,
which is after the loop asked for one. So no query is added and none moves: a queryset the
loop never iterates itself (it iterates a refined copy, ``.filter(...)``, or streams it with
``.iterator()``) gives nothing to read ahead.
"""

from __future__ import annotations

import importlib
import itertools
import os
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence, Set, ValuesView
from typing import Any

from .._exceptions import TargetError
from .._settings import Argument, ItemSource, Learned, ModuleObject, ReturnedBy
from .._state import LearnedCalls
from .._targets import ArgumentLocator, close_modules, close_names, did_you_mean

__all__ = ["PLAIN_ITERATORS", "Items", "fetched_rows", "is_queryset", "one_shot", "split"]

Args = tuple[Any, ...]
Kwargs = dict[str, Any]


class Items:
    """Where one target's items come from, in each of its runs."""

    def __init__(self, name: str, source: ItemSource | None, state_dir: str | None) -> None:
        self.source = source
        self.learned = (
            LearnedCalls(os.path.join(state_dir or ".", "learned"), name) if isinstance(source, Learned) else None
        )
        self._locator = ArgumentLocator(source.where) if isinstance(source, Argument) else None
        #: The last run's items were an iterator that is never read ahead (a generator).
        self.one_shot = False

    @property
    def captured(self) -> bool:
        """Whether the items become known inside the loop (``returned-by``)."""
        return isinstance(self.source, ReturnedBy)

    def bind(self, call: Callable[..., Any], args: Args, kwargs: Kwargs) -> tuple[Iterator[Any] | None, Args, Kwargs]:
        """This run's items (None when not found here), and the loop's arguments (a one-shot
        iterator argument is replaced by its tee'd twin)."""
        source = self.source
        if self.learned is not None:
            return iter(self.learned.load()), args, kwargs
        if isinstance(source, ModuleObject):
            return independent(module_object(source)), args, kwargs
        if self._locator is None:
            return None, args, kwargs
        found = self._locator.find(call, args, kwargs)
        if found is None:
            return None, args, kwargs
        value, replaced = found
        self.one_shot = one_shot(value)
        mine, theirs = split(value)
        if theirs is not value:
            args, kwargs = replaced(theirs)
        return mine, args, kwargs


#: Collections that can be read twice without the loop noticing. Any other iterable (a queue
#: object whose ``__iter__`` pops, a database cursor) might be consumed by reading it, so it
#: is never read ahead.
_REREADABLE = (Sequence, Set, Mapping, ValuesView)  # keys and items views are Sets


def module_object(source: ModuleObject) -> Any:
    """The object ``items = "module:NAME"`` names, read as the loop is entered; a
    :class:`TargetError` that says what is missing and what is spelled like it."""
    spec = source.spec
    try:
        value: Any = importlib.import_module(spec.module or "")
    except ImportError as exc:
        raise TargetError(
            f"items = {spec.text!r}: module {spec.module!r} cannot be imported ({type(exc).__name__}: {exc})"
            f"{did_you_mean(close_modules(spec.module or ''))}; check the spelling, or run `sched-accel check`"
        ) from exc
    where = spec.module
    for part in spec.qualname.split("."):
        try:
            found = getattr(value, part, _MISSING)
        except Exception as exc:  # noqa: BLE001 - the object's own refusal (a lazy settings object)
            raise TargetError(
                f"items = {spec.text!r}: reading {where}.{part} failed: {type(exc).__name__}: {exc}"
            ) from exc
        if found is _MISSING:
            raise TargetError(
                f"items = {spec.text!r}: {where} has no attribute {part!r}{did_you_mean(close_names(part, value))}; "
                "check the spelling, or run `sched-accel check` to list what resolves"
            )
        value, where = found, f"{where}.{part}"
    return value


_MISSING: Any = object()


def independent(value: Any) -> Iterator[Any] | None:
    """An iterator over ``value`` that leaves the loop's own iteration untouched, or None."""
    if isinstance(value, _REREADABLE) and not isinstance(value, str | bytes):
        return iter(value)
    if is_queryset(value):
        return fetched_rows(value)
    return None  # an iterator cannot be read twice, and we cannot hand the loop a copy


def is_queryset(value: object) -> bool:
    """Whether ``value`` is a Django QuerySet (never when Django was not imported: it is not
    imported here)."""
    query = sys.modules.get("django.db.models.query")
    return query is not None and issubclass(type(value), query.QuerySet)  # its type: a lazy object stays lazy


def fetched_rows(queryset: Any) -> Iterator[Any]:
    """The rows of ``queryset`` as the loop's own iteration fetched them (the very objects the
    loop gets), read when the first is needed; nothing if it was not iterated by then."""
    rows = queryset._result_cache
    if rows is not None:
        yield from list(rows)


#: Iterators that only walk a collection: reading them ahead runs none of the app's code.
_EXAMPLES: tuple[Iterator[Any], ...] = (
    iter([]),
    iter(()),
    iter(range(0)),
    iter(set()),
    iter({}),
    iter({}.values()),
    iter({}.items()),
    reversed([]),
    reversed(()),
    reversed(range(0)),
    iter(""),
    iter(b""),
)
PLAIN_ITERATORS = frozenset(type(it) for it in _EXAMPLES)


def one_shot(value: Any) -> bool:
    """Whether ``value`` is an iterator that is never read ahead (a generator, or anything
    but an iterator over a collection)."""
    return isinstance(value, Iterator) and type(value) not in PLAIN_ITERATORS


def split(value: Any) -> tuple[Iterator[Any] | None, Any]:
    """(our source, what the loop gets): a tee'd pair for an iterator over a collection;
    (None, value) for any other iterator (never read ahead).

    An exception the iterator raises reaches the loop where it would have without us (our
    side, reading ahead, only stops there), never swallowed by our read-ahead.
    """
    if isinstance(value, Iterator):
        if type(value) not in PLAIN_ITERATORS:
            return None, value
        mine, theirs = itertools.tee(_keep_raised(value))
        return _until_raised(mine), _reraise(theirs)
    return independent(value), value


class _Raised:
    """An exception of the loop's item iterator, kept in the tee at its place."""

    __slots__ = ("error",)

    def __init__(self, error: Exception) -> None:
        self.error = error


def _keep_raised(iterator: Iterator[Any]) -> Iterator[Any]:
    try:
        yield from iterator
    except Exception as exc:
        yield _Raised(exc)


def _until_raised(branch: Iterator[Any]) -> Iterator[Any]:
    for value in branch:
        if type(value) is _Raised:
            return
        yield value


def _reraise(branch: Iterator[Any]) -> Iterator[Any]:
    for value in branch:
        if type(value) is _Raised:
            raise value.error
        yield value
