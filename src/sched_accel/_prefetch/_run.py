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

import json
import threading
from collections import deque
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

import anyio

from .._engine import Slot
from .._log import internal_error
from .._report import RunReport
from .._state import Recorder
from ._probe import StepAside
from ._shape import CallShape, fingerprint, same

if TYPE_CHECKING:
    from .._policy import Policy
    from ._http_run import HttpRun

__all__ = ["CURRENT", "INFER_ATTEMPTS", "MISMATCHES", "PrefetchRun", "call_key", "here"]

#: The prefetch run of the loop executing in this thread or task, if any (function-level,
#: or HTTP-level).
CURRENT: ContextVar[PrefetchRun | HttpRun | None] = ContextVar("sched_accel_prefetch_run", default=None)


#: One encoder for every key (``json.dumps`` with options builds one per call: a third of its cost).
_KEYS = json.JSONEncoder(sort_keys=True, separators=(",", ":"), default=lambda value: f"<{type(value).__qualname__}>")


def call_key(args: Any) -> str | None:
    """A per-item call's arguments as a key that holds across processes: JSON, an argument
    that is no JSON value (a client, a session) standing as its type's name; None when even
    that cannot be made."""
    try:
        return _KEYS.encode(args)
    except (TypeError, ValueError, RecursionError):
        return None


def here() -> tuple[str, int]:
    """The task (of an event loop: asyncio's or trio's) or else the thread running now: the
    loop's own is its run's ``home``. A task the loop starts inherits its context (``CURRENT``),
    not its home (issue 23 item 5: a heartbeat's sleeps were skipped and counted as the loop's)."""
    try:
        return ("task", anyio.get_current_task().id)
    except Exception:  # no event loop in this thread
        return ("thread", threading.get_ident())


#: The loop's own calls a run keeps, at most (for a loop that refuses items).
MAX_ASKED = 10_000
#: Real calls whose item could not be found before inference gives up.
INFER_ATTEMPTS = 3
#: Calls whose arguments the loop changed after they were sent ahead, more than those served,
#: after which the run stops sending calls ahead.
MISMATCHES = 3

_NOT_FOUND: Any = object()


