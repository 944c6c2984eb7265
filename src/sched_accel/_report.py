"""One run of a patched loop, counted while it runs and reported once when it ends, in
either mode: the ``sched_accel.run`` log line, the saved last run (``sched-accel status``)
and, when an undeclared host answered 429, the hint to declare it.

The figures also go to OpenTelemetry's instruments (:mod:`._metrics`). The line: target, mode, outcome (``ok``; ``fallback`` or ``failed`` in replace mode;
``raised`` when the loop raised in prefetch mode; ``interrupted`` by cancellation or another
BaseException; ``off`` when the loop ran unaccelerated, switched off: :mod:`._off`), items,
ok, failed, seconds, concurrency, then what the mode adds (prefetched, missed, wasted, the
policy's counters). ``ok``/``failed`` count the declared per-item calls made while the run
was in progress; at HTTP level, the items' GETs and HEADs by their answers
(``_prefetch._tally``). A run with ``lost`` above 0, or not ``ok``, is logged at WARNING.

Is it faster? Two figures say so:

- ``effective_concurrency``: the run's requests at the time one takes alone, over the run's
  wall time: how many requests' worth of waiting each second of the run did (a sequential
  loop of only requests is near 1). When it stays under 1.5 while requests were sent together
  and each took at least 2.5 times as long as one alone, a ``not_faster`` line says why: the
  upstream, or a lock or a connection pool of 1 in the client, serves them one at a time.
- ``speedup``: against the target's last unaccelerated run (an ``outcome=off`` run, kept in
  its runs file), per item when both runs' items are known.

A run longer than a minute logs a ``progress`` line at 60 s and every 30 s after, from the
per-item calls as they finish (a call that hangs for minutes has no line until it ends).
"""

from __future__ import annotations

import threading
import time
from typing import Any

from ._events import NOT_FASTER, PROGRESS, RUN
from ._log import event, internal_error
from ._metrics import record_run
from ._policy import Hosts, RunStats, statistics_lines
from ._settings import Target
from ._state import LearnedRates, load_kept, save_run

__all__ = ["RunReport"]

#: The first progress line comes this long after the run began, then every PROGRESS_EVERY.
PROGRESS_AFTER = 60.0
PROGRESS_EVERY = 30.0
#: Below this effective concurrency, with requests this much slower together than alone, the
#: run was no faster than one request at a time.
NO_FASTER_BELOW = 1.5
SERIALISED = 2.5


