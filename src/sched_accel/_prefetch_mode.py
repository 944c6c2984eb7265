"""Running a loop in prefetch mode, and the wrapper on its per-item call.

:class:`PrefetchMode` runs the ORIGINAL loop, once, in the caller's thread or task, with a
:class:`~sched_accel._prefetch.PrefetchRun` current for it. :class:`FetchInterceptor`
(installed on the per-item function) serves the loop's calls from that run, counts them,
and lets every other call through untouched.

Workers: a sync per-item function runs in worker threads (an explicit bound, not anyio's
default of 40), whether the loop is sync or async; an async one runs in tasks of a task
group on the loop's own event loop (asyncio or trio, through anyio).
"""

from __future__ import annotations

import importlib
import itertools
import os
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence, Set, ValuesView
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import anyio

from ._engine import AsyncWorkers, Slot, ThreadWorkers
from ._learned import LearnedCalls, Recorder
from ._limits import HostLimiter
from ._log import event, internal_error
from ._policy import Hosts, Policy, paced, statistics_lines
from ._prefetch import CURRENT, PrefetchRun, item_path
from ._runstats import save_run
from ._targets import ArgumentLocator

if TYPE_CHECKING:
    from ._envelope import LoopEnvelope

__all__ = ["LEARNED", "REPROBE_EVERY", "FetchInterceptor", "PrefetchMode", "SleepSkipper", "SourceCapture"]

#: After a probe found slow calls, this many runs fan out at once before probing again.
REPROBE_EVERY = 10

#: ``items = "learned"``: the per-item calls of the previous run.
LEARNED = "learned"

Args = tuple[Any, ...]
Kwargs = dict[str, Any]


