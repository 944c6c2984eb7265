"""Prefetch mode: the loop's per-item calls run ahead of it, the loop itself runs unchanged.

While a patched loop runs, a :class:`PrefetchRun` holds its item source. At the loop's
first call of the per-item function it learns the call's shape (which argument is the
item, the bound instance, the other arguments), then keeps up to ``window`` predicted
calls in flight on the workers. Each real call of the loop is matched, in order, to its
predicted call and answered with that call's value, or its exception raised right there.
A call that matches nothing runs directly, as before (a miss). Predicted calls for items
the loop skipped are counted as wasted. Each predicted call runs once; a real call is
either served or run directly, never both.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from ._engine import Slot

if TYPE_CHECKING:
    from ._policy import Policy

__all__ = ["CURRENT", "CallShape", "PrefetchRun", "item_path"]

#: The prefetch run of the loop executing in this thread or task, if any.
CURRENT: ContextVar[PrefetchRun | None] = ContextVar("sched_accel_prefetch_run", default=None)

#: Stepping aside. The first predicted call is submitted alone; if it is done within
#: PROBE_SECONDS, calls are cheaper than fanning out (our hand-offs, and an HTTP client's
#: pool of C connections, would cost more than they save), so the loop calls directly. If
#: the next RESUME_AFTER direct calls then spend RESUME_SECONDS or more on average waiting
#: (wall time minus CPU time: the part concurrency overlaps; the first call was a cache
#: hit), prefetching starts after all. Slow calls lose PROBE_SECONDS once per run, against
#: a whole round of latency for a sequential probe.
PROBE_SECONDS = 0.005
RESUME_AFTER = 8
RESUME_SECONDS = 0.001
#: Real calls whose item could not be found before inference gives up.
INFER_ATTEMPTS = 3

_NOT_FOUND: Any = object()


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


def _same(a: Any, b: Any) -> bool:
    if a is b:
        return True
    try:
        return bool(a == b)
    except Exception:
        return False


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
        return all(_same(a, b) for a, b in zip(args, slot.args, strict=True)) and all(
            _same(kwargs[k], slot.kwargs[k]) for k in kwargs
        )


class PrefetchRun:
    """One run of a patched loop: predicts, schedules and serves its per-item calls.

    ``submit(slot)`` hands a slot to the workers (threads or tasks). Everything here runs
    in the loop's own thread or task, so it needs no lock.
    """

    def __init__(
        self,
        name: str,
        source: Iterator[Any] | None,
        submit: Callable[[Slot[Any]], Slot[Any]],
        *,
        window: int,
        builder: Callable[[Any], tuple[Any, ...]] | None = None,
        clock: Callable[[], float] = time.perf_counter,
        owner: object = None,
        policy: Policy | None = None,
        skip_sleeps: bool = False,
        recorder: Any = None,
        probe: bool = True,
    ) -> None:
        self.name = name
        self.owner = owner
        #: Retries, limits and statistics of this run's per-item calls (None: calls run bare).
        self.policy = policy
        self.timeout = policy.wait_timeout if policy is not None else None
        self.skip_sleeps = skip_sleeps
        self.skipped_sleeps = 0
        self.recorder = recorder
        self.source = source
        self.submit = submit
        self.window = window
        self.builder = builder
        self.clock = clock
        self.shape: CallShape | None = None
        self.pending: deque[Slot[Any]] = deque()
        self.lookahead: deque[Any] = deque()
        #: Calls the loop made directly (misses) that no later fill has accounted for yet:
        #: when the loop ran past what we predicted, a fill must not fetch them again.
        self.missed: deque[tuple[Any, tuple[Any, ...], dict[str, Any]]] = deque(maxlen=4 * window + 64)
        self.active = source is not None
        #: None until the first predicted call was probed, then True (submitted alone,
        #: being waited for), then False (decided).
        self.probing: bool | None = None if probe else False
        self.probe_skipped = not probe
        self.probe_said_slow = False
        #: 0 or less: never step aside (benchmarks measure the engine so).
        self.probe_seconds = PROBE_SECONDS
        self.stepped_aside = False
        self.resumed = False
        self._direct_timed = 0
        self._direct_sum = 0.0
        self.attempts = 0
        self.hits = self.misses = self.wasted = self.direct = 0
        self.ok = self.failed = 0
        self.started = clock()

    # -- the source ---------------------------------------------------------------------
    def set_source(self, source: Iterator[Any]) -> None:
        """The items became known inside the loop (``returned-by``)."""
        if self.source is None and self.shape is None:
            self.source = source
            self.active = True

    def _pull(self) -> Any:
        if self.lookahead:
            return self.lookahead.popleft()
        assert self.source is not None
        return next(self.source, _NOT_FOUND)

    def _fill(self, limit: int | None = None) -> None:
        shape = self.shape
        assert shape is not None
        if limit is None:
            limit = 1 if self.probing is None else self.window
        while len(self.pending) < limit:
            item = self._pull()
            if item is _NOT_FOUND:
                self.active = bool(self.pending)
                return
            args, kwargs = shape.arguments(item)
            slot: Slot[Any] = Slot(shape.call, args, kwargs, item)
            if self.missed and self._made_directly(shape, slot):
                continue  # the loop already made this call itself: never twice
            self.pending.append(self.submit(slot))

    def _made_directly(self, shape: CallShape, slot: Slot[Any]) -> bool:
        for index, (instance, args, kwargs) in enumerate(self.missed):
            if shape.matches(slot, instance, args, kwargs):
                del self.missed[index]
                return True
        return False

    # -- serving ------------------------------------------------------------------------
    def serve(self, call: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Slot[Any] | None:
        """The slot answering this real call, or None: call directly (a miss)."""
        if not self.active:
            self.misses += 1
            return None
        if self.shape is None and not self._infer(call, instance, args, kwargs):
            self.misses += 1
            self.missed.append((instance, args, kwargs))
            return None
        shape = self.shape
        assert shape is not None
        if self.stepped_aside:
            self.direct += 1
            return None
        self._fill()
        if self.probing is None and self.pending:
            self.probing = True  # the slot answering this call is the probe
        for index, slot in enumerate(self.pending):
            if shape.matches(slot, instance, args, kwargs):
                for _ in range(index):  # the loop skipped these items
                    self._discard(self.pending.popleft())
                self.pending.popleft()
                self.hits += 1
                return slot
        self.misses += 1
        if self._reanchor(shape, instance, args, kwargs):
            self._fill()
        else:
            self.missed.append((instance, args, kwargs))
        return None

    def _reanchor(self, shape: CallShape, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> bool:
        """The loop asked for an item beyond every prediction (it skipped ``window`` or more
        items): find it further on in the source and predict from there on,
        instead of missing for the rest of the run. The predictions it passed are discarded.
        It looks at most ``4 * window + 64`` items ahead (kept, not lost, when the call is not
        among them), so memory stays O(window)."""
        limit = 4 * self.window + 64
        while self.source is not None and len(self.lookahead) < limit:
            item = next(self.source, _NOT_FOUND)
            if item is _NOT_FOUND:
                break
            self.lookahead.append(item)
        for index, item in enumerate(self.lookahead):
            try:
                predicted: Slot[Any] = Slot(shape.call, *shape.arguments(item))
            except Exception:
                continue
            if shape.matches(predicted, instance, args, kwargs):
                while self.pending:
                    self._discard(self.pending.popleft())
                for _ in range(index + 1):  # through this call's own item: it runs directly now
                    self.lookahead.popleft()
                self.active = True
                return True
        return False

    def _infer(self, call: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> bool:
        """Learn the call's shape from the loop's first call of the per-item function.

        The item is found among the next ``window`` items of the source, by identity in the
        call's arguments (or, with declared ``args``, by the arguments built from it). Items
        before it were skipped by the loop and are never fetched.
        """
        self.attempts += 1
        while self.source is not None and len(self.lookahead) < self.window:
            item = next(self.source, _NOT_FOUND)
            if item is _NOT_FOUND:
                break
            self.lookahead.append(item)
        for index, item in enumerate(self.lookahead):
            shape = self._shape_for(item, call, instance, args, kwargs)
            if shape is not None:
                self.shape = shape
                for _ in range(index):
                    self.lookahead.popleft()
                return True
        if self.attempts >= INFER_ATTEMPTS:
            self.active = False
        return False

    def _shape_for(
        self, item: Any, call: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> CallShape | None:
        if self.builder is not None:
            try:
                built = self.builder(item)
            except Exception:
                return None
            if len(built) == len(args) and all(_same(a, b) for a, b in zip(built, args, strict=True)):
                return CallShape(call, instance, (), kwargs, builder=self.builder)
            return None
        for position, value in enumerate(args):
            if value is item:
                return CallShape(call, instance, args, kwargs, position=position)
        for keyword, value in kwargs.items():
            if value is item:
                rest = {k: v for k, v in kwargs.items() if k != keyword}
                return CallShape(call, instance, args, rest, keyword=keyword)
        return None

    def probed(self, quick: bool) -> None:
        """The first predicted call was (``quick``) or was not done within PROBE_SECONDS."""
        self.probing = False
        if quick and self.probe_seconds > 0:
            self.stepped_aside = True
        else:
            self.probe_said_slow = True
            self._fill(self.window - 1)  # the probe, still running, counts in the window

    def timed_direct(self, seconds: float, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        """A direct call made while stepped aside waited ``seconds``: resume if they wait long."""
        if self._direct_timed >= RESUME_AFTER:
            return
        self.missed.append((instance, args, kwargs))  # a resumed fill must not repeat it
        self._direct_timed += 1
        self._direct_sum += seconds
        if self._direct_timed == RESUME_AFTER:
            if self._direct_sum / RESUME_AFTER >= RESUME_SECONDS:
                self.stepped_aside = False
                self.resumed = True
                self.probe_said_slow = True
            else:
                self.missed.clear()

    def count(self, ok: bool) -> None:
        """A real call finished (served or direct)."""
        if ok:
            self.ok += 1
        else:
            self.failed += 1

    def _discard(self, slot: Slot[Any]) -> None:
        """A predicted call the loop will not ask for: skip it, or count it as wasted if it
        already started (an upstream call the sequential loop would not have made)."""
        if not slot.cancel():  # it had started: a call the sequential loop would not make
            self.wasted += 1

    def close(self) -> None:
        """The loop ended: predicted calls it never asked for are cancelled (or wasted)."""
        while self.pending:
            self._discard(self.pending.popleft())
        self.lookahead.clear()
        self.active = False
