"""The safety envelope: what runs when a patched loop is called and its switch says yes.

Replace mode calls the user's parallel version of the loop; if that raises, the original
loop runs (``on_error = "fallback"``, the default, as the hand-written patches do) or the
exception propagates (``"propagate"``). A failure of our own machinery before the loop
starts always means: run the original, say why in one line.

Every run ends in one ``sched_accel.run`` line: target, mode, outcome (``ok``,
``fallback``, ``failed`` when propagated, ``interrupted`` by cancellation or another
BaseException), items, ok, failed, seconds, concurrency. ``ok``/``failed`` count the
declared per-item calls (``fetch``) made while the run was in progress.
"""

from __future__ import annotations

import inspect
import threading
import time
from collections.abc import Awaitable, Callable, Sized
from typing import Any

from ._config import Target
from ._exceptions import SchedAccelError, TargetError
from ._log import event, internal_error
from ._policy import Hosts
from ._prefetch_mode import PrefetchMode
from ._switch import Breaker
from ._targets import ArgumentLocator, Resolved

__all__ = ["LoopEnvelope", "Run"]


class Run:
    """One call of a patched loop, counted while it is in progress."""

    __slots__ = ("_lock", "failed", "items", "ok", "started")

    def __init__(self, items: int | None) -> None:
        self.items = items
        self.ok = 0
        self.failed = 0
        self.started = time.perf_counter()
        self._lock = threading.Lock()

    def count(self, ok: bool) -> None:
        """One per-item call finished."""
        with self._lock:
            if ok:
                self.ok += 1
            else:
                self.failed += 1


class LoopEnvelope:
    """The wrapt wrapper function installed on a loop: ``(wrapped, instance, args, kwargs)``."""

    def __init__(
        self,
        target: Target,
        resolved: Resolved,
        breaker: Breaker,
        *,
        state_dir: str | None = None,
        hosts: Hosts | None = None,
    ) -> None:
        self.target = target
        self.resolved = resolved
        self.breaker = breaker
        self._lock = threading.Lock()
        self._runs: list[Run] = []
        self._replacement: Callable[..., Any] | None = None
        self._items_argument = ArgumentLocator(target.items) if target.items is not None else None
        self.prefetch = PrefetchMode(self, state_dir, hosts) if target.mode == "prefetch" else None

    # -- what the per-item counter asks -------------------------------------------------
    def current_run(self) -> Run | None:
        """The latest run in progress, if any."""
        runs = self._runs
        return runs[-1] if runs else None

    # -- the wrapper --------------------------------------------------------------------
    def __call__(self, wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if self.prefetch is not None:
            if self.resolved.is_async:
                return self.prefetch.call_async(wrapped, args, kwargs)
            return self.prefetch.call(wrapped, args, kwargs)
        if self.resolved.is_async:
            return self._call_async(wrapped, instance, args, kwargs)
        try:
            run = self._begin(wrapped, args, kwargs)
        except Exception as exc:
            internal_error(f"starting {self.target.name}", exc)
            return wrapped(*args, **kwargs)
        try:
            result = self._replacement_for()(*self._replacement_args(instance, args), **kwargs)
        except Exception as exc:
            self._fell_back(run, exc)
        except BaseException as exc:
            self._interrupted(run, exc)
            raise
        else:
            self._succeeded(run)
            return result
        # Outside the handler: the original runs as if called directly, and its own
        # exceptions are not chained to the replacement's.
        return wrapped(*args, **kwargs)

    async def _call_async(
        self, wrapped: Callable[..., Awaitable[Any]], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        try:
            run = self._begin(wrapped, args, kwargs)
        except Exception as exc:
            internal_error(f"starting {self.target.name}", exc)
            return await wrapped(*args, **kwargs)
        try:
            result = self._replacement_for()(*self._replacement_args(instance, args), **kwargs)
            if inspect.isawaitable(result):
                result = await result
        except Exception as exc:
            self._fell_back(run, exc)
        except BaseException as exc:  # cancellation, KeyboardInterrupt: never swallowed
            self._interrupted(run, exc)
            raise
        else:
            self._succeeded(run)
            return result
        return await wrapped(*args, **kwargs)

    # -- shared steps -------------------------------------------------------------------
    def _begin(self, wrapped: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Run:
        run = Run(self._count_items(wrapped, args, kwargs))
        with self._lock:
            self._runs.append(run)
        return run

    def _end(self, run: Run) -> float:
        with self._lock:
            if run in self._runs:
                self._runs.remove(run)
        return time.perf_counter() - run.started

    def _succeeded(self, run: Run) -> None:
        self._report(run, "ok", self._end(run))
        self.breaker.record_success()

    def _interrupted(self, run: Run, exc: BaseException) -> None:
        """A BaseException (cancellation, KeyboardInterrupt) cut the run short: end it, say so."""
        self._report(run, "interrupted", self._end(run), reason=type(exc).__name__)

    def _fell_back(self, run: Run, exc: Exception) -> None:
        """The replacement raised: re-raise (propagate) or report and let the original run."""
        seconds = self._end(run)
        reason = f"{type(exc).__name__}: {exc}"
        if self.target.on_error == "propagate":
            self._report(run, "failed", seconds, reason=reason)
            raise exc
        self._report(run, "fallback", seconds, reason=reason)
        event(
            "WARNING",
            "fallback",
            "the replacement raised, so the original loop runs now (set on_error = \"propagate\" to raise instead)",
            target=self.target.name,
            reason=reason,
        )
        self.breaker.record_fallback(reason)

    def _report(self, run: Run, outcome: str, seconds: float, **extra: Any) -> None:
        event(
            "INFO" if outcome == "ok" else "WARNING",
            "run",
            target=self.target.name,
            mode=self.target.mode,
            outcome=outcome,
            items="-" if run.items is None else run.items,
            ok=run.ok,
            failed=run.failed,
            seconds=f"{seconds:.3f}",
            concurrency=self.target.concurrency,
            **extra,
        )

    def prepare(self) -> None:
        """Import and resolve the replacement now (replace mode), so that one that cannot be
        used is reported once, when patching, and the loop is left unpatched."""
        spec = self.target.replacement
        if spec is None:
            return
        try:
            self._replacement_for()
        except SchedAccelError:
            raise
        except Exception as exc:
            raise TargetError(
                f"{spec.text}: importing the replacement module {spec.module} failed: {type(exc).__name__}: {exc}"
            ) from None

    def _replacement_for(self) -> Callable[..., Any]:
        replacement = self._replacement
        if replacement is None:
            spec = self.target.replacement
            if spec is None or spec.module is None:
                raise RuntimeError(f"{self.target.mode} mode is not available for {self.target.name} in this version")
            import importlib

            module = importlib.import_module(spec.module)
            replacement = self._replacement = spec.resolve(module).function
        return replacement

    def _replacement_args(self, instance: Any, args: tuple[Any, ...]) -> tuple[Any, ...]:
        if instance is not None and self.resolved.kind in ("method", "classmethod"):
            return (instance, *args)
        return args

    def _count_items(self, wrapped: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> int | None:
        if self._items_argument is None:
            return None
        found = self._items_argument.find(wrapped, args, kwargs)
        return len(found[0]) if found is not None and isinstance(found[0], Sized) else None
