"""The control file that ``sched-accel off|on [TARGET]`` writes and running processes read.

It is JSON: ``{"version": 1, "off": ["*"]}`` turns every target off, ``"off": [NAME, ...]``
turns those off. A running process looks at it on every call of a patched loop (one
``lstat``; it is re-read, and its folders re-checked, only when that changed), so switching
takes effect without restart.

It changes what a running app does, so it is read under the trust rule (:mod:`._trust`):
a symlink (dangling or not), a file of another user or one others can write, or a file in
a folder others could change is refused, loudly, and every target is treated as off
(running unaccelerated is always safe). A missing file in such a folder is refused too:
nobody but its owner can delete ``sched-accel off``.
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass

from .._exceptions import ControlFileError
from .._log import event
from ._files import write_private
from ._trust import Refused, file_problem, read_trusted

__all__ = ["ALL", "CONTROL_ENV", "ControlFile", "ControlState", "default_control_file"]

ALL = "*"
CONTROL_ENV = "SCHED_ACCEL_CONTROL"
_MAX_BYTES = 1024 * 1024


def default_control_file() -> str:
    """``$SCHED_ACCEL_CONTROL``, else ``$XDG_STATE_HOME/sched_accel/control.json``; the
    folder holding it is the state folder (learned calls, last runs)."""
    named = os.environ.get(CONTROL_ENV)
    if named:
        return os.path.abspath(named)
    state = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return os.path.join(state, "sched_accel", "control.json")


@dataclass(frozen=True, slots=True)
class ControlState:
    """What the control file says: targets switched off, ``*`` for all."""

    off: frozenset[str] = frozenset()
    problem: str | None = None

    def is_off(self, name: str) -> bool:
        """Whether ``name`` is switched off (a refused file switches everything off)."""
        return self.problem is not None or ALL in self.off or name in self.off


_EMPTY = ControlState()


class ControlFile:
    """Reads (cached by lstat) and writes one control file."""

    #: Not looked at yet (a missing file's stamp is ``()``).
    _UNSEEN: tuple[int, ...] = (-1,)

    def __init__(self, path: str) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._stamp: tuple[int, ...] | None = self._UNSEEN
        self._state = _EMPTY
        self._said: tuple[tuple[int, ...] | None, str] | None = None  # the refusal last logged

    def state(self) -> ControlState:
        """The current state; never raises."""
        try:
            st = os.lstat(self.path)
            stamp: tuple[int, ...] = (st.st_dev, st.st_ino, st.st_mtime_ns, st.st_ctime_ns, st.st_size, st.st_mode, st.st_uid)
        except FileNotFoundError:
            stamp = ()
        except (OSError, ValueError) as exc:  # ValueError: a NUL in the path
            return self._refuse(None, f"cannot be checked ({getattr(exc, 'strerror', None) or exc})", "fix its path")
        if stamp == self._stamp and self._state.problem is None:
            return self._state
        with self._lock:  # a refusal is looked at again on every call, till it is fixed
            if stamp == self._stamp and self._state.problem is None:
                return self._state
            try:
                raw = read_trusted(self.path, limit=_MAX_BYTES)
            except Refused as exc:
                return self._refuse(stamp, exc.why, exc.todo)
            try:
                state = _EMPTY if raw is None else parse(raw.decode("utf-8"))
            except (ValueError, RecursionError) as exc:
                return self._refuse(stamp, f"cannot be read: {exc}", "fix or delete it")
            self._stamp, self._state = stamp, state
            return state

    def _refuse(self, stamp: tuple[int, ...] | None, why: str, todo: str) -> ControlState:
        problem = f"{why}; {todo}"
        state = ControlState(problem=problem)
        if self._said != (stamp, problem):
            self._said = (stamp, problem)
            event(
                "ERROR",
                "control_file_refused",
                f"the control file {why}, so every target runs unaccelerated; {todo}, then `sched-accel on`",
                path=self.path,
            )
        self._stamp, self._state = stamp, state
        return state

    def write(self, off: frozenset[str]) -> None:
        """Atomically replace the file (owner-only), creating its folder owner-only; a file or
        folder that fails the trust rule is not written over (:class:`ControlFileError`)."""
        try:
            problem = file_problem(os.lstat(self.path))
        except FileNotFoundError:
            problem = None
        if problem is not None:
            raise ControlFileError(f"{self.path}: {problem[0]}; delete it and try again")
        try:
            write_private(self.path, json.dumps({"version": 1, "off": sorted(off)}, indent=2) + "\n")
        except Refused as exc:
            raise ControlFileError(f"{self.path}: {exc.problem}") from None


def parse(text: str) -> ControlState:
    """Parse the JSON body; ValueError when it is not ours."""
    data = json.loads(text)
    if not isinstance(data, dict) or data.get("version") != 1:
        raise ValueError('expected {"version": 1, "off": [...]}')
    off = data.get("off", [])
    if not isinstance(off, list) or not all(isinstance(name, str) for name in off):
        raise ValueError('"off" must be a list of target names')
    return ControlState(off=frozenset(off))