class PrefetchMode:
    """Runs one patched loop with its per-item calls prefetched."""

    def __init__(self, envelope: LoopEnvelope, state_dir: str | None = None, hosts: Hosts | None = None) -> None:
        self.envelope = envelope
        self.target = envelope.target
        self.state_dir = state_dir
        self.hosts = hosts if hosts is not None else Hosts(default_concurrency=self.target.concurrency)
        # The target's own rate (per_second, burst) bounds its calls' starts, across runs, paced
        # a hair inside it like a host's.
        self.limiter = (
            HostLimiter(f"target {self.target.name}", paced(None, self.target.per_second, self.target.burst))
            if self.target.per_second is not None
            else None
        )
        self.fetch_async: bool | None = None  # known once the per-item function is patched
        self._items_argument: ArgumentLocator | None = None
        self._said_no_items = False
        self._runs_since_slow_probe: int | None = None
        paths = self.target.args
        self.builder: Callable[[Any], Args] | None = None
        self.learned: LearnedCalls | None = None
        if self.target.items == LEARNED:
            self.learned = LearnedCalls(os.path.join(state_dir or ".", "learned"), self.target.name)
            self.builder = tuple
        elif paths:
            getters = [item_path(p) for p in paths]
            self.builder = lambda item: tuple(get(item) for get in getters)

    @property
    def window(self) -> int:
        # Deep enough that one slow call does not stall the workers behind it (measured:
        # lognormal latencies need about 16 x C), small enough to bound memory.
        return self.target.window or max(16 * self.target.concurrency, 128)

    # -- where the items come from ------------------------------------------------------------
    def _bind_items(self, call: Callable[..., Any], args: Args, kwargs: Kwargs) -> tuple[Iterator[Any] | None, Args, Kwargs]:
        """The item source for this run, and the loop's arguments (a generator argument is
        split with ``itertools.tee``, so that the loop still sees every item)."""
        where = self.target.items
        if self.learned is not None:
            return iter(self.learned.load()), args, kwargs
        if where is None or (isinstance(where, str) and where.startswith("returned-by:")):
            return None, args, kwargs
        if isinstance(where, str) and ":" in where:
            module, _, name = where.partition(":")
            value = importlib.import_module(module)
            for part in name.split("."):
                value = getattr(value, part)
            return _independent(value), args, kwargs
        if self._items_argument is None:
            self._items_argument = ArgumentLocator(where)
        found = self._items_argument.find(call, args, kwargs)
        if found is None:
            return None, args, kwargs
        value, replaced = found
        source, mine = _split(value)
        if mine is not value:
            args, kwargs = replaced(mine)
        return source, args, kwargs

    def _no_items(self) -> None:
        """Say once that this loop's items were not found, so nothing is prefetched."""
        if not self._said_no_items:
            self._said_no_items = True
            event(
                "WARNING",
                "items_not_found",
                f"items = {self.target.items!r} gave nothing to iterate in this call, so the loop runs "
                "without prefetching; run `sched-accel check` and fix `items`",
                target=self.target.name,
            )

    def _new_run(self, submit: Callable[[Slot[Any]], Slot[Any]], source: Iterator[Any] | None, policy: Policy) -> PrefetchRun:
        where = self.target.items
        if source is None and not (isinstance(where, str) and where.startswith("returned-by:")):
            self._no_items()
        # A run whose probe found slow calls tells the next runs of this process to fan out at
        # once (the probe costs a few ms); every REPROBE_EVERY-th run probes again.
        probe = self._runs_since_slow_probe is None or self._runs_since_slow_probe >= REPROBE_EVERY
        run = PrefetchRun(
            self.target.name,
            source,
            submit,
            window=self.window,
            builder=self.builder,
            owner=self.envelope,
            policy=policy,
            skip_sleeps=self.target.skip_sleeps,
            recorder=Recorder() if self.learned is not None else None,
            probe=probe,
        )
        if probe:
            self._runs_since_slow_probe = None
        else:
            assert self._runs_since_slow_probe is not None
            self._runs_since_slow_probe += 1
        return run

    # -- the loop, with a sync per-item function: worker threads ---------------------------------
    @contextmanager
    def _threaded(self, wrapped: Callable[..., Any], args: Args, kwargs: Kwargs) -> Iterator[tuple[Args, Kwargs]]:
        """Make this run current, with worker threads, for the body of the ``with``; a failure
        of ours to set it up means the loop runs as if unpatched."""
        if self.fetch_async is None:
            # The per-item function is not patched: its module is not imported yet (the
            # loop imports it itself; the next run is accelerated), or it did not resolve
            # (said once, when patching). This run is the original, untouched.
            yield args, kwargs
            return
        try:
            source, args, kwargs = self._bind_items(wrapped, args, kwargs)
            policy = Policy(self.target, self.hosts, limiter=self.limiter)
            workers = ThreadWorkers(self.target.concurrency, name=f"sched_accel-{self.target.name}", attempt=policy.attempt)
            run = self._new_run(workers.submit, source, policy)
        except Exception as exc:
            internal_error(f"starting {self.target.name}", exc)
            yield args, kwargs
            return
        token = CURRENT.set(run)
        outcome = "raised"
        try:
            yield args, kwargs
            outcome = "ok"
        finally:
            CURRENT.reset(token)
            run.close()
            workers.close()
            self._report(run, outcome)

    def call(self, wrapped: Callable[..., Any], args: Args, kwargs: Kwargs) -> Any:
        """Run the original sync loop, once, with its per-item calls prefetched."""
        with self._threaded(wrapped, args, kwargs) as (args, kwargs):
            return wrapped(*args, **kwargs)

    # -- the loop, async ----------------------------------------------------------------------
    async def call_async(self, wrapped: Callable[..., Awaitable[Any]], args: Args, kwargs: Kwargs) -> Any:
        """Run the original async loop with its per-item calls prefetched."""
        if self.fetch_async is not True:  # a sync per-item function, or none patched yet
            return await self._call_async_threads(wrapped, args, kwargs)
        try:
            source, args, kwargs = self._bind_items(wrapped, args, kwargs)
            policy = Policy(self.target, self.hosts, limiter=self.limiter)
            run = self._new_run(_not_started, source, policy)
        except Exception as exc:
            internal_error(f"starting {self.target.name}", exc)
            return await wrapped(*args, **kwargs)
        outcome = "raised"
        error: Exception | None = None
        async with anyio.create_task_group() as group:
            workers = AsyncWorkers(group, self.target.concurrency, attempt=policy.aattempt)
            workers.start()  # before CURRENT is set: the workers must not see the loop's run
            run.submit = workers.submit
            token = CURRENT.set(run)
            try:
                result = await wrapped(*args, **kwargs)
                outcome = "ok"
            except Exception as exc:
                # Raised outside the task group, so the loop's own exception reaches the
                # caller as itself, never wrapped in an ExceptionGroup.
                error = exc
            finally:
                CURRENT.reset(token)
                run.close()
                workers.close()
                group.cancel_scope.cancel()
                self._report(run, outcome)
        if error is not None:
            try:
                raise error
            finally:
                error = None
        return result

    async def _call_async_threads(self, wrapped: Callable[..., Awaitable[Any]], args: Args, kwargs: Kwargs) -> Any:
        """An async loop whose per-item function is sync (it blocks the event loop, as it did)."""
        with self._threaded(wrapped, args, kwargs) as (args, kwargs):
            return await wrapped(*args, **kwargs)

    def _report(self, run: PrefetchRun, outcome: str) -> None:
        if run.probe_said_slow:
            self._runs_since_slow_probe = 0
        extra: dict[str, Any] = {}
        if run.stepped_aside:
            extra["stepped_aside"] = "yes"
        elif run.resumed:
            extra["stepped_aside"] = "resumed"
        if run.probe_skipped:
            extra["probe"] = "skipped"  # an earlier run of this process found the calls slow
        if run.skipped_sleeps:
            extra["skipped_sleeps"] = run.skipped_sleeps
        if self.learned is not None and isinstance(run.recorder, Recorder):
            extra["learned"] = len(run.recorder.calls)
            if outcome == "ok":  # a run cut short would teach the next one too little
                self.learned.save(run.recorder.calls)
        fields: dict[str, Any] = {
            "target": self.target.name,
            "mode": "prefetch",
            "outcome": outcome,
            "items": run.hits + run.misses + run.direct,
            "ok": run.ok,
            "failed": run.failed,
            "seconds": f"{time.perf_counter() - run.started:.3f}",
            "concurrency": self.target.concurrency,
            "prefetched": run.hits,
            "missed": run.misses,
            "wasted": run.wasted,
        }
        if run.policy is not None:
            fields.update(run.policy.stats.snapshot())
        fields.update(extra)
        lost = fields.get("lost", 0)
        event("INFO" if outcome == "ok" and not lost else "WARNING", "run", **fields)
        try:  # the run is over: nothing of this may reach the app
            if fields.get("http_429"):
                self.hosts.hint_undeclared()
            if self.state_dir is not None:
                save_run(self.state_dir, self.target.name, fields, statistics_lines(self.hosts.statistics()))
        except Exception as exc:  # pragma: no cover - defensive
            internal_error(f"recording the run of {self.target.name}", exc)


