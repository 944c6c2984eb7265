"""The one trust rule for what we read from disk: our state (the control file, learned calls
and their secret, the last runs) and the config, which decides more.

A file is read only when:

- it is opened with ``O_NOFOLLOW`` and ``O_NONBLOCK``: a symbolic link, dangling or not, is
  refused, and a FIFO is never waited on;
- it is a regular file, owned by this process's effective user and not writable by group
  or others (checked with ``fstat`` on the opened descriptor: what is checked is what is read);
- its folder is owned by that user and not writable by group or others;
- every folder above, up to and including ``$HOME`` when the file is under it (folders
  above home, ``/home`` and ``/``, are not checked), else up to ``/``, is owned by that user
  or by root, and not writable by group or others unless it has the sticky bit (``/tmp``:
  others can neither rename nor delete what is ours in it). The path as written and its
  resolved form are both checked, so a symlinked folder is accepted when both the folders
  where the link lies (whoever can write there can change the link) and the folders it
  leads to pass. Root-owned folders are accepted: root can replace anything anyway.

The config's rule (:data:`CONFIG`) is the same rule with one allowance: root counts as the
user, for the file and its folder (an app run by a service user reads a config root keeps
in ``/etc`` or ``/opt``). Its folder may even be a root-owned sticky one that everybody can
write (``/tmp``), and then only the user's own file is trusted there: anybody could have put
one of theirs, or of root's name, nowhere else. A world-writable folder that root does not
own is never the config's.

So nobody but the user (and root) can replace, rename or delete a trusted file, and a
missing file is judged by its folders (the nearest existing ones): ``sched-accel off`` stays
in force unless its owner deletes it. What fails is :class:`Refused`, with why and what to
do; the caller takes the safe direction (unaccelerated, unpatched) and says so in one line.
"""

from __future__ import annotations

import errno
import os
import stat
from dataclasses import dataclass

from .._events import STATE_REFUSED
from .._log import event

__all__ = [
    "CONFIG",
    "MAX_BYTES",
    "STATE",
    "Refused",
    "Rule",
    "check_file",
    "check_folders",
    "file_problem",
    "log_refused",
    "open_trusted",
    "read_trusted",
    "unsafe",
]

#: A state file larger than this is refused rather than read (learned calls stay far below).
MAX_BYTES = 64 * 1024 * 1024

_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
_WRITABLE = stat.S_IWGRP | stat.S_IWOTH
_SYMLINK = ("is a symbolic link, which is never followed", "replace it with the file itself, or delete it")
_YOURS = "keep the state in a folder of your own (set SCHED_ACCEL_CONTROL to a control file in it)"


@dataclass(frozen=True, slots=True)
class Rule:
    """Whose a trusted file and its folder may be, and what to do when they are not."""

    root: bool  # root's file, and root's folder for it, are trusted as the user's own
    not_yours: str  # what to do with a file of another user
    writable: str  # what to do with a file others can write
    elsewhere: str  # what to do when a folder on the way is another user's


#: The state's rule: only the user's own files, in the user's own folder.
STATE = Rule(root=False, not_yours="delete it", writable="chmod 600 it", elsewhere=_YOURS)
#: The config's rule (and the modules ``sched-accel check`` imports): the user's or root's.
CONFIG = Rule(
    root=True,
    not_yours="chown it to yourself (or root), or point $SCHED_ACCEL_CONFIG at a config of your own",
    writable="chmod go-w it",
    elsewhere="keep it in a folder only you (or root) can change, or point $SCHED_ACCEL_CONFIG at one",
)


class Refused(OSError):
    """A file that fails the trust rule: the path, why, what to do, and the file's own
    ``fstat`` when the file itself (not a folder above it) is what failed."""

    def __init__(self, path: str, why: str, todo: str, st: os.stat_result | None = None) -> None:
        super().__init__(f"{path}: {why}; {todo}")
        self.path = path
        self.why = why
        self.todo = todo
        self.st = st

    @property
    def problem(self) -> str:
        """``why; what to do``, without the path."""
        return f"{self.why}; {self.todo}"


def log_refused(refused: Refused) -> None:
    """The one line a refusal gets (the control file has its own, ``control_file_refused``)."""
    event(STATE_REFUSED, str(refused))


def file_problem(st: os.stat_result, rule: Rule = STATE, *, shared: bool = False) -> tuple[str, str] | None:
    """(why, what to do) when a file with this (l)stat may not be trusted, else None;
    ``shared``: its folder is a root-owned sticky one anybody can write (only ours is trusted)."""
    if stat.S_ISLNK(st.st_mode):
        return _SYMLINK
    if not stat.S_ISREG(st.st_mode):
        return "is not a regular file", "delete it"
    euid = os.geteuid()
    rooted = rule.root and not shared
    if st.st_uid != euid and not (rooted and st.st_uid == 0):
        whose = f"this process's user (uid {euid})" + (" or root" if rooted else "")
        where = " in a folder anybody can write to (there only your own file is trusted)" if shared else ""
        return f"is owned by uid {st.st_uid}, not by {whose}{where}", rule.not_yours
    if st.st_mode & _WRITABLE:
        return f"is writable by other users (mode {stat.S_IMODE(st.st_mode):o})", rule.writable
    return None


