"""Prefetch mode: one run of a patched loop, from its start to its report.

:class:`PrefetchMode` is the wrapper installed on the loop. Each call of the loop runs the
ORIGINAL loop, once, in the caller's thread or task, with a
:class:`~sched_accel._prefetch._run.PrefetchRun` current for it; the interceptors
(``_interceptors``) serve the loop's per-item calls from that run.

Function-level (``fetch = "module:qualname"``): the per-item calls are run ahead
(``_run``). HTTP-level (no ``fetch``, or ``fetch = "http"``): the loop's GET and HEAD
requests are (``_http_run``), and the loop's own code, its writes and prints included,
runs exactly as before.

Workers: a sync per-item function (or a sync loop's requests) runs in worker threads (an
explicit bound, not anyio's default of 40), whether the loop is sync or async; an async
one runs in tasks of a task group on the loop's own event loop (asyncio or trio, through
anyio).
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from types import CodeType
from typing import Any

import anyio

from .._engine import AsyncWorkers, Slot, ThreadWorkers
from .._events import ITEMS_NOT_FOUND, ITEMS_NOT_READ_AHEAD, ITEMS_UNRESOLVED
from .._exceptions import TargetError
from .._log import event, internal_error
from .._policy import LOOP, HostLimiter, Hosts, Policy, RunStats, paced
from .._report import RunReport
from .._settings import Learned, Target
from .._shadow import install as install_effects
from .._state import LearnedCalls, Recorder, has_run
from .._targets import Resolved
from ._http_run import HttpRun
from ._probe import StepAside
from ._run import CURRENT, PrefetchRun, call_key, here
from ._shadow import ShadowRun
from ._shape import item_path
from ._sources import Items
from ._why import say_why

__all__ = ["REPROBE_EVERY", "PrefetchMode"]

#: After a probe found slow calls, this many runs fan out at once before probing again.
REPROBE_EVERY = 10

Args = tuple[Any, ...]
Kwargs = dict[str, Any]


class PrefetchMode:
    """The wrapt wrapper function installed on a prefetch-mode loop: runs it with its
    per-item calls prefetched."""

    def __init__(
        self, target: Target, resolved: Resolved, *, state_dir: str | None = None, hosts: Hosts | None = None
    ) -> None:
        self.target = target
        self.resolved = resolved
        self.state_dir = state_dir
        self.hosts = hosts if hosts is not None else Hosts(default_concurrency=target.concurrency)
        # The target's own rate (per_second, burst) bounds its calls' starts, across runs, paced
        # a hair inside it like a host's.
        self.limiter = (
            HostLimiter(f"target {target.name}", paced(None, target.per_second, target.burst))
            if target.per_second is not None
            else None
        )
        #: HTTP-level: the loop's requests are prefetched, not a per-item function.
        self.http = target.http
        #: The per-item function runs ahead as a shadow (decided when it is patched).
        self.shadow = False
        self.fetch_async: bool | None = None  # known once the per-item function is patched
        if self.http:  # from its second run, a loop needs nothing declared but itself
            self.items = Items(f"{target.name} http", target.items or Learned(), state_dir)
        else:
            self.items = Items(target.name, target.items, state_dir)
        self._said_no_items = False
        self._said_unresolved = False
        #: With its items named (not learned): what the loop asked for in its last run, kept once
        #: it was seen refusing items (passing some without asking for them) or, at HTTP level,
        #: switching credentials between items, so that only those are sent ahead
        #: (``HttpRun.asked_before``: requests with their credentials; ``PrefetchRun.asked_before``:
        #: the per-item calls' arguments); loaded at the first run.
        self._asked = (
            LearnedCalls(os.path.join(state_dir or ".", "learned"), f"{target.name} asked")
            if self.items.learned is None
            else None
        )
        self._asked_entries: list[list[Any]] | None = None
        self._asked_loaded = False
        self._ran_before: bool | None = None  # a run of this target on record (``_first_run``)
        self._loop_code: CodeType | None = getattr(inspect.unwrap(resolved.function), "__code__", None)
        self._runs_since_slow_probe: int | None = None
        self.builder: Callable[[Any], Args] | None = None
        if self.items.learned is not None:
            self.builder = tuple
        elif target.args:
            getters = [item_path(p) for p in target.args]
            self.builder = lambda item: tuple(get(item) for get in getters)

    def use_shadow(self) -> None:
        """The per-item function is run ahead as a shadow (``_shadow``), not served. The
        effects' hooks go in now, so that database connections the app opens before its loop
        runs are covered too."""
        self.shadow = True
        install_effects()

    def use_http(self) -> None:
        """The per-item function is not safe to run ahead: prefetch the loop's requests instead."""
        self.http = True
        self.shadow = False
        self.fetch_async = None
        self.builder = None
        self.items = Items(f"{self.target.name} http", self.target.items or Learned(), self.state_dir)

    def current_run(self) -> RunReport | None:
        """Prefetch runs are found through ``CURRENT``, in the loop's own thread or task."""
        return None

    def __call__(self, wrapped: Callable[..., Any], instance: Any, args: Args, kwargs: Kwargs) -> Any:
        if self.resolved.is_async:
            return self.call_async(wrapped, args, kwargs)
        return self.call(wrapped, args, kwargs)

    # -- one run ------------------------------------------------------------------------------
    def _no_items(self) -> None:
        """Say once that this loop's items were not found, so nothing is prefetched."""
        if not self._said_no_items:
            self._said_no_items = True
            if self.items.one_shot:
                event(
                    ITEMS_NOT_READ_AHEAD,
                    f"items = {self.target.items.text if self.target.items else None} is a generator (or another "
                    "iterator that runs the app's code as it is read), which is never read ahead of the loop, so "
                    'this loop runs without prefetching; items = "learned" prefetches what its last run asked for',
                    target=self.target.name,
                )
                return
            event(
                ITEMS_NOT_FOUND,
                f"items = {self.target.items.text if self.target.items else None} gave nothing to iterate in "
                "this call, so the loop runs without prefetching; run `sched-accel check` and fix `items`",
                target=self.target.name,
            )

    def _new_run(
        self, submit: Callable[[Slot[Any]], Slot[Any]], source: Iterator[Any] | None, policy: Policy, *, is_async: bool
    ) -> PrefetchRun | HttpRun | ShadowRun:
        if source is None and not self.items.captured:
            self._no_items()
        # A run whose probe found slow calls tells the next runs of this process to fan out at
        # once (the probe costs a few ms); every REPROBE_EVERY-th run probes again.
        probe = self._runs_since_slow_probe is None or self._runs_since_slow_probe >= REPROBE_EVERY
        if probe:
            self._runs_since_slow_probe = None
        else:
            assert self._runs_since_slow_probe is not None
            self._runs_since_slow_probe += 1
        target = self.target
        recorder = Recorder() if self.items.learned is not None else None
        if self.http:
            return HttpRun(
                RunReport(target),
                source,
                submit,
                window=target.window_size,
                concurrency=target.concurrency,
                policy=policy,
                is_async=is_async,
                methods=target.methods,
                max_age=target.max_age,
                replay=self.items.learned is not None,
                owner=self,
                recorder=recorder,
                probe=probe,
                loop=self._loop_code,
                asked_before=self._asked_requests(),
                guard=self._asked is not None,
                first=self._first_run(),
            )
        if self.shadow:
            return ShadowRun(
                RunReport(target),
                source,
                submit,
                window=target.window_size,
                policy=policy,
                is_async=is_async,
                methods=target.methods,
                max_age=target.max_age,
                builder=self.builder,
                owner=self,
                recorder=recorder,
                probe=probe,
                asked_before=self._asked_calls(),
                guard=self._asked is not None,
            )
        return PrefetchRun(
            RunReport(target),
            source,
            submit,
            window=target.window_size,
            builder=self.builder,
            owner=self,
            policy=policy,
            recorder=recorder,
            probe=probe,
            asked_before=self._asked_calls(),
            guard=self._asked is not None,
        )

    # -- the loop, with a sync per-item function: worker threads ---------------------------------
    @contextmanager
    def _threaded(self, wrapped: Callable[..., Any], args: Args, kwargs: Kwargs) -> Iterator[tuple[Args, Kwargs]]:
        """Make this run current, with worker threads, for the body of the ``with``; a failure
        of ours to set it up means the loop runs as if unpatched."""
        if self.fetch_async is None and not self.http:
            # The per-item function is not patched: its module is not imported yet (the
            # loop imports it itself; the next run is accelerated), or it did not resolve
            # (said once, when patching). This run is the original, untouched.
            yield args, kwargs
            return
        try:
            source, args, kwargs = self.items.bind(wrapped, args, kwargs)
            policy = Policy(self.target, self.hosts, limiter=self.limiter)
            # A shadow sends each of its reads within the policy itself: the call is not retried.
            attempt = None if self.shadow else policy.attempt
            workers = ThreadWorkers(self.target.concurrency, name=f"sched_accel-{self.target.name}", attempt=attempt)
            run = self._new_run(workers.submit, source, policy, is_async=False)
        except Exception as exc:
            self._not_started(exc)
            yield args, kwargs
            return
        token = CURRENT.set(run)
        run.home = here()
        requests = LOOP.set(run) if isinstance(run, HttpRun) else None
        outcome = "raised"
        try:
            yield args, kwargs
            outcome = "ok"
        finally:
            if requests is not None:
                LOOP.reset(requests)
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
        if self.fetch_async is not True and not self.http:  # a sync per-item function, or none patched yet
            return await self._call_async_threads(wrapped, args, kwargs)
        try:
            source, args, kwargs = self.items.bind(wrapped, args, kwargs)
            policy = Policy(self.target, self.hosts, limiter=self.limiter)
            run = self._new_run(_not_started, source, policy, is_async=True)
        except Exception as exc:
            self._not_started(exc)
            return await wrapped(*args, **kwargs)
        outcome = "raised"
        error: Exception | None = None
        async with anyio.create_task_group() as group:
            workers = AsyncWorkers(group, self.target.concurrency, attempt=None if self.shadow else policy.aattempt)
            workers.start()  # before CURRENT is set: the workers must not see the loop's run
            run.submit = workers.submit
            token = CURRENT.set(run)
            run.home = here()
            requests = LOOP.set(run) if isinstance(run, HttpRun) else None
            try:
                result = await wrapped(*args, **kwargs)
                outcome = "ok"
            except Exception as exc:
                # Raised outside the task group, so the loop's own exception reaches the
                # caller as itself, never wrapped in an ExceptionGroup.
                error = exc
            finally:
                if requests is not None:
                    LOOP.reset(requests)
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

    def _not_started(self, exc: Exception) -> None:
        """This run could not start prefetching: the loop runs as it is. A declared name that
        does not resolve is the config's to fix, said once per process; anything else is ours."""
        if not isinstance(exc, TargetError):
            internal_error(f"starting {self.target.name}", exc)
        elif not self._said_unresolved:
            self._said_unresolved = True
            event(ITEMS_UNRESOLVED, f"{exc}; the loop runs without prefetching", target=self.target.name)

    def _stepped(self, step: StepAside, more: dict[str, Any], stats: RunStats | None) -> None:
        """The probe's verdict, for this process's next runs and for the run line, revised by
        what the run measured: a run that fanned out although its requests each took less than
        the probe allows, in the median (the probe's was a new connection's first answer, or the
        upstream got quicker), has the next run probe again, instead of fanning out for REPROBE_EVERY runs."""
        if step.said_slow:
            self._runs_since_slow_probe = 0
        typical = stats.typical() if stats is not None and not step.aside else None
        if typical is not None and typical < step.seconds:
            self._runs_since_slow_probe = None
        if step.aside:
            more["stepped_aside"] = "yes"
        elif step.resumed:
            more["stepped_aside"] = "resumed"
        if step.skipped:
            more["probe"] = "skipped"  # an earlier run of this process found the calls slow

    def _asked_last(self) -> list[list[Any]] | None:
        """What the loop asked for in its last run, when it refuses items (else None)."""
        if not self._asked_loaded and self._asked is not None:
            self._asked_loaded = True
            self._asked_entries = self._asked.load() or None
        return self._asked_entries

    def _first_run(self) -> bool:
        """Whether no run of this target is on record, in this process or an earlier one (the
        runs file the report writes): what the loop's credentials do from item to item is then
        unknown (``HttpRun.first``)."""
        if self._ran_before is None:
            self._ran_before = bool(self.state_dir) and has_run(self.state_dir or "", self.target.name)
        first = not self._ran_before
        self._ran_before = True  # the next run of this process is not a first
        return first

    def _asked_requests(self) -> frozenset[tuple[str, str, str]] | None:
        entries = self._asked_last()
        if entries is None:
            return None
        return frozenset(
            (e[0], e[1], e[2]) for e in entries if len(e) == 3 and all(isinstance(part, str) for part in e)
        )

    def _asked_calls(self) -> frozenset[str] | None:
        entries = self._asked_last()
        if entries is None:
            return None
        return frozenset(entry[0] for entry in entries if len(entry) == 1 and isinstance(entry[0], str))

    def _keep_asked(self, run: PrefetchRun | HttpRun, outcome: str) -> None:
        """A run of a loop that refuses items (or switches credentials): what it asked for, for
        its next runs."""
        if self._asked is None or not run.guarded or outcome != "ok":
            return
        if isinstance(run, HttpRun):
            entries: list[list[Any]] = [list(request) for request in run.asked]
        else:
            entries = [[key] for args in run.asked if (key := call_key(args)) is not None]
        self._asked_entries = entries or None
        self._asked.save(entries)

    def _report(self, run: PrefetchRun | HttpRun, outcome: str) -> None:
        if isinstance(run, HttpRun):
            more, items = run.counts(), run.hits + run.misses
            self._keep_asked(run, outcome)
        elif isinstance(run, ShadowRun):
            more, items = run.counts(), run.hits + run.misses + run.direct
            run.say_stopped()
            self._keep_asked(run, outcome)
        else:
            self._keep_asked(run, outcome)
            # A call made directly while stepped aside is a miss too: prefetched + missed = items.
            more = {"prefetched": run.hits, "missed": run.misses + run.direct, "wasted": run.wasted}
            if run.mismatched:
                more["mismatched"] = run.mismatched
            more |= run.guard_counts()
            items = run.hits + run.misses + run.direct
        stats = run.policy.stats if run.policy is not None else None
        if stats is not None:
            more.update(stats.snapshot())
        self._stepped(run.step, more, stats)
        if run.skipped_sleeps:
            more["skipped_sleeps"] = run.skipped_sleeps
        learned, recorder = self.items.learned, run.recorder
        if learned is not None and recorder is not None:
            more["learned"] = len(recorder.calls)
            if outcome == "ok":  # a run cut short would teach the next one too little
                learned.save(recorder.calls)
        say_why(run, self.target.items.text if self.target.items is not None else repr("learned"))
        run.report.finish(outcome, items=items, more=more, state_dir=self.state_dir, hosts=self.hosts, stats=stats)


def _not_started(slot: Slot[Any]) -> Slot[Any]:
    raise RuntimeError("the workers of this run are not started yet")