def _waited(started: float, cpu: float) -> float:
    """Seconds a call spent waiting (wall time minus this thread's CPU time): what running
    calls concurrently can overlap. A call that only computes gains nothing from it."""
    return max(0.0, (time.perf_counter() - started) - (time.thread_time() - cpu))


def _not_started(slot: Slot[Any]) -> Slot[Any]:
    raise RuntimeError("the workers of this run are not started yet")


def _direct(run: PrefetchRun, wrapped: Callable[..., Any], args: Args, kwargs: Kwargs) -> Any:
    """Run a per-item call in the loop's thread, with the run's retries and limits: its own
    sleeps and calls are not part of the loop's body, so no run is current while it runs."""
    token = CURRENT.set(None)
    try:
        if run.policy is None:
            return wrapped(*args, **kwargs)
        return run.policy.call(wrapped, args, kwargs)
    finally:
        CURRENT.reset(token)


#: Collections that can be read twice without the loop noticing. Any other iterable (a queue
#: object whose ``__iter__`` pops, a database cursor) might be consumed by reading it, so it
#: is never read ahead.
_REREADABLE = (Sequence, Set, Mapping, ValuesView)  # keys and items views are Sets


def _independent(value: Any) -> Iterator[Any] | None:
    """An iterator over ``value`` that leaves the loop's own iteration untouched, or None."""
    if isinstance(value, _REREADABLE) and not isinstance(value, str | bytes):
        return iter(value)
    return None  # an iterator cannot be read twice, and we cannot hand the loop a copy


def _split(value: Any) -> tuple[Iterator[Any] | None, Any]:
    """(our source, what the loop gets): a tee'd pair for a one-shot iterator.

    An exception the iterator raises reaches the loop where it would have without us (our
    side, reading ahead, only stops there), never swallowed by our read-ahead.
    """
    if isinstance(value, Iterator):
        mine, theirs = itertools.tee(_keep_raised(value))
        return _until_raised(mine), _reraise(theirs)
    return _independent(value), value


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


