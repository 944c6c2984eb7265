"""Files of ours that change what a running app does (the control file, learned calls).

They are written atomically, owner-only in an owner-only folder, and refused when another
user could have written them: a tampered file must never steer the app.
"""

from __future__ import annotations

import os
import stat
import tempfile

__all__ = ["unsafe", "write_private"]


def unsafe(st: os.stat_result) -> str | None:
    """Why a file with this stat may not be trusted, or None."""
    if not stat.S_ISREG(st.st_mode):
        return "is not a regular file"
    if st.st_uid != os.getuid():
        return f"is owned by uid {st.st_uid}, not by this process's user (uid {os.getuid()})"
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return f"is writable by other users (mode {stat.S_IMODE(st.st_mode):o}); chmod 600 it"
    return None


def write_private(path: str, text: str) -> None:
    """Replace ``path`` atomically with ``text``, mode 0600, creating its folder 0700."""
    folder = os.path.dirname(path) or "."
    os.makedirs(folder, mode=0o700, exist_ok=True)
    fd, temp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}-", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            file.write(text)
        os.chmod(temp, 0o600)
        os.replace(temp, path)
    except BaseException:
        if os.path.exists(temp):
            os.unlink(temp)
        raise
