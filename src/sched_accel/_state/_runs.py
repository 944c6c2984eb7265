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

from .._events import RUNS_NOT_SAVED
from .._log import event
from ._files import write_private
from ._trust import Refused, check_folders, log_refused, read_trusted

__all__ = ["has_run", "load_kept", "load_plain", "load_runs", "runs_folder", "save_run"]

#: A runs file larger than this is refused (one run's line and its hosts' are a few KB).
_MAX_BYTES = 1024 * 1024


def runs_folder(state_dir: str) -> str:
    return os.path.join(state_dir, "runs")


def _path(state_dir: str, target: str) -> str:
    return os.path.join(runs_folder(state_dir), re.sub(r"[^A-Za-z0-9_.-]+", "_", target) + ".json")


def has_run(state_dir: str, target: str) -> bool:
    """Whether a run of ``target`` is on record (in this process or an earlier one): a first run
    has none. What it recorded is not read here (nor trusted: ``load_kept`` reads it)."""
    return os.path.exists(_path(state_dir, target))


def save_run(
    state_dir: str,
    target: str,
    fields: dict[str, Any],
    hosts: list[str] | None = None,
    plain: dict[str, Any] | None = None,
    timeline: dict[str, Any] | None = None,
    sequential: dict[str, Any] | None = None,
) -> None:
    """Record ``fields`` (the run line's) as ``target``'s last run, with ``timeline`` (its
    requests' spans); and what later runs keep: ``plain``, the last run made unaccelerated
    (``seconds``, ``items``, ``finished``: the baseline of ``speedup``), and ``sequential``,
    the spans of the last run whose requests went one at a time. Never raises."""
    record = {"target": target, "finished": time.time(), "pid": os.getpid(), "run": fields, "hosts": hosts or []}
    for key, value in (("plain", plain), ("timeline", timeline), ("sequential", sequential)):
        if value is not None:
            record[key] = value
    try:
        write_private(_path(state_dir, target), json.dumps(record, default=str))
    except Refused as exc:
        log_refused(exc)
    except Exception as exc:  # a read-only state folder must not break the app; status says "none"
        _say_not_saved(state_dir, exc)


_said_not_saved: set[str] = set()  # the state folders whose runs could not be saved, said once each


def _say_not_saved(state_dir: str, exc: Exception) -> None:
    if state_dir in _said_not_saved:
        return
    _said_not_saved.add(state_dir)
    event(
        RUNS_NOT_SAVED,
        f"this app's runs cannot be saved ({type(exc).__name__}: {exc}); the app runs as it would, but `sched-accel "
        "status` shows no last run and speedup has no baseline (said once): make the state folder writable "
        "(`sched-accel doctor` checks it) or point SCHED_ACCEL_CONTROL at a writable folder",
        folder=state_dir,
    )


def load_kept(state_dir: str, target: str) -> dict[str, Any]:
    """What ``target``'s runs file keeps across runs (under the trust rule; a refused file is
    said): ``plain``, its last unaccelerated run (``{"seconds": float, "items": int | None,
    ...}``), and ``sequential``, the spans of its last run made one request at a time; each
    None when not kept, or not well formed (a forged or damaged figure is no baseline)."""
    kept: dict[str, Any] = {"plain": None, "sequential": None}
    try:
        raw = read_trusted(_path(state_dir, target), limit=_MAX_BYTES)
        record = json.loads(raw.decode("utf-8")) if raw is not None else None
    except Refused as exc:
        log_refused(exc)
        return kept
    except (OSError, ValueError, RecursionError):
        return kept
    if not isinstance(record, dict):
        return kept
    plain = record.get("plain")
    if isinstance(plain, dict):
        seconds, items = plain.get("seconds"), plain.get("items")
        if isinstance(seconds, int | float) and seconds > 0 and (items is None or type(items) is int and items >= 0):
            kept["plain"] = plain
    sequential = record.get("sequential")
    if isinstance(sequential, dict) and isinstance(sequential.get("spans"), list):
        kept["sequential"] = sequential
    return kept


def load_plain(state_dir: str, target: str) -> dict[str, Any] | None:
    """The last unaccelerated run of ``target`` its runs file keeps, or None (:func:`load_kept`)."""
    plain: dict[str, Any] | None = load_kept(state_dir, target)["plain"]
    return plain


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
