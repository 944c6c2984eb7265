"""The last run of each target, kept on disk for ``sched-accel status``.

The app's process writes one small JSON file per target after each run (owner-only, like
the rest of our state); ``sched-accel status``, another process, reads them. The files
steer nothing: a missing or unreadable one just shows as "no run recorded".
"""

from __future__ import annotations

import json
import os
import re
import time
from typing import Any

from ._files import write_private

__all__ = ["load_runs", "runs_folder", "save_run"]


def runs_folder(state_dir: str) -> str:
    return os.path.join(state_dir, "runs")


def _path(state_dir: str, target: str) -> str:
    return os.path.join(runs_folder(state_dir), re.sub(r"[^A-Za-z0-9_.-]+", "_", target) + ".json")


def save_run(state_dir: str, target: str, fields: dict[str, Any], hosts: list[str] | None = None) -> None:
    """Record ``fields`` (the run line's) as ``target``'s last run. Never raises."""
    record = {"target": target, "finished": time.time(), "pid": os.getpid(), "run": fields, "hosts": hosts or []}
    try:
        write_private(_path(state_dir, target), json.dumps(record, default=str))
    except Exception:  # a read-only state folder must not break the app; status says "none"
        pass


def load_runs(state_dir: str) -> dict[str, dict[str, Any]]:
    """Every recorded last run, by target name."""
    folder = runs_folder(state_dir)
    try:
        names = sorted(os.listdir(folder))
    except OSError:
        return {}
    runs: dict[str, dict[str, Any]] = {}
    for name in names:
        if not name.endswith(".json"):
            continue
        try:
            with open(os.path.join(folder, name), encoding="utf-8") as file:
                record = json.load(file)
        except (OSError, ValueError):
            continue
        if isinstance(record, dict) and isinstance(record.get("target"), str) and isinstance(record.get("run"), dict):
            runs[record["target"]] = record
    return runs