def unsafe(st: os.stat_result) -> str | None:
    """Why a state file with this stat may not be trusted (``why; what to do``), or None."""
    found = file_problem(st)
    return None if found is None else "; ".join(found)


def _folder_problem(folder: str, st: os.stat_result, own: bool, rule: Rule) -> tuple[str, str] | None:
    """(why, what to do) when this folder could let someone else swap our file, else None."""
    if not stat.S_ISDIR(st.st_mode):
        return f"cannot be checked: {folder} is not a folder", "move that file away, or choose another folder"
    euid = os.geteuid()
    rooted = rule.root or not own
    if st.st_uid != euid and not (rooted and st.st_uid == 0):
        whose = f"uid {euid} or root" if rooted else f"uid {euid}"
        return f"is under {folder}, a folder owned by uid {st.st_uid}, not by {whose}", rule.elsewhere
    if st.st_mode & _WRITABLE and not (st.st_mode & stat.S_ISVTX and (not own or _shared(st, rule))):
        return (
            f"is under {folder}, a folder writable by other users (mode {stat.S_IMODE(st.st_mode):o})",
            f"chmod go-w {folder}",
        )
    return None


def _shared(st: os.stat_result, rule: Rule) -> bool:
    """Whether a file's own folder with this stat is a shared one that the rule allows
    (a root-owned sticky folder anybody can write, as ``/tmp``, for the config only)."""
    return rule.root and st.st_uid == 0 and bool(st.st_mode & stat.S_ISVTX) and bool(st.st_mode & _WRITABLE)


def _chain(folder: str, homes: set[str]) -> list[str]:
    """``folder`` and its parents, up to and including home (when under it), else ``/``."""
    chain = [folder]
    while folder not in homes:
        parent = os.path.dirname(folder)
        if parent == folder:
            break
        chain.append(parent)
        folder = parent
    return chain


def check_folders(path: str, rule: Rule = STATE) -> bool:
    """Raise :class:`Refused` unless no one but this user (or root) can change what ``path``
    names: its folder and the folders above it, as the module docstring says. True when its
    folder is a shared one the rule allows: then only the user's own file there is trusted."""
    folder = os.path.dirname(os.path.abspath(path))
    real = os.path.realpath(folder)
    home = os.path.expanduser("~")
    homes = {os.path.abspath(home), os.path.realpath(home)} if os.path.isabs(home) else set()
    seen: set[str] = set()
    shared = False
    for candidate in _chain(folder, homes) + _chain(real, homes):
        if candidate in seen:
            continue
        seen.add(candidate)
        try:
            st = os.stat(candidate)
        except FileNotFoundError:
            continue  # not made yet: judged by the folder that will hold it
        except OSError as exc:
            raise Refused(
                path,
                f"is under {candidate}, which cannot be checked ({exc.strerror or exc})",
                "fix that folder's permissions",
            ) from None
        own = candidate in (folder, real)
        problem = _folder_problem(candidate, st, own, rule)
        if problem is not None:
            raise Refused(path, *problem)
        shared = shared or (own and _shared(st, rule))
    return shared


def check_file(path: str, rule: Rule = STATE) -> None:
    """Raise :class:`Refused` unless the file at ``path`` (not opened: another tool reads it,
    as an import does a module) and its folders pass the rule."""
    shared = check_folders(path, rule)
    try:
        st = os.lstat(path)
    except OSError as exc:
        raise Refused(path, f"cannot be checked ({exc.strerror or exc})", "fix its permissions, or delete it") from None
    problem = file_problem(st, rule, shared=shared)
    if problem is not None:
        raise Refused(path, *problem, st=st)


def open_trusted(path: str, rule: Rule = STATE) -> int | None:
    """A descriptor open on ``path`` for reading (the caller closes it); None when it does not
    exist (in trusted folders); :class:`Refused` when it or a folder above fails the rule."""
    shared = check_folders(path, rule)
    try:
        fd = os.open(path, _READ_FLAGS)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.EMLINK) or os.path.islink(path):
            raise Refused(path, *_SYMLINK) from None
        raise Refused(path, f"cannot be opened ({exc.strerror or exc})", "fix its permissions, or delete it") from None
    try:
        st = os.fstat(fd)
        problem = file_problem(st, rule, shared=shared)
    except OSError as exc:
        os.close(fd)
        raise Refused(path, f"cannot be read ({exc.strerror or exc})", "fix or delete it") from None
    if problem is not None:
        os.close(fd)
        raise Refused(path, *problem, st=st)
    return fd


def read_trusted(path: str, *, limit: int = MAX_BYTES) -> bytes | None:
    """The bytes of the state file ``path``; None when it does not exist (in trusted folders);
    :class:`Refused` when it or a folder above fails the rule, or it is larger than ``limit``."""
    fd = open_trusted(path)
    if fd is None:
        return None
    try:
        chunks: list[bytes] = []
        size = 0
        while chunk := os.read(fd, min(1 << 20, limit + 1 - size)):
            chunks.append(chunk)
            size += len(chunk)
            if size > limit:
                raise Refused(path, f"is larger than {limit} bytes", "delete it")
        return b"".join(chunks)
    except Refused:
        raise
    except OSError as exc:
        raise Refused(path, f"cannot be read ({exc.strerror or exc})", "fix or delete it") from None
    finally:
        os.close(fd)
