"""The wrappers put around the loop's callees while a prefetch run is on.

- :class:`FetchInterceptor`, on the per-item function: serves the loop's calls from the
  run's prefetched slots (or runs them directly, with the run's retries), counts them, and
  lets every other call through untouched;
- :class:`SourceCapture`, on a ``returned-by`` call: its value becomes the run's items;
- :class:`SleepSkipper`, on ``time.sleep`` and the async sleeps (``skip_sleeps = true``).

Each acts only in the loop's own thread or task while a run is current (:data:`CURRENT`).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from .._engine import AsyncWorkers, Slot, ThreadWorkers
from .._log import internal_error
from .._report import RunReport
from ._probe import waited
from ._run import CURRENT, PrefetchRun, here
from ._shadow import ShadowRun
from ._sources import split

__all__ = ["FetchInterceptor", "Owner", "SleepSkipper", "SourceCapture"]

Args = tuple[Any, ...]
Kwargs = dict[str, Any]


class Owner(Protocol):
    """A mode installed on a loop: its runs in progress that are not prefetch runs (replace
    mode's), whose per-item calls are only counted."""

    def current_run(self) -> RunReport | None: ...


def _direct(run: PrefetchRun, wrapped: Callable[..., Any], args: Args, kwargs: Kwargs) -> Any:
    """Run a per-item call in the loop's thread, with the run's retries and limits: its own
    sleeps and calls are not part of the loop's body, so no run is current while it runs."""
    token = CURRENT.set(None)
    try:
        if run.policy is None:
            return wrapped(*args, **kwargs)
        return run.policy.call(wrapped, args, kwargs, plain=run.step.stepped_aside)
    finally:
        CURRENT.reset(token)


class FetchInterceptor:
    """The wrapper on a per-item function: serves prefetched calls and counts calls, for
    every target that declares this function (one wrapper, however many targets)."""

    def __init__(self, is_async: bool) -> None:
        self.is_async = is_async
        self.owners: list[Owner] = []

    def add(self, owner: Owner) -> None:
        """Serve (or count) this target's runs too."""
        if all(known is not owner for known in self.owners):
            self.owners.append(owner)

    def enabled(self) -> bool:
        """Only while a run of one of its targets' loops is in progress."""
        return CURRENT.get() is not None or any(e.current_run() is not None for e in self.owners)

    def __call__(self, wrapped: Callable[..., Any], instance: Any, args: Args, kwargs: Kwargs) -> Any:
        run = CURRENT.get()
        if run is None or run.owner not in self.owners or not isinstance(run, PrefetchRun):  # modes compare by identity
            return self._count_only(wrapped, args, kwargs)
        try:
            if run.recorder is not None:
                run.recorder.record(args)
            slot = run.serve(wrapped, instance, args, kwargs)
        except Exception as exc:  # ours: stop predicting, the call runs as before
            run.active = False
            internal_error(f"prefetching for {run.name}", exc)
            slot = None
        if isinstance(run, ShadowRun):  # the real call runs in place, answered from its shadow
            if self.is_async:
                return _counted_async(run, run.areal(slot, wrapped, args, kwargs))
            return _counted(run, run.real, slot, wrapped, args, kwargs)
        timeout = run.timeout
        if self.is_async:
            return self._serve_async(run, slot, timeout, wrapped, instance, args, kwargs)
        try:
            if slot is not None:
                if run.step.probing:
                    run.probed(ThreadWorkers.done_within(slot, run.step.seconds))
                value = ThreadWorkers.wait(slot, timeout)
            elif run.step.timing:
                started, cpu = time.perf_counter(), time.thread_time()
                try:
                    value = _direct(run, wrapped, args, kwargs)
                finally:
                    run.timed_direct(waited(started, cpu), instance, args, kwargs)
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
                timing = run.step.timing
                started, cpu = (time.perf_counter(), time.thread_time()) if timing else (0.0, 0.0)
                try:
                    if run.policy is None:
                        value = await wrapped(*args, **kwargs)
                    else:
                        value = await run.policy.acall(wrapped, args, kwargs, plain=run.step.stepped_aside)
                finally:
                    CURRENT.reset(token)
                    if timing:
                        run.timed_direct(waited(started, cpu), instance, args, kwargs)
            else:
                if run.step.probing:
                    run.probed(await AsyncWorkers.done_within(slot, run.step.seconds))
                value = await AsyncWorkers.wait(slot, timeout)
        except BaseException:
            run.count(False)
            raise
        run.count(True)
        return value

    def _count_only(self, wrapped: Callable[..., Any], args: Args, kwargs: Kwargs) -> Any:
        run = next((r for r in (e.current_run() for e in self.owners) if r is not None), None)
        if self.is_async:
            return _counted_async(run, wrapped(*args, **kwargs))
        return _counted(run, wrapped, *args, **kwargs)


class Counts(Protocol):
    """A run that counts its per-item calls, ok or failed (a RunReport, a prefetch run)."""

    def count(self, ok: bool) -> None: ...


def _counted(run: Counts | None, call: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
    """``call(*args, **kwargs)``, counted by ``run`` as ok or failed (if there is a run)."""
    try:
        result = call(*args, **kwargs)
    except BaseException:
        if run is not None:
            run.count(False)
        raise
    if run is not None:
        run.count(True)
    return result


async def _counted_async(run: Counts | None, awaitable: Awaitable[Any]) -> Any:
    """The same, for an awaitable."""
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
    """The wrapper on a ``returned-by`` call: its value becomes the item source of the run in
    progress, for every target that declares this call (one wrapper, however many targets:
    each run takes the value of its own loop's call)."""

    def __init__(self, is_async: bool) -> None:
        self.is_async = is_async
        self.owners: list[tuple[object, str]] = []  # (mode, target name)

    def add(self, owner: object, name: str) -> None:
        """Give this target's runs their items too."""
        if all(known is not owner for known, _ in self.owners):
            self.owners.append((owner, name))

    def enabled(self) -> bool:
        """Only while a prefetch run is in progress."""
        return CURRENT.get() is not None

    def __call__(self, wrapped: Callable[..., Any], instance: Any, args: Args, kwargs: Kwargs) -> Any:
        if self.is_async:
            return self._capture_async(wrapped(*args, **kwargs))
        return self._capture(wrapped(*args, **kwargs))

    def _capture(self, value: Any) -> Any:
        run = CURRENT.get()
        if run is None or run.source is not None:
            return value
        name = next((name for owner, name in self.owners if owner is run.owner), None)  # modes compare by identity
        if name is None:
            return value
        try:
            source, value = split(value)
            if source is not None:
                run.set_source(source)
        except Exception as exc:  # ours: the loop gets the value untouched
            internal_error(f"reading the items of {name}", exc)
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
        """Only in the loop's own thread or task, while a run that skips sleeps is on (not in a
        task the loop started, which inherits the loop's context)."""
        run = CURRENT.get()
        return run is not None and run.skip_sleeps and run.home == here()

    def __call__(self, wrapped: Callable[..., Any], instance: Any, args: Args, kwargs: Kwargs) -> Any:
        run = CURRENT.get()
        if run is not None:
            run.skipped_sleeps += 1
        if self.is_async:
            return wrapped(0, *args[1:], **kwargs)  # still yields to the event loop once
        return None