class FetchInterceptor:
    """The wrapper on a per-item function: serves prefetched calls and counts calls, for
    every target that declares this function (one wrapper, however many targets)."""

    def __init__(self, is_async: bool) -> None:
        self.is_async = is_async
        self.envelopes: list[LoopEnvelope] = []

    def add(self, envelope: LoopEnvelope) -> None:
        """Serve this target's runs too."""
        if all(known is not envelope for known in self.envelopes):
            self.envelopes.append(envelope)

    def enabled(self) -> bool:
        """Only while a run of one of its targets' loops is in progress."""
        return CURRENT.get() is not None or any(e.current_run() is not None for e in self.envelopes)

    def __call__(self, wrapped: Callable[..., Any], instance: Any, args: Args, kwargs: Kwargs) -> Any:
        run = CURRENT.get()
        if run is None or all(known is not run.owner for known in self.envelopes):
            return self._count_only(wrapped, args, kwargs)
        try:
            if run.recorder is not None:
                run.recorder.record(args)
            slot = run.serve(wrapped, instance, args, kwargs)
        except Exception as exc:  # ours: stop predicting, the call runs as before
            run.active = False
            internal_error(f"prefetching for {run.name}", exc)
            slot = None
        timeout = run.timeout
        if self.is_async:
            return self._serve_async(run, slot, timeout, wrapped, instance, args, kwargs)
        try:
            if slot is not None:
                if run.probing:
                    run.probed(ThreadWorkers.done_within(slot, run.probe_seconds))
                value = ThreadWorkers.wait(slot, timeout)
            elif run.stepped_aside and run.probing is False:
                started, cpu = time.perf_counter(), time.thread_time()
                try:
                    value = _direct(run, wrapped, args, kwargs)
                finally:
                    run.timed_direct(_waited(started, cpu), instance, args, kwargs)
            else:
                value = _direct(run, wrapped, args, kwargs)
        except BaseException:
            run.count(False)
            raise
        run.count(True)
        return value

    async def _serve_async(
        self,
        run: PrefetchRun,
        slot: Slot[Any] | None,
        timeout: float | None,
        wrapped: Callable[..., Any],
        instance: Any,
        args: Args,
        kwargs: Kwargs,
    ) -> Any:
        try:
            if slot is None:
                token = CURRENT.set(None)  # the call itself is not part of the loop's body
                started, cpu = time.perf_counter(), time.thread_time()
                try:
                    if run.policy is None:
                        value = await wrapped(*args, **kwargs)
                    else:
                        value = await run.policy.acall(wrapped, args, kwargs)
                finally:
                    CURRENT.reset(token)
                    if run.stepped_aside and run.probing is False:
                        run.timed_direct(_waited(started, cpu), instance, args, kwargs)
            else:
                if run.probing:
                    run.probed(await AsyncWorkers.done_within(slot, run.probe_seconds))
                value = await AsyncWorkers.wait(slot, timeout)
        except BaseException:
            run.count(False)
            raise
        run.count(True)
        return value

    def _count_only(self, wrapped: Callable[..., Any], args: Args, kwargs: Kwargs) -> Any:
        run = next((r for r in (e.current_run() for e in self.envelopes) if r is not None), None)
        if self.is_async:
            return self._count_async(run, wrapped(*args, **kwargs))
        try:
            result = wrapped(*args, **kwargs)
        except BaseException:
            if run is not None:
                run.count(False)
            raise
        if run is not None:
            run.count(True)
        return result

    async def _count_async(self, run: Any, awaitable: Awaitable[Any]) -> Any:
        try:
            result = await awaitable
        except BaseException:
            if run is not None:
                run.count(False)
            raise
        if run is not None:
            run.count(True)
        return result


class SourceCapture:
    """The wrapper on a ``returned-by`` call: its value becomes the run's item source."""

    def __init__(self, envelope: LoopEnvelope, is_async: bool) -> None:
        self.envelope = envelope
        self.is_async = is_async

    def enabled(self) -> bool:
        """Only while a prefetch run is in progress."""
        return CURRENT.get() is not None

    def __call__(self, wrapped: Callable[..., Any], instance: Any, args: Args, kwargs: Kwargs) -> Any:
        if self.is_async:
            return self._capture_async(wrapped(*args, **kwargs))
        return self._capture(wrapped(*args, **kwargs))

    def _capture(self, value: Any) -> Any:
        run = CURRENT.get()
        if run is None or run.owner is not self.envelope or run.source is not None:
            return value
        try:
            source, value = _split(value)
            if source is not None:
                run.set_source(source)
        except Exception as exc:  # ours: the loop gets the value untouched
            internal_error(f"reading the items of {self.envelope.target.name}", exc)
        return value

    async def _capture_async(self, awaitable: Awaitable[Any]) -> Any:
        return self._capture(await awaitable)


class SleepSkipper:
    """The wrapper on ``time.sleep`` (and the async sleeps) for ``skip_sleeps = true``:
    inside an accelerated loop its own pacing sleeps are skipped. Sleeps anywhere else,
    the per-item calls' own included, are untouched."""

    def __init__(self, is_async: bool) -> None:
        self.is_async = is_async

    def enabled(self) -> bool:
        """Only in the loop's own thread or task, while a run that skips sleeps is on."""
        run = CURRENT.get()
        return run is not None and run.skip_sleeps

    def __call__(self, wrapped: Callable[..., Any], instance: Any, args: Args, kwargs: Kwargs) -> Any:
        run = CURRENT.get()
        if run is not None:
            run.skipped_sleeps += 1
        if self.is_async:
            return wrapped(0, *args[1:], **kwargs)  # still yields to the event loop once
        return None
