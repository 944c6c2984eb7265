"""The one writer of our state: atomic, owner-only, into folders that pass the trust rule.

Folders we create are 0700 whatever the umask: each is made with ``os.mkdir(0o700)`` and
then ``fchmod``-ed to 0700 (the umask is process-wide and other threads run, so it is never
changed). We never create the user's home folder, nor anything above the state folder a
variable names (:func:`floor`): a ``HOME`` that does not exist stays so (as root we once
made it, and ``.local/state`` in it, which another user's app then found owned by root). A file is written to an ``O_EXCL`` temporary file (mode 0600) beside it, then
moved into place with ``os.replace``, so a reader sees the old content or the new, whole.
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile

from ._trust import check_folders

__all__ = ["create_private", "floor", "make_folders", "write_private"]

_FOLDER_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def floor() -> str:
    """The folder that must exist before we create any below it: the parent of the state
    folder ``$SCHED_ACCEL_CONTROL`` names, else the parent of ``$XDG_STATE_HOME`` (which the
    XDG rules let us create), else the home folder (``~/.local/state`` may be made in it)."""
    named = os.environ.get("SCHED_ACCEL_CONTROL")
    if named:
        return os.path.dirname(os.path.dirname(os.path.abspath(named)))
    xdg = os.environ.get("XDG_STATE_HOME")
    if xdg:
        return os.path.dirname(os.path.abspath(xdg))
    return os.path.abspath(os.path.expanduser("~"))


def make_folders(folder: str) -> None:
    """Create ``folder`` and its missing parents, each mode 0700 whatever the umask; never
    :func:`floor` or anything above it (FileNotFoundError that says so)."""
    missing: list[str] = []
    current = os.path.abspath(folder)
    while not os.path.lexists(current):
        missing.append(current)
        parent = os.path.dirname(current)
        if parent == current:
            break
        current = parent
    bottom = floor()
    if any(bottom == one or bottom.startswith(one.rstrip(os.sep) + os.sep) for one in missing):
        raise FileNotFoundError(
            errno.ENOENT,
            f"{bottom} does not exist, and sched_accel never creates it or anything above its state folder",
            folder,
        )
    for one in reversed(missing):
        try:
            os.mkdir(one, 0o700)
        except FileExistsError:
            continue  # made meanwhile (by another of our processes?): the trust rule judges it
        fd = os.open(one, _FOLDER_FLAGS)
        try:
            os.fchmod(fd, 0o700)
        finally:
            os.close(fd)


def _temp_beside(path: str, data: bytes) -> str:
    """A new 0600 file holding ``data`` in ``path``'s folder (created, then checked)."""
    folder = os.path.dirname(os.path.abspath(path))
    make_folders(folder)
    check_folders(path)
    fd, temp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}-", dir=folder)
    try:
        with os.fdopen(fd, "wb") as file:
            os.fchmod(file.fileno(), 0o600)
            file.write(data)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
    return temp


def write_private(path: str, text: str | bytes) -> None:
    """Replace ``path`` atomically with ``text``, mode 0600; its folders are created 0700 and
    must pass the trust rule (:class:`~._trust.Refused` otherwise, an ``OSError``)."""
    temp = _temp_beside(path, text.encode("utf-8") if isinstance(text, str) else text)
    try:
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise


def create_private(path: str, data: bytes) -> bool:
    """Create ``path`` holding ``data`` (0600) unless it exists; True when this call made it.

    The file appears whole (a temp file hard-linked into place), so two processes creating it
    at once agree on one content."""
    temp = _temp_beside(path, data)
    try:
        os.link(temp, path)
    except FileExistsError:
        return False
    finally:
        with contextlib.suppress(OSError):
            os.unlink(temp)
    return True