class RunReport:
    """The counts of one run in progress (thread-safe), and its one report."""

    __slots__ = ("_lock", "_next_progress", "failed", "items", "ok", "started", "target")

    def __init__(self, target: Target, items: int | None = None) -> None:
        self.target = target
        self.items = items  # known up front (replace mode, a sized argument), else None
        self.ok = 0
        self.failed = 0
        self.started = time.perf_counter()
        self._next_progress = self.started + PROGRESS_AFTER
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
        if (now := time.perf_counter()) >= self._next_progress:
            self._next_progress = now + PROGRESS_EVERY
            self._progress(now)

    def _progress(self, now: float) -> None:
        event(
            PROGRESS,
            "this run goes on; a line every 30 s until its sched_accel.run line",
            target=self.target.name,
            done=self.ok + self.failed,
            items=self.items,
            failed=self.failed,
            seconds=round(now - self.started, 1),
        )

    def finish(
        self,
        outcome: str,
        *,
        items: int | None = None,
        more: dict[str, Any] | None = None,
        state_dir: str | None = None,
        hosts: Hosts | None = None,
        stats: RunStats | None = None,
        plain: bool = False,
    ) -> dict[str, Any]:
        """Log the run's line, save it for ``sched-accel status``; the line's fields.
        ``plain``: the loop ran unaccelerated, to its end: kept as the target's baseline.
        Nothing of this may reach the app: it never raises."""
        count = self.items if items is None else items
        seconds = time.perf_counter() - self.started
        fields: dict[str, Any] = {
            "target": self.target.name,
            "mode": self.target.mode,
            "outcome": outcome,
            "items": count,
            "ok": self.ok,
            "failed": self.failed,
            "seconds": round(seconds, 3),
            "concurrency": self.target.concurrency,
        }
        fields.update(more or {})
        baseline: dict[str, Any] | None = None
        timeline: dict[str, Any] | None = None
        sequential: dict[str, Any] | None = None
        try:
            if stats is not None:
                _effective(fields, stats, seconds)
                timeline = {**stats.timeline(), "seconds": round(seconds, 3)}
            if state_dir is not None:
                kept = load_kept(state_dir, self.target.name)
                baseline, sequential = kept["plain"], kept["sequential"]
                if timeline is not None and timeline["spans"] and fields.get("peak_requests", 0) <= 1:
                    sequential = {**timeline, "finished": time.time()}  # its requests went one at a time
                if plain:
                    baseline = {"seconds": round(seconds, 3), "items": count, "finished": time.time()}
                elif outcome == "ok" and baseline is not None and (speedup := _speedup(baseline, seconds, count)):
                    fields["speedup"] = speedup
        except Exception as exc:  # pragma: no cover - defensive
            internal_error(f"measuring the run of {self.target.name}", exc)
        event(RUN, level="INFO" if outcome in ("ok", "off") and not fields.get("lost", 0) else "WARNING", **fields)
        try:
            if stats is not None and outcome == "ok":
                _say_not_faster(fields, stats)
            record_run(fields, hosts)  # OpenTelemetry's instruments, when the app or our endpoint reads them
            if hosts is not None and fields.get("http_429"):
                hosts.hint_undeclared()
            if state_dir is not None:
                lines = statistics_lines(hosts.statistics()) if hosts is not None else []
                save_run(state_dir, self.target.name, fields, lines, baseline, timeline, sequential)
                if hosts is not None:
                    LearnedRates(state_dir).save(hosts.kept_rates())  # the next run starts at them
        except Exception as exc:  # pragma: no cover - defensive
            internal_error(f"recording the run of {self.target.name}", exc)
        return fields


def _effective(fields: dict[str, Any], stats: RunStats, seconds: float) -> None:
    """``effective_concurrency``: requests' worth of waiting per second of the run."""
    work = stats.request_work()
    if work is not None and seconds > 0:
        fields["effective_concurrency"] = round(work / seconds, 2)


def _speedup(baseline: dict[str, Any], seconds: float, items: int | None) -> float | None:
    """This run against the kept unaccelerated one: per item when both counts are known, by
    the whole run when neither is (a count known on one side only compares nothing)."""
    plain = float(baseline["seconds"])
    plain_items: int | None = baseline.get("items")
    if seconds <= 0:
        return None
    if items is not None and plain_items is not None:
        if not items or not plain_items:
            return None
        return round(plain / plain_items * items / seconds, 2)
    if items is None and plain_items is None:
        return round(plain / seconds, 2)
    return None


def _say_not_faster(fields: dict[str, Any], stats: RunStats) -> None:
    """The run sent requests together, yet did no more than one request's waiting at a time."""
    effective = fields.get("effective_concurrency")
    slowdown = stats.slowdown()
    if effective is None or slowdown is None or effective >= NO_FASTER_BELOW or slowdown < SERIALISED:
        return
    if fields.get("peak_requests", 0) < 2 or fields.get("limit_wait", 0.0) > 0.1 * fields["seconds"]:
        return  # never together, or paced by a limit (limit_wait says that): not this case
    event(
        NOT_FASTER,
        f"requests went out up to {fields['peak_requests']} at once, but each took {slowdown:.1f} times as long as "
        "one alone, so the run was no faster than one at a time: the upstream (or a lock, or a connection pool "
        "of 1 in the client: httpx Limits, requests' pool_maxsize) serves them one by one; fix that, or set "
        "concurrency = 1 for this target to stop sending them together",
        target=fields["target"],
        effective_concurrency=effective,
        slowdown=round(slowdown, 1),
        peak_requests=fields["peak_requests"],
    )
