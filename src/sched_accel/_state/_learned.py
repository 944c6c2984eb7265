"""Learned items: the per-item calls of a loop's last run, kept on disk for the next run.

For loops that derive their items internally (filtering, de-duplicating), no declaration
can name them: ``items = "learned"`` records the arguments of each per-item call the loop
makes, and the next run (next cron start included) prefetches those calls. A call not
predicted runs directly, as always; predictions the loop does not ask for are wasted. They
are kept in the app's own folder (``<app folder>/learned/``, :mod:`._apps`): a staging app's
calls are never replayed by production, even for the same user and target.

The file only ever holds JSON argument values (strings, numbers, booleans, null, lists,
objects) for the declared per-item function: never a function, a module or code. It is
JSON, ``{"version": 2, "target": NAME, "calls": [{"args": [...], "digest": HEX}, ...]}``,
each entry signed for its target with the user's secret (:mod:`._secret`), so it replays
only what one of our runs of that loop recorded: an entry whose digest fails is dropped
(one ``learned_dropped`` line), a file with no valid entry, of another format or target, or
failing the trust rule (:mod:`._trust`) is not used (one ``state_refused`` line).
"""

from __future__ import annotations

import json
import os
import re
from typing import Any

from .._events import LEARNED_DROPPED, LEARNED_NOT_SAVED
from .._log import event
from ._files import write_private
from ._secret import digest, ensure_secret, load_secret, secret_path, valid
from ._trust import Refused, log_refused, read_trusted

__all__ = ["FORMAT", "MAX_RECORDED", "LearnedCalls", "Recorder"]

#: At most this many calls are remembered per target (memory and file size stay bounded).
MAX_RECORDED = 100_000
#: The version of the file's format (1 had no digests: such a file is not used).
FORMAT = 2

_JSON_SCALARS = (str, int, float, bool, type(None))
_UNUSED = "it is not used; this run's calls replace it"


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
    """The recorded per-item call arguments of one target, on disk, signed.

    When they cannot be saved (a read-only home, a full disk, a folder we may not create),
    that is said once, and this process keeps them in memory: its next runs prefetch them."""

    def __init__(self, folder: str, target: str) -> None:
        safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", target)
        self.path = os.path.join(folder, f"{safe}.json")
        self.secret = secret_path(folder)
        self.target = target
        self.kept: list[list[Any]] | None = None  # the last run's, when they could not be saved

    def load(self) -> list[list[Any]]:
        """The argument lists recorded last time for this target, each with a valid digest, in
        the order the loop made them: a function-level call's positional arguments, an
        HTTP-level request's ``[method, url]``. Plain JSON values only; their shapes are the
        caller's to check. [] when none, refused, or not ours; never raises."""
        if self.kept is not None:
            return list(self.kept)
        try:
            raw = read_trusted(self.path)
            if raw is None:
                return []
            secret = load_secret(self.secret)
            entries = self._entries(raw)
        except Refused as exc:
            log_refused(exc)
            return []
        if not entries:
            return []
        calls = [args for args, claimed in entries if secret is not None and valid(secret, self.target, args, claimed)]
        if not calls:
            why = "has no entry with a valid digest" + ("" if secret is not None else f" (there is no {self.secret})")
            log_refused(Refused(self.path, why, _UNUSED))
        elif len(calls) < len(entries):
            event(
                LEARNED_DROPPED,
                f"{self.path}: {len(entries) - len(calls)} of {len(entries)} learned calls failed their digest "
                "and were dropped; the others are prefetched",
                target=self.target,
            )
        return calls

    def _entries(self, raw: bytes) -> list[tuple[list[Any], str]]:
        """(arguments, claimed digest) of each well-formed entry; Refused for a file not ours."""
        try:
            data = json.loads(raw.decode("utf-8"))
            if not isinstance(data, dict) or not isinstance(data.get("calls"), list):
                raise ValueError(f'expected {{"version": {FORMAT}, "target": ..., "calls": [...]}}')
            if data.get("version") != FORMAT:
                raise ValueError(f"format {data.get('version')!r}, not {FORMAT} (entries with digests)")
            if data.get("target") != self.target:
                raise ValueError(f"recorded for target {data.get('target')!r}, not {self.target!r}")
            entries: list[tuple[list[Any], str]] = []
            for entry in data["calls"][:MAX_RECORDED]:
                if not isinstance(entry, dict) or not isinstance(entry.get("args"), list) or not _plain(entry["args"]):
                    raise ValueError('each call must be {"args": [JSON values], "digest": ...}')
                claimed = entry.get("digest")
                entries.append((entry["args"], claimed if isinstance(claimed, str) else ""))
        except (ValueError, RecursionError) as exc:
            raise Refused(self.path, f"is not a learned-calls file of ours ({exc})", _UNUSED) from None
        return entries

    def save(self, calls: list[list[Any]]) -> None:
        """Replace the file atomically (owner-only), each call signed; never raises."""
        try:
            secret = ensure_secret(self.secret)
            signed = [{"args": args, "digest": digest(secret, self.target, args)} for args in calls[:MAX_RECORDED]]
            write_private(self.path, json.dumps({"version": FORMAT, "target": self.target, "calls": signed}))
            self.kept = None
        except Refused as exc:
            log_refused(exc)
        except (OSError, ValueError, TypeError, RecursionError) as exc:
            said, self.kept = self.kept is not None, [list(args) for args in calls[:MAX_RECORDED]]
            if not said:
                event(
                    LEARNED_NOT_SAVED,
                    f"the calls of this run could not be saved ({exc}); this process keeps them in memory for its "
                    "next runs (said once), a new process starts without them: make the state folder writable "
                    "(`sched-accel doctor` checks it) or point SCHED_ACCEL_CONTROL at a writable folder",
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
        try:
            if len(self.calls) < MAX_RECORDED and _plain(args):
                self.calls.append(_normal(args))
                return
        except RecursionError:  # nested too deep (or a list holding itself): not a JSON value
            pass
        self.skipped += 1
