"""One run of a patched loop, counted while it runs and reported once when it ends, in
either mode: the ``sched_accel.run`` log line, the saved last run (``sched-accel status``)
and, when an undeclared host answered 429, the hint to declare it.

The line: target, mode, outcome (``ok``; ``fallback`` or ``failed`` in replace mode;
``raised`` when the loop raised in prefetch mode; ``interrupted`` by cancellation or another
BaseException), items, ok, failed, seconds, concurrency, then what the mode adds
(prefetched, missed, wasted, the policy's counters). ``ok``/``failed`` count the declared
per-item calls made while the run was in progress; at HTTP level, the items' GETs and HEADs
by their answers (``_prefetch._tally``). A run with ``lost`` above 0, or not ``ok``, is
logged at WARNING.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from ._log import event, internal_error
from ._policy import Hosts, statistics_lines
from ._settings import Target
from ._state import LearnedRates, save_run

__all__ = ["RunReport"]


class RunReport:
    """The counts of one run in progress (thread-safe), and its one report."""

    __slots__ = ("_lock", "failed", "items", "ok", "started", "target")

    def __init__(self, target: Target, items: int | None = None) -> None:
        self.target = target
        self.items = items  # known up front (replace mode, a sized argument), else None
        self.ok = 0
        self.failed = 0
        self.started = time.perf_counter()
        self._lock = threading.Lock()

    def count(self, ok: bool) -> None:
        """One per-item call finished, in any thread (a replacement's workers count at once)."""
        with self._lock:
            self.tally(ok)

    def tally(self, ok: bool) -> None:
        """One per-item call finished, counted by the one thread or task that counts this run."""
        if ok:
            self.ok += 1
        else:
            self.failed += 1

    def finish(
        self,
        outcome: str,
        *,
        items: int | None = None,
        more: dict[str, Any] | None = None,
        state_dir: str | None = None,
        hosts: Hosts | None = None,
    ) -> dict[str, Any]:
        """Log the run's line, save it for ``sched-accel status``; the line's fields.
        Nothing of this may reach the app: it never raises."""
        count = self.items if items is None else items
        fields: dict[str, Any] = {
            "target": self.target.name,
            "mode": self.target.mode,
            "outcome": outcome,
            "items": "-" if count is None else count,
            "ok": self.ok,
            "failed": self.failed,
            "seconds": f"{time.perf_counter() - self.started:.3f}",
            "concurrency": self.target.concurrency,
        }
        fields.update(more or {})
        event("INFO" if outcome == "ok" and not fields.get("lost", 0) else "WARNING", "run", **fields)
        try:
            if hosts is not None and fields.get("http_429"):
                hosts.hint_undeclared()
            if state_dir is not None:
                lines = statistics_lines(hosts.statistics()) if hosts is not None else []
                save_run(state_dir, self.target.name, fields, lines)
                if hosts is not None:
                    LearnedRates(state_dir).save(hosts.kept_rates())  # the next run starts at them
        except Exception as exc:  # pragma: no cover - defensive
            internal_error(f"recording the run of {self.target.name}", exc)
        return fields
