"""A patched loop called while its switch says no: the original, timed.

wrapt calls :class:`Switched` for every call of a patched loop while sched_accel is
installed. When the target's switch says yes it hands the call to the mode's wrapper; when
it says no (``sched-accel off``, ``$SCHED_ACCEL_DISABLED_TARGETS``, a refused control file,
the target's breaker open after fallbacks), the original loop runs as it is, in the caller's
thread or task, with its arguments, its result and its exceptions untouched. Around it only
a clock: one ``sched_accel.run`` line with ``outcome=off`` and ``by=`` (who said no), and,
when the loop ran to its end, its time kept as the target's unaccelerated run, which later
accelerated runs' ``speedup`` is measured against (:mod:`._report`).

With the flag off none of this is loaded; uninstalled (``sched_accel.uninstall()``), wrapt
calls the original directly.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sized
from typing import Any

from ._log import internal_error
from ._report import RunReport
from ._settings import Argument, Target
from ._switch import Switch
from ._targets import ArgumentLocator

__all__ = ["Switched"]

Args = tuple[Any, ...]
Kwargs = dict[str, Any]


class Switched:
    """The wrapper wrapt calls: the mode's while the switch says yes, else the original, timed."""

    def __init__(
        self, target: Target, mode: Callable[..., Any], switch: Switch, *, state_dir: str | None, is_async: bool
    ) -> None:
        self.target = target
        self.mode = mode
        self.switch = switch
        self.state_dir = state_dir
        self.is_async = is_async
        items = target.items
        self._items = ArgumentLocator(items.where) if isinstance(items, Argument) else None

    def __call__(self, wrapped: Callable[..., Any], instance: Any, args: Args, kwargs: Kwargs) -> Any:
        if self.switch():
            return self.mode(wrapped, instance, args, kwargs)
        try:
            report = RunReport(self.target, self._count(wrapped, args, kwargs))
            by = self.switch.off_by()
        except Exception as exc:  # pragma: no cover - defensive: the original runs, unmeasured
            internal_error(f"timing the unaccelerated run of {self.target.name}", exc)
            return wrapped(*args, **kwargs)
        if self.is_async:
            return self._timed_async(report, by, wrapped(*args, **kwargs))
        ended = False
        try:
            result = wrapped(*args, **kwargs)
            ended = True
            return result
        finally:
            self._finish(report, by, ended)

    async def _timed_async(self, report: RunReport, by: str, awaitable: Awaitable[Any]) -> Any:
        ended = False
        try:
            result = await awaitable
            ended = True
            return result
        finally:
            self._finish(report, by, ended)

    def _count(self, wrapped: Callable[..., Any], args: Args, kwargs: Kwargs) -> int | None:
        """The items when they are a sized argument (``len()`` of a list: nothing else is read)."""
        if self._items is None:
            return None
        found = self._items.find(wrapped, args, kwargs)
        return len(found[0]) if found is not None and isinstance(found[0], Sized) else None

    def _finish(self, report: RunReport, by: str, ended: bool) -> None:
        """The run line (``loop_raised`` when the loop did not return); the baseline kept only
        for a run that ended."""
        more: dict[str, Any] = {"by": by}
        if not ended:
            more["loop_raised"] = "yes"
        report.finish("off", more=more, state_dir=self.state_dir, plain=ended)
