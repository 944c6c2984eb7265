"""Learned items: the per-item calls of a loop's last run, kept on disk for the next run.

For loops that derive their items internally (filtering, de-duplicating), no declaration
can name them: ``items = "learned"`` records the arguments of each per-item call the loop
makes, and the next run (next cron start included) prefetches those calls. A call not
predicted runs directly, as always; predictions the loop does not ask for are wasted.

The file only ever holds JSON argument values (strings, numbers, booleans, null, lists,
objects) for the declared per-item function: never a function, a module or code. It is
created owner-only and refused, loudly, when another user could have written it.
"""

from __future__ import annotations

import json
import os
import re
from typing import Any

from .._log import event
from ._files import unsafe, write_private

__all__ = ["LearnedCalls", "MAX_RECORDED"]

#: At most this many calls are remembered per target (memory and file size stay bounded).
MAX_RECORDED = 100_000

_JSON_SCALARS = (str, int, float, bool, type(None))


def _plain(value: Any) -> bool:
    if isinstance(value, _JSON_SCALARS):
        return True
    if isinstance(value, list | tuple):
        return all(_plain(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain(v) for k, v in value.items())
    return False


def _normal(value: Any) -> Any:
    """Tuples become lists, as JSON would give them back."""
    if isinstance(value, list | tuple):
        return [_normal(v) for v in value]
    if isinstance(value, dict):
        return {k: _normal(v) for k, v in value.items()}
    return value


class LearnedCalls:
    """The recorded per-item call arguments of one target, on disk."""

    def __init__(self, folder: str, target: str) -> None:
        safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", target)
        self.path = os.path.join(folder, f"{safe}.json")
        self.target = target

    def load(self) -> list[list[Any]]:
        """The argument lists recorded last time; [] when none or refused."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return []
        except OSError as exc:
            self._refused(f"cannot be checked ({exc.strerror or exc})")
            return []
        problem = unsafe(st)
        if problem is not None:
            self._refused(problem)
            return []
        try:
            with open(self.path, encoding="utf-8") as file:
                data = json.load(file)
            if not isinstance(data, dict) or data.get("version") != 1 or not isinstance(data.get("calls"), list):
                raise ValueError('expected {"version": 1, "calls": [[arg, ...], ...]}')
            calls = data["calls"]
            if not all(isinstance(call, list) and _plain(call) for call in calls):
                raise ValueError("calls must be lists of JSON values")
        except (OSError, ValueError) as exc:
            self._refused(f"cannot be read: {exc}")
            return []
        recorded: list[list[Any]] = calls[:MAX_RECORDED]
        return recorded

    def save(self, calls: list[list[Any]]) -> None:
        """Replace the file atomically (owner-only); never raises."""
        try:
            write_private(self.path, json.dumps({"version": 1, "target": self.target, "calls": calls}))
        except OSError as exc:
            event(
                "WARNING",
                "learned_not_saved",
                f"the calls of this run could not be saved ({exc}); the next run prefetches less",
                target=self.target,
                path=self.path,
            )

    def _refused(self, problem: str) -> None:
        event(
            "ERROR",
            "learned_refused",
            f"the learned-calls file {problem}, so this run does not prefetch; delete it to start afresh",
            target=self.target,
            path=self.path,
        )


class Recorder:
    """Collects the arguments of a run's per-item calls (JSON values only, bounded)."""

    __slots__ = ("calls", "skipped")

    def __init__(self) -> None:
        self.calls: list[list[Any]] = []
        self.skipped = 0

    def record(self, args: tuple[Any, ...]) -> None:
        if len(self.calls) < MAX_RECORDED and _plain(args):
            self.calls.append(_normal(args))
        else:
            self.skipped += 1