class PrefetchRun:
    """One run of a patched loop: predicts, schedules and serves its per-item calls.

    ``submit(slot)`` hands a slot to the workers (threads or tasks). Everything here runs
    in the loop's own thread or task, so it needs no lock.
    """

    #: ``first_item`` before any item was read.
    NO_ITEM: Any = _NOT_FOUND

    def __init__(
        self,
        report: RunReport,
        source: Iterator[Any] | None,
        submit: Callable[[Slot[Any]], Slot[Any]],
        *,
        window: int,
        builder: Callable[[Any], tuple[Any, ...]] | None = None,
        owner: object = None,
        policy: Policy | None = None,
        recorder: Recorder | None = None,
        probe: bool = True,
        asked_before: frozenset[str] | None = None,
        guard: bool = False,
    ) -> None:
        self.report = report
        self.name = report.target.name
        #: The loop refuses some items (it called for a later item, passing predicted ones):
        #: only calls its last run made are sent ahead (``asked_before``: :func:`call_key`),
        #: and, without that record, none once it is seen. Watched with ``guard`` (items named
        #: by the config; a replay of learned calls has the refused ones left out already, and
        #: an item it passes is one the items changed by).
        self.guard = guard or asked_before is not None
        self.asked_before = asked_before
        self.guarded = asked_before is not None
        self.not_asked = 0  # items the loop passed whose calls had been predicted
        self.asked: list[tuple[Any, ...]] = []  # the loop's own calls' arguments (bounded), keyed when kept
        self.unsent: set[int] = set()  # ids of the pending slots held in place, never sent
        self.owner = owner
        #: Retries, limits and statistics of this run's per-item calls (None: calls run bare).
        self.policy = policy
        self.timeout = policy.wait_timeout if policy is not None else None
        self.skip_sleeps = report.target.skip_sleeps
        self.skipped_sleeps = 0
        self.home: tuple[str, int] | None = None  # the loop's own task or thread (``here``), once it runs
        self.recorder = recorder
        self.source = source
        self.submit = submit
        self.window = window
        self.builder = builder
        self.shape: CallShape | None = None
        self.pending: deque[Slot[Any]] = deque()
        self.lookahead: deque[Any] = deque()
        #: Calls the loop made directly (misses) that no later fill has accounted for yet:
        #: when the loop ran past what we predicted, a fill must not fetch them again.
        self.missed: deque[tuple[Any, tuple[Any, ...], dict[str, Any]]] = deque(maxlen=4 * window + 64)
        self.active = source is not None
        self.step = StepAside(probe)
        self.attempts = 0
        self.hits = self.misses = self.wasted = self.direct = self.mismatched = 0
        #: For the line saying why a run did not accelerate: the first call no item matched,
        #: the first item then, and the first failure of the ``args`` paths on an item.
        self.first_call: tuple[tuple[Any, ...], dict[str, Any]] | None = None
        self.first_item: Any = _NOT_FOUND
        self.builder_error: str | None = None
        #: With learned calls, the argument types of this run's first call: a learned call of
        #: other types (an edited file, another version of the app) is never sent ahead.
        self.kinds: tuple[type, ...] | None = None

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
        if self.guarded and self.asked_before is None:
            return  # it refuses items, and which it calls for is not known: nothing more ahead
        if limit is None:
            limit = 1 if self.step.probing is None else self.window
        while len(self.pending) < limit:
            item = self._pull()
            if item is _NOT_FOUND:
                self.active = bool(self.pending)
                return
            args, kwargs = shape.arguments(item)
            if self.kinds is not None and tuple(map(type, args)) != self.kinds:
                continue  # a learned call unlike this run's calls: never sent (the loop makes its own)
            slot = self._slot(shape, args, kwargs)
            if self.missed and self._made_directly(shape, slot):
                continue  # the loop already made this call itself: never twice
            if self.asked_before is not None and call_key(args) not in self.asked_before:
                # A loop that refuses items: its last run did not call for this one. Held in
                # its place, never sent, so the calls are still matched in the items' order: if
                # the loop calls for it, the call runs directly, once.
                self.unsent.add(id(slot))
                self.pending.append(slot)
                continue
            self.pending.append(self.submit(slot))

    def _slot(self, shape: CallShape, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Slot[Any]:
        """The call sent ahead for an item. Its fingerprint is the arguments as sent: the
        loop's own call is served only if they still hold that."""
        return Slot(shape.call, args, kwargs, fingerprint(args, kwargs))

    def _made_directly(self, shape: CallShape, slot: Slot[Any]) -> bool:
        """Whether the loop already made this predicted call itself. The loop makes its
        calls in the source's order, so the records are matched in that order: the first
        that matches is this item's, and the ones before it were calls the loop made for
        nothing here (they are dropped). Matching any record instead would let an earlier
        call with equal arguments (a repeated item) stand for a later one that is not made
        yet, and that item would be fetched again by the loop itself."""
        for index, (instance, args, kwargs) in enumerate(self.missed):
            if shape.matches(slot, instance, args, kwargs):
                for _ in range(index + 1):
                    self.missed.popleft()
                return True
        return False

    # -- serving ------------------------------------------------------------------------
    def serve(
        self, call: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Slot[Any] | None:
        """The slot answering this real call, or None: call directly (a miss)."""
        if not self.active:
            self.misses += 1
            return None
        if self.guard and len(self.asked) < MAX_ASKED:
            self.asked.append(args)  # kept only where refusals are watched; keyed (JSON) only when saved
        if self.shape is None and not self._infer(call, instance, args, kwargs):
            self.misses += 1
            self.missed.append((instance, args, kwargs))
            return None
        shape = self.shape
        assert shape is not None
        aside = self.step.aside
        if aside and not self.pending:
            self.direct += 1
            return None
        if not aside:
            self._fill()
            if self.step.probing is None and self.pending and id(self.pending[0]) not in self.unsent:
                self.step.probing = True  # the slot answering this call is the probe
        # Stepped aside, the calls already sent ahead still answer their items' calls: the loop
        # calling one of them itself would make it twice (a probe decided late, after a
        # reanchor had filled the window: the property test saw a call made three times).
        for index, slot in enumerate(self.pending):
            if shape.matches(slot, instance, args, kwargs):
                for _ in range(index):  # the loop skipped these items: it refuses some
                    passed = self.pending.popleft()
                    if id(passed) in self.unsent:
                        self.unsent.discard(id(passed))  # expected: its last run skipped it too
                        continue
                    if self.guard:
                        self.not_asked += 1
                        self.guarded = True
                    self._discard(passed)
                self.pending.popleft()
                if id(slot) in self.unsent:  # held in place, never sent: the loop calls it itself
                    self.unsent.discard(id(slot))
                    self.misses += 1
                    return None
                if slot.item is not None and slot.item != fingerprint(args, kwargs):
                    # The loop changed the arguments after this call was sent: not its answer.
                    self._discard(slot)
                    self.mismatched += 1
                    self.misses += 1
                    if self.mismatched >= MISMATCHES and self.mismatched > self.hits:
                        self.close()  # the loop keeps changing them: stop sending calls ahead
                    return None
                self.hits += 1
                return slot
        if aside:
            self.direct += 1
            return None
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
        index = self._find_ahead(shape, instance, args, kwargs)
        if index is None:
            return False
        while self.pending:
            self._discard(self.pending.popleft())
        for _ in range(index + 1):  # through this call's own item: it runs directly now
            self.lookahead.popleft()
        # The calls the loop made directly were all for items before this one, and
        # predictions start after it: none of those records can match them any more.
        self.missed.clear()
        self.active = True
        return True

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
        if self.first_call is None:
            self.first_call = (args, kwargs)
            self.first_item = self.lookahead[0] if self.lookahead else _NOT_FOUND
        if self.attempts >= INFER_ATTEMPTS:
            self.active = False
        return False

    def _shape_for(
        self, item: Any, call: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> CallShape | None:
        if self.builder is not None:
            try:
                built = self.builder(item)
            except Exception as exc:
                if self.builder_error is None:
                    self.builder_error = f"{type(exc).__name__}: {exc}"[:120]
                return None
            if len(built) == len(args) and all(same(a, b) for a, b in zip(built, args, strict=True)):
                if self.recorder is not None:  # learned calls: only those shaped like this run's are sent
                    self.kinds = tuple(map(type, args))
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
        """The first predicted call was (``quick``) or was not done within the probe's time."""
        if self.step.probed(quick):
            try:
                self._fill(self.window - 1)  # the probe, still running, counts in the window
            except Exception as exc:  # ours (or the source's): stop predicting, never raise here
                self._stop(exc)

    def timed_direct(self, seconds: float, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        """A direct call made while stepped aside waited ``seconds``: resume if they wait long."""
        if not self.step.timing:
            return
        self.missed.append((instance, args, kwargs))  # a resumed fill must not repeat it
        verdict = self.step.timed(seconds)
        if verdict is True:
            try:
                self._align()
            except Exception as exc:  # ours (or the source's): stop predicting, never raise here
                self._stop(exc)
        elif verdict is False:
            self.missed.clear()

    def _stop(self, exc: Exception) -> None:
        """Something of ours failed outside a served call: the rest of the run calls directly."""
        self.active = False
        self.step.stop()
        internal_error(f"prefetching for {self.name}", exc)

    def _align(self) -> None:
        """Prefetching resumes: move the source past the calls the loop made while we stood
        aside. They are matched to the items in order (``missed`` holds them all, oldest
        first); an item passed over is one the loop skipped, and is never fetched. At most
        ``4 * window + 64`` items are looked at per call (kept, not lost, when a call is not
        among them: matching stops there)."""
        shape = self.shape
        assert shape is not None
        calls = list(self.missed)
        self.missed.clear()
        for instance, args, kwargs in calls:
            index = self._find_ahead(shape, instance, args, kwargs)
            if index is None:
                return
            for _ in range(index + 1):
                self.lookahead.popleft()

    def _find_ahead(self, shape: CallShape, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> int | None:
        """The place in the lookahead of the first item whose predicted call is this one,
        reading at most ``4 * window + 64`` items ahead (kept, not lost); None if not there."""
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
                return index
        return None

    def guard_counts(self) -> dict[str, Any]:
        """The run line's word on refused items: how many it passed, and whether only what its
        last run called for was sent ahead."""
        more: dict[str, Any] = {"not_asked": self.not_asked} if self.not_asked else {}
        if self.asked_before is not None:
            more["ahead"] = "asked_before"
        return more

    def count(self, ok: bool) -> None:
        """A real call finished (served or direct); only the loop's own thread or task counts
        (``RunReport.tally``, inlined: this is every call's path)."""
        if ok:
            self.report.ok += 1
        else:
            self.report.failed += 1

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
