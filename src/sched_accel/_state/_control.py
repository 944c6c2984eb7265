"""What switches a target off in a running app: the control files that ``sched-accel off|on``
writes, and ``$SCHED_ACCEL_DISABLED_TARGETS``.

A control file is JSON: ``{"version": 1, "off": ["*"]}`` turns every target off, ``"off":
[NAME, ...]`` turns those off. An app reads two (:class:`Controls`): its own, in its folder of
the state folder (``sched-accel off [TARGET]`` run with its config; :mod:`._apps`), and the
user-wide one, ``$SCHED_ACCEL_CONTROL`` (default ``$XDG_STATE_HOME/sched_accel/control.json``:
``sched-accel off --all-apps``, and what versions before per-app state wrote, still in force).
A running process looks at both on every call of a patched loop (one ``lstat`` each; a file is
re-read, and its folders re-checked, only when that changed), so switching takes effect
without restart. ``$SCHED_ACCEL_DISABLED_TARGETS=a.b:job,c.d:other`` (``*`` for all) switches
targets off by environment, for containers whose home is read-only; it is read once, at start.

A control file changes what a running app does, so it is read under the trust rule
(:mod:`._trust`): a symlink (dangling or not), a file of another user or one others can
write, or a file in a folder others could change is refused, loudly, and every target is
treated as off (running unaccelerated is always safe). A missing file in such a folder is
refused too: nobody but its owner can delete ``sched-accel off``.
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass, field

from .._events import CONTROL_FILE_REFUSED, SWITCHED_OFF
from .._exceptions import ControlFileError
from .._log import event
from ._files import write_private
from ._trust import Refused, file_problem, read_trusted

__all__ = [
    "ALL",
    "CONTROL_ENV",
    "DISABLED_ENV",
    "ControlFile",
    "ControlState",
    "Controls",
    "default_control_file",
    "disabled_targets",
]

ALL = "*"
CONTROL_ENV = "SCHED_ACCEL_CONTROL"
DISABLED_ENV = "SCHED_ACCEL_DISABLED_TARGETS"
_MAX_BYTES = 1024 * 1024


def default_control_file() -> str:
    """The user-wide control file: ``$SCHED_ACCEL_CONTROL``, else
    ``$XDG_STATE_HOME/sched_accel/control.json`` (``~/.local/state`` when unset); the folder
    holding it is the user's state folder, each app's state in ``apps/`` under it."""
    named = os.environ.get(CONTROL_ENV)
    if named:
        return os.path.abspath(named)
    state = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return os.path.join(state, "sched_accel", "control.json")


def disabled_targets(raw: str | None = None) -> frozenset[str]:
    """The targets ``$SCHED_ACCEL_DISABLED_TARGETS`` (or ``raw``) names: comma-separated loop
    names as declared, spaces around them ignored, ``*`` for every target."""
    raw = os.environ.get(DISABLED_ENV, "") if raw is None else raw
    return frozenset(name.strip() for name in raw.split(",") if name.strip())


@dataclass(frozen=True, slots=True)
class ControlState:
    """What switches targets off: their names, ``*`` for all, or a refused control file
    (``problem``). ``by`` says who switched what (the environment variable's name, or a control
    file's path), first first; ``said``, when given, makes :meth:`is_off` log one
    ``switched_off`` line per target (a running app's switches; never ``status``'s)."""

    off: frozenset[str] = frozenset()
    problem: str | None = None
    by: tuple[tuple[str, frozenset[str]], ...] = ()
    said: set[str] | None = field(default=None, compare=False)

    def is_off(self, name: str) -> bool:
        """Whether ``name`` is switched off (a refused file switches everything off)."""
        if self.problem is None and ALL not in self.off and name not in self.off:
            return False
        if self.said is not None and name not in self.said and self.problem is None:
            self.said.add(name)  # a refusal has its own line: control_file_refused
            event(
                SWITCHED_OFF,
                "this loop runs unaccelerated until it is switched back on (`sched-accel status` says how)",
                target=name,
                by=self.switched_by(name),
            )
        return True

    def switched_by(self, name: str) -> str | None:
        """Who switched ``name`` off: the variable's name or a control file's path; None when on."""
        if self.problem is not None:
            return "a refused control file"
        return next((source for source, off in self.by if ALL in off or name in off), None)


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
            stamp: tuple[int, ...] = (
                st.st_dev,
                st.st_ino,
                st.st_mtime_ns,
                st.st_ctime_ns,
                st.st_size,
                st.st_mode,
                st.st_uid,
            )
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
                CONTROL_FILE_REFUSED,
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


class Controls:
    """What an app reads to know what is switched off: ``$SCHED_ACCEL_DISABLED_TARGETS``
    (``disabled``, read once), its own control file, and the user-wide one. :meth:`state` is the
    same object while neither file changed (a change re-arms tripped breakers)."""

    def __init__(
        self,
        app: ControlFile | None,
        user: ControlFile,
        disabled: frozenset[str] = frozenset(),
        *,
        announce: bool = False,
    ) -> None:
        self.app = app
        self.user = user
        self.disabled = disabled
        self.announce = announce
        self._last: tuple[ControlState, ControlState, ControlState] | None = None

    @classmethod
    def open(cls, app: str | None, user: str, *, announce: bool = False) -> Controls:
        """The controls of the app whose control file is ``app`` (None: the user-wide one only),
        with ``$SCHED_ACCEL_DISABLED_TARGETS`` as it is now."""
        return cls(ControlFile(app) if app else None, ControlFile(user), disabled_targets(), announce=announce)

    @property
    def path(self) -> str:
        """The control file ``sched-accel off`` writes for this app (the user-wide one without an app)."""
        return (self.app or self.user).path

    def state(self) -> ControlState:
        """Every switch at once; never raises."""
        app = self.app.state() if self.app is not None else _EMPTY
        user = self.user.state()
        last = self._last
        if last is not None and last[0] is app and last[1] is user:
            return last[2]
        by = [(DISABLED_ENV, self.disabled)] if self.disabled else []
        if self.app is not None:
            by.append((self.app.path, app.off))
        by.append((self.user.path, user.off))
        problems = [
            f"{file.path} {state.problem}"
            for file, state in ((self.app, app), (self.user, user))
            if file is not None and state.problem is not None
        ]
        combined = ControlState(
            off=self.disabled | app.off | user.off,
            problem="; ".join(problems) or None,
            by=tuple(by),
            said=set() if self.announce else None,
        )
        self._last = (app, user, combined)
        return combined


def parse(text: str) -> ControlState:
    """Parse the JSON body; ValueError when it is not ours."""
    data = json.loads(text)
    if not isinstance(data, dict) or data.get("version") != 1:
        raise ValueError('expected {"version": 1, "off": [...]}')
    off = data.get("off", [])
    if not isinstance(off, list) or not all(isinstance(name, str) for name in off):
        raise ValueError('"off" must be a list of target names')
    return ControlState(off=frozenset(off))
