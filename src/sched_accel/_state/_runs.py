"""The last run of each target, kept on disk for ``sched-accel status``.

The app's process writes one small JSON file per target after each run, in its own folder
(``<app folder>/runs/``, :mod:`._apps`; owner-only, like the rest of our state), so
``sched-accel status`` shows this app's runs, never another's; ``status``, another process, reads them under the trust
rule (:mod:`._trust`): only this user's own files, in folders only this user can change. A
refused file is skipped, and said; a missing or unreadable one shows as "no run recorded".
Their content is shown escaped (it is data, never terminal control).
"""

from __future__ import annotations

import json
import os
import re
import time
from typing import Any

from ._files import write_private
from ._trust import Refused, check_folders, log_refused, read_trusted

__all__ = ["load_runs", "runs_folder", "save_run"]

#: A runs file larger than this is refused (one run's line and its hosts' are a few KB).
_MAX_BYTES = 1024 * 1024


def runs_folder(state_dir: str) -> str:
    return os.path.join(state_dir, "runs")


def _path(state_dir: str, target: str) -> str:
    return os.path.join(runs_folder(state_dir), re.sub(r"[^A-Za-z0-9_.-]+", "_", target) + ".json")


def save_run(state_dir: str, target: str, fields: dict[str, Any], hosts: list[str] | None = None) -> None:
    """Record ``fields`` (the run line's) as ``target``'s last run. Never raises."""
    record = {"target": target, "finished": time.time(), "pid": os.getpid(), "run": fields, "hosts": hosts or []}
    try:
        write_private(_path(state_dir, target), json.dumps(record, default=str))
    except Refused as exc:
        log_refused(exc)
    except Exception:  # a read-only state folder must not break the app; status says "none"
        pass


def load_runs(state_dir: str, refused: list[str] | None = None) -> dict[str, dict[str, Any]]:
    """Every recorded last run that passes the trust rule, by target name. Each refused file
    is appended to ``refused`` (``path: why; what to do``), or logged when it is None."""
    folder = runs_folder(state_dir)
    try:
        names = sorted(os.listdir(folder))
    except OSError:
        return {}
    names = [name for name in names if name.endswith(".json")]

    def refuse(exc: Refused) -> None:
        if refused is None:
            log_refused(exc)
        else:
            refused.append(str(exc))

    runs: dict[str, dict[str, Any]] = {}
    try:
        if names:  # a folder others could change: said once, not once per file
            check_folders(os.path.join(folder, names[0]))
    except Refused as exc:
        refuse(exc)
        return runs
    for name in names:
        try:
            raw = read_trusted(os.path.join(folder, name), limit=_MAX_BYTES)
            record = json.loads(raw.decode("utf-8")) if raw is not None else None
        except Refused as exc:
            refuse(exc)
            continue
        except (ValueError, RecursionError):
            continue
        if isinstance(record, dict) and isinstance(record.get("target"), str) and isinstance(record.get("run"), dict):
            runs[record["target"]] = record
    return runs
