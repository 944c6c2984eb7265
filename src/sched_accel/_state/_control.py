"""The control file that ``sched-accel off|on [TARGET]`` writes and running processes read.

It is JSON: ``{"version": 1, "off": ["*"]}`` turns every target off, ``"off": [NAME, ...]``
turns those off. A running process looks at it on every call of a patched loop (one
``stat``; it is re-read only when it changed), so switching takes effect without restart.

It changes what a running app does, so it must be owned by the user running the app and
writable by nobody else: otherwise it is refused, loudly, and every target is treated as
off (running unaccelerated is always safe).
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass

from .._exceptions import ControlFileError
from .._log import event
from ._files import unsafe, write_private

__all__ = ["ALL", "CONTROL_ENV", "ControlFile", "ControlState", "default_control_file"]

ALL = "*"
CONTROL_ENV = "SCHED_ACCEL_CONTROL"


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
    """Reads (cached by stat) and writes one control file."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._stamp: tuple[int, ...] | None = None
        self._state = _EMPTY

    def state(self) -> ControlState:
        """The current state; never raises."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            self._stamp, self._state = None, _EMPTY
            return _EMPTY
        except OSError as exc:
            return self._refuse(None, f"cannot be checked ({exc.strerror or exc})")
        stamp = (st.st_mtime_ns, st.st_ctime_ns, st.st_size, st.st_ino, st.st_mode, st.st_uid)
        if stamp == self._stamp:
            return self._state
        with self._lock:
            if stamp == self._stamp:
                return self._state
            problem = unsafe(st)
            if problem is not None:
                return self._refuse(stamp, problem)
            try:
                with open(self.path, encoding="utf-8") as file:
                    state = parse(file.read())
            except (OSError, ValueError) as exc:
                return self._refuse(stamp, f"cannot be read: {exc}")
            self._stamp, self._state = stamp, state
            return state

    def _refuse(self, stamp: tuple[int, ...] | None, problem: str) -> ControlState:
        state = ControlState(problem=problem)
        if stamp != self._stamp or problem != self._state.problem:
            event(
                "ERROR",
                "control_file_refused",
                f"the control file {problem}, so every target runs unaccelerated; "
                "fix or delete it, then `sched-accel on`",
                path=self.path,
            )
        self._stamp, self._state = stamp, state
        return state

    def write(self, off: frozenset[str]) -> None:
        """Atomically replace the file (owner-only), creating its folder owner-only."""
        if os.path.exists(self.path):
            problem = unsafe(os.stat(self.path))
            if problem is not None:
                raise ControlFileError(f"{self.path}: {problem}; delete it and try again")
        write_private(self.path, json.dumps({"version": 1, "off": sorted(off)}, indent=2) + "\n")


def parse(text: str) -> ControlState:
    """Parse the JSON body; ValueError when it is not ours."""
    data = json.loads(text)
    if not isinstance(data, dict) or data.get("version") != 1:
        raise ValueError('expected {"version": 1, "off": [...]}')
    off = data.get("off", [])
    if not isinstance(off, list) or not all(isinstance(name, str) for name in off):
        raise ValueError('"off" must be a list of target names')
    return ControlState(off=frozenset(off))
