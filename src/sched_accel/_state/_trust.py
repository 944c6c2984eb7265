"""The one trust rule for our state on disk: what a running app reads (the control file,
learned calls and their secret) and what ``sched-accel status`` shows (the last runs).

A file is read only when:

- it is opened with ``O_NOFOLLOW``: a symbolic link, dangling or not, is refused;
- it is a regular file, owned by this process's effective user and not writable by group
  or others (checked with ``fstat`` on the opened descriptor: what is checked is what is read);
- its folder is owned by that user and not writable by group or others;
- every folder above, up to and including ``$HOME`` when the file is under it (folders
  above home, ``/home`` and ``/``, are not checked), else up to ``/``, is owned by that user
  or by root, and not writable by group or others unless it has the sticky bit (``/tmp``:
  others can neither rename nor delete what is ours in it). The path as written and its
  resolved form are both checked, so a symlinked folder is judged where the link lies and
  where it leads. Root-owned folders are accepted: root can replace anything anyway.

So nobody but the user (and root) can replace, rename or delete a trusted file, and a
missing file is judged by its folders (the nearest existing ones): ``sched-accel off`` stays
in force unless its owner deletes it. What fails is :class:`Refused`, with why and what to
do; the caller takes the safe direction (unaccelerated) and says so in one line.
"""

from __future__ import annotations

import errno
import os
import stat

from .._log import event

__all__ = ["MAX_BYTES", "Refused", "check_folders", "file_problem", "log_refused", "read_trusted", "unsafe"]

#: A state file larger than this is refused rather than read (learned calls stay far below).
MAX_BYTES = 64 * 1024 * 1024

_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
_WRITABLE = stat.S_IWGRP | stat.S_IWOTH
_SYMLINK = ("is a symbolic link, which is never followed", "replace it with the file itself, or delete it")
_YOURS = "keep the state in a folder of your own (SCHED_ACCEL_CONTROL, or control_file in the config)"


class Refused(OSError):
    """A file of our state that fails the trust rule: the path, why, and what to do."""

    def __init__(self, path: str, why: str, todo: str) -> None:
        super().__init__(f"{path}: {why}; {todo}")
        self.path = path
        self.why = why
        self.todo = todo

    @property
    def problem(self) -> str:
        """``why; what to do``, without the path."""
        return f"{self.why}; {self.todo}"


def log_refused(refused: Refused) -> None:
    """The one line a refusal gets (the control file has its own, ``control_file_refused``)."""
    event("WARNING", "state_refused", str(refused))


def file_problem(st: os.stat_result) -> tuple[str, str] | None:
    """(why, what to do) when a file with this (l)stat may not be trusted, else None."""
    if stat.S_ISLNK(st.st_mode):
        return _SYMLINK
    if not stat.S_ISREG(st.st_mode):
        return "is not a regular file", "delete it"
    euid = os.geteuid()
    if st.st_uid != euid:
        return f"is owned by uid {st.st_uid}, not by this process's user (uid {euid})", "delete it"
    if st.st_mode & _WRITABLE:
        return f"is writable by other users (mode {stat.S_IMODE(st.st_mode):o})", "chmod 600 it"
    return None


def unsafe(st: os.stat_result) -> str | None:
    """Why a file with this stat may not be trusted (``why; what to do``), or None."""
    found = file_problem(st)
    return None if found is None else "; ".join(found)


def _folder_problem(folder: str, st: os.stat_result, own: bool) -> tuple[str, str] | None:
    """(why, what to do) when this folder could let someone else swap our file, else None."""
    if not stat.S_ISDIR(st.st_mode):
        return f"cannot be checked: {folder} is not a folder", "move that file away, or choose another state folder"
    euid = os.geteuid()
    if st.st_uid != euid and (own or st.st_uid != 0):
        whose = f"uid {euid}" if own else f"uid {euid} or root"
        return f"is under {folder}, a folder owned by uid {st.st_uid}, not by {whose}", _YOURS
    if st.st_mode & _WRITABLE and (own or not st.st_mode & stat.S_ISVTX):
        return f"is under {folder}, a folder writable by other users (mode {stat.S_IMODE(st.st_mode):o})", f"chmod go-w {folder}"
    return None


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


def check_folders(path: str) -> None:
    """Raise :class:`Refused` unless no one but this user (or root) can change what ``path``
    names: its folder and the folders above it, as the module docstring says."""
    folder = os.path.dirname(os.path.abspath(path))
    real = os.path.realpath(folder)
    home = os.path.expanduser("~")
    homes = {os.path.abspath(home), os.path.realpath(home)} if os.path.isabs(home) else set()
    seen: set[str] = set()
    for candidate in _chain(folder, homes) + _chain(real, homes):
        if candidate in seen:
            continue
        seen.add(candidate)
        try:
            st = os.stat(candidate)
        except FileNotFoundError:
            continue  # not made yet: judged by the folder that will hold it
        except OSError as exc:
            raise Refused(path, f"is under {candidate}, which cannot be checked ({exc.strerror or exc})",
                          "fix that folder's permissions") from None
        problem = _folder_problem(candidate, st, own=candidate in (folder, real))
        if problem is not None:
            raise Refused(path, *problem)


def read_trusted(path: str, *, limit: int = MAX_BYTES) -> bytes | None:
    """The bytes of ``path``; None when it does not exist (in trusted folders); :class:`Refused`
    when it or a folder above it fails the trust rule, or it is larger than ``limit``."""
    check_folders(path)
    try:
        fd = os.open(path, _READ_FLAGS)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.EMLINK) or os.path.islink(path):
            raise Refused(path, *_SYMLINK) from None
        raise Refused(path, f"cannot be opened ({exc.strerror or exc})", "fix its permissions, or delete it") from None
    try:
        problem = file_problem(os.fstat(fd))
        if problem is not None:
            raise Refused(path, *problem)
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
