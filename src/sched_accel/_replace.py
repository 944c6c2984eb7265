"""Replace mode: the user's parallel version of the loop runs instead, inside the envelope.

The wrapper installed on the loop calls the replacement (``replacement =
"module:qualname"``) with the loop's arguments. If it raises, the original loop runs
(``on_error = "fallback"``, the default, as the hand-written patches do) or the exception
propagates (``"propagate"``). A failure of our own machinery before the loop starts always
means: run the original, say why in one line. Every run ends in one ``sched_accel.run``
line (``_report``), and fallbacks in a row trip the target's breaker (``_switch``).
"""

from __future__ import annotations

import importlib
import inspect
import threading
from collections.abc import Awaitable, Callable, Sized
from typing import Any

from ._events import FALLBACK
from ._exceptions import SchedAccelError, TargetError
from ._log import event, internal_error
from ._policy import GO, CircuitBreaker, Plan, run_async, run_sync
from ._report import RunReport
from ._settings import Argument, Target
from ._targets import ArgumentLocator, Resolved

__all__ = ["ReplaceMode"]

Args = tuple[Any, ...]
Kwargs = dict[str, Any]

#: The plan's value when the replacement raised and the original is to run.
_FALLBACK: Any = object()


class ReplaceMode:
    """The wrapt wrapper function installed on a replace-mode loop."""

    def __init__(
        self, target: Target, resolved: Resolved, breaker: CircuitBreaker, *, state_dir: str | None = None
    ) -> None:
        if target.replacement is None:
            raise TargetError(f'{target.name}: replace mode needs replacement = "module:function"')
        self.target = target
        self.resolved = resolved
        self.breaker = breaker
        self.state_dir = state_dir
        self._lock = threading.Lock()
        self._runs: list[RunReport] = []
        self._replacement: Callable[..., Any] | None = None
        items = target.items
        self._items_argument = ArgumentLocator(items.where) if isinstance(items, Argument) else None

    def current_run(self) -> RunReport | None:
        """The latest run in progress, if any (the per-item counter counts into it)."""
        runs = self._runs
        return runs[-1] if runs else None

    def prepare(self) -> None:
        """Import and resolve the replacement now, so that one that cannot be used is
        reported once, when patching, and the loop is left unpatched."""
        try:
            self._replacement_for()
        except SchedAccelError:
            raise
        except Exception as exc:
            spec = self.target.replacement
            assert spec is not None
            raise TargetError(
                f"{spec.text}: importing the replacement module {spec.module} failed: {type(exc).__name__}: {exc}"
            ) from None

    # -- the wrapper: one plan (``_policy._drive``), a thread's and a task's driver -------
    def __call__(self, wrapped: Callable[..., Any], instance: Any, args: Args, kwargs: Kwargs) -> Any:
        if self.resolved.is_async:
            return self._call_async(wrapped, instance, args, kwargs)
        try:
            run = self._begin(wrapped, args, kwargs)
        except Exception as exc:
            internal_error(f"starting {self.target.name}", exc)
            return wrapped(*args, **kwargs)
        result = run_sync(self._run(run), self._call, instance, args, kwargs)
        if result is _FALLBACK:
            # Outside any handler: the original runs as if called directly, and its own
            # exceptions are not chained to the replacement's.
            return wrapped(*args, **kwargs)
        return result

    async def _call_async(
        self, wrapped: Callable[..., Awaitable[Any]], instance: Any, args: Args, kwargs: Kwargs
    ) -> Any:
        try:
            run = self._begin(wrapped, args, kwargs)
        except Exception as exc:
            internal_error(f"starting {self.target.name}", exc)
            return await wrapped(*args, **kwargs)
        result = await run_async(self._run(run), self._acall, instance, args, kwargs)
        if result is _FALLBACK:
            return await wrapped(*args, **kwargs)
        return result

    def _call(self, instance: Any, args: Args, kwargs: Kwargs) -> Any:
        result = self._replacement_for()(*self._replacement_args(instance, args), **kwargs)
        if inspect.isawaitable(result):  # its callers would get a coroutine where the loop returned its result
            if inspect.iscoroutine(result):
                result.close()
            raise TypeError(f"the replacement of the sync loop {self.target.name} returned an awaitable")
        return result

    async def _acall(self, instance: Any, args: Args, kwargs: Kwargs) -> Any:
        result = self._replacement_for()(*self._replacement_args(instance, args), **kwargs)
        return (await result) if inspect.isawaitable(result) else result

    def _run(self, run: RunReport) -> Plan[Any]:
        """One run: GO calls the replacement; its result, or _FALLBACK (run the original)."""
        try:
            result = yield GO
        except Exception as exc:
            self._fell_back(run, exc)  # re-raises with on_error = "propagate"
            return _FALLBACK
        except BaseException as exc:  # cancellation, KeyboardInterrupt: never swallowed
            self._interrupted(run, exc)
            raise
        self._succeeded(run)
        return result

    # -- the steps of a run -------------------------------------------------------------
    def _begin(self, wrapped: Callable[..., Any], args: Args, kwargs: Kwargs) -> RunReport:
        run = RunReport(self.target, self._count_items(wrapped, args, kwargs))
        with self._lock:
            self._runs.append(run)
        return run

    def _end(self, run: RunReport, outcome: str, **more: Any) -> None:
        with self._lock:
            if run in self._runs:
                self._runs.remove(run)
        run.finish(outcome, more=more, state_dir=self.state_dir)

    def _succeeded(self, run: RunReport) -> None:
        self._end(run, "ok")
        self.breaker.record(True, trial=self.breaker.state == "half-open")

    def _interrupted(self, run: RunReport, exc: BaseException) -> None:
        """A BaseException (cancellation, KeyboardInterrupt) cut the run short: end it, say so."""
        self._end(run, "interrupted", reason=type(exc).__name__)
        if self.breaker.state == "half-open":
            self.breaker.give_back_trial()

    def _fell_back(self, run: RunReport, exc: Exception) -> None:
        """The replacement raised: re-raise (propagate) or report and let the original run."""
        reason = f"{type(exc).__name__}: {exc}"
        if self.target.on_error == "propagate":
            self._end(run, "failed", reason=reason)
            raise exc
        self._end(run, "fallback", reason=reason)
        event(
            FALLBACK,
            'the replacement raised, so the original loop runs now (set on_error = "propagate" to raise instead)',
            target=self.target.name,
            reason=reason,
        )
        self.breaker.record(False, trial=self.breaker.state == "half-open", reason=reason)

    def _replacement_for(self) -> Callable[..., Any]:
        replacement = self._replacement
        if replacement is None:
            spec = self.target.replacement
            assert spec is not None and spec.module is not None
            module = importlib.import_module(spec.module)
            replacement = spec.resolve(module).function
            if not self.resolved.is_async and (
                inspect.iscoroutinefunction(replacement) or inspect.isasyncgenfunction(replacement)
            ):
                raise TargetError(
                    f"{spec.text}: the replacement is async and the loop {self.target.name} is not: its callers would "
                    "get a coroutine where the loop returned its result; name a sync replacement"
                )
            self._replacement = replacement
        return replacement

    def _replacement_args(self, instance: Any, args: Args) -> Args:
        if instance is not None and self.resolved.kind in ("method", "classmethod"):
            return (instance, *args)
        return args

    def _count_items(self, wrapped: Callable[..., Any], args: Args, kwargs: Kwargs) -> int | None:
        if self._items_argument is None:
            return None
        found = self._items_argument.find(wrapped, args, kwargs)
        return len(found[0]) if found is not None and isinstance(found[0], Sized) else None
