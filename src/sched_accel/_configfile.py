"""Reading the config file into a TOML table, within bounds, and showing its values briefly.

Whatever the file holds, the outcome is a table or a :class:`ConfigError` saying what to
fix, never another exception:

- the file must pass the config's trust rule (``_state._trust``: a regular file, not a
  symbolic link, owned by the user or root and writable by nobody else, in folders that
  only they can change), refused in one line naming the file, its owner and mode and what
  to do; and it must be at most :data:`MAX_BYTES` (a config is a few dozen lines; a FIFO or
  a device would block or never end, and is opened without waiting);
- it must be UTF-8 TOML; tomllib recurses once per level of nested arrays and inline
  tables, so a text nested deeper than :data:`MAX_DEPTH` is refused before it is parsed
  (a cheap scan of its brackets outside strings and comments), a RecursionError from the
  parser is reported too, and so is a table nested deeper through dotted keys;
- a pyproject-style file's ``tool`` and ``tool.sched_accel`` must be tables.

Values quoted in messages go through :func:`shown`, so that a message stays one short line.
"""

from __future__ import annotations

import errno
import os
import re
import reprlib
import stat
from typing import Any

import _sched_accel_boot as boot

from ._exceptions import ConfigError
from ._state._trust import CONFIG, Refused, open_trusted

__all__ = ["MAX_BYTES", "MAX_DEPTH", "read_table", "shown", "shown_key", "shown_text"]

MAX_BYTES = boot.MAX_CONFIG_BYTES
MAX_DEPTH = 32

# A string or a comment (skipped whole), or one bracket: enough to measure nesting without
# parsing. A multi-line string ends at the first run of three quotes (up to two more belong
# to it); a basic string's backslash escapes the next character.
_TOKENS = re.compile(
    r'"""(?:\\.|[^\\])*?"{3,5}'
    r"|'''.*?'{3,5}"
    r'|"(?:\\.|[^"\\\n])*"'
    r"|'[^'\n]*'"
    r"|#[^\n]*"
    r"|[\[\]{}]",
    re.DOTALL,
)
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]{1,64}")
_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxstring, _REPR.maxother, _REPR.maxlist, _REPR.maxdict = 3, 100, 100, 10, 10


def shown(value: object) -> str:
    """``repr(value)``, cut short: a long string or a deep table fits in one line."""
    try:
        return _REPR.repr(value)
    except Exception:  # noqa: BLE001 - a value that cannot be shown is named by its type
        return f"<{type(value).__name__}>"


def shown_text(text: str) -> str:
    """``text`` itself when it is short and printable, else :func:`shown`."""
    return text if len(text) <= _REPR.maxstring and text.isprintable() else shown(text)


def shown_key(key: object) -> str:
    """A table key as written: bare when it can be, else quoted (and cut short)."""
    return key if isinstance(key, str) and _BARE_KEY.fullmatch(key) else shown(key)


def read_table(path: str) -> tuple[dict[str, Any], str, str]:
    """The config file's sched_accel table, its key prefix (``tool.sched_accel.`` in a
    pyproject-style file) and text, as ``(table, prefix, text)``; ConfigError otherwise."""
    text = _read_text(path)
    data = _parse(path, text)
    tool = data.get("tool")
    nested = isinstance(tool, dict) and "sched_accel" in tool
    if os.path.basename(path) != "pyproject.toml" and not nested:
        return data, "", text
    if not isinstance(tool, dict):
        what = f"tool = {shown(tool)} is not allowed: a table" if "tool" in data else "has no [tool.sched_accel] table"
        raise ConfigError(f"{path}: {what}; add one with [[tool.sched_accel.targets]]")
    table = tool.get("sched_accel")
    if table is None:
        raise ConfigError(f"{path}: has no [tool.sched_accel] table; add one with [[tool.sched_accel.targets]]")
    if not isinstance(table, dict):
        raise ConfigError(
            f"{path}: tool.sched_accel = {shown(table)} is not allowed: a table; "
            "write the settings under [tool.sched_accel] and the targets under [[tool.sched_accel.targets]]"
        )
    return table, "tool.sched_accel.", text


def _read_text(path: str) -> str:
    """The config's text, read under the config's trust rule (``_state._trust.CONFIG``)."""
    try:
        fd = open_trusted(path, CONFIG)
    except Refused as exc:
        raise ConfigError(_refused(path, exc)) from None
    except ValueError as exc:  # a NUL in the path
        raise ConfigError(f"{path!r}: cannot read the config: {exc}") from None
    if fd is None:
        raise ConfigError(f"{path}: cannot read the config: {os.strerror(errno.ENOENT)}")
    try:
        with os.fdopen(fd, "rb", closefd=False) as file:
            raw = file.read(MAX_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the config: {exc.strerror or exc}") from None
    finally:
        os.close(fd)
    if len(raw) > MAX_BYTES:
        raise ConfigError(
            f"{path}: is larger than {MAX_BYTES // 1024 // 1024} MiB, the most a config may be; a sched_accel config "
            "is a few dozen lines: check that this is the right file (or move the [tool.sched_accel] table into a "
            "sched_accel.toml of its own)"
        )
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{path}: not valid TOML: it is not UTF-8 text ({exc.reason} at byte {exc.start}); save it as UTF-8"
        ) from None


def _refused(path: str, exc: Refused) -> str:
    """The one line a config that fails the trust rule gets: the file, its owner and mode,
    why and what to do (a FIFO, a folder or a device: which, and to name the file itself)."""
    try:
        st = os.lstat(path)
        owner = f"owner {_user(st.st_uid)}, mode {stat.S_IMODE(st.st_mode):o}"
    except OSError:
        st, owner = None, "owner and mode unknown"
    if st is not None and not stat.S_ISREG(st.st_mode) and not stat.S_ISLNK(st.st_mode):
        kind = "folder" if stat.S_ISDIR(st.st_mode) else "FIFO" if stat.S_ISFIFO(st.st_mode) else "device or socket"
        return f"{path} ({owner}) is a {kind}, not a regular file; point ${boot.CONFIG_ENV} at the TOML file itself"
    return f"{path} ({owner}) is not trusted as a config: it {exc.why}; {exc.todo}"


def _user(uid: int) -> str:
    """``uid 1001 (alice)``, or ``uid 1001`` when it has no name here."""
    import pwd

    try:
        return f"uid {uid} ({pwd.getpwuid(uid).pw_name})"
    except (KeyError, OverflowError):
        return f"uid {uid}"


def _parse(path: str, text: str) -> dict[str, Any]:
    import tomllib

    _check_brackets(path, text)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}; fix the syntax") from None
    except RecursionError:
        raise ConfigError(f"{path}: nests arrays or tables too deeply to be read, {_LIMIT}") from None
    _check_tables(path, data)
    return data


_LIMIT = "deeper than any config needs: fix the brackets"


def _check_brackets(path: str, text: str) -> None:
    """Refuse a text whose arrays and inline tables nest deeper than MAX_DEPTH."""
    if text.count("[") + text.count("{") <= MAX_DEPTH:
        return  # too few brackets to nest that deep: nothing to scan
    depth = 0
    for match in _TOKENS.finditer(text):
        token = match.group()
        if token in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                line = text.count("\n", 0, match.start()) + 1
                raise ConfigError(
                    f"{path}: nests arrays or tables more than {MAX_DEPTH} levels deep (line {line}), {_LIMIT}"
                )
        elif token in "]}":
            depth = max(depth - 1, 0)


def _check_tables(path: str, data: dict[str, Any]) -> None:
    """Refuse tables and arrays nested deeper than MAX_DEPTH below the document (dotted keys
    and headers nest without brackets). Walked with a stack, not by recursion."""
    stack: list[tuple[object, int, str]] = [(data, 0, "")]
    while stack:
        value, depth, where = stack.pop()
        if depth > MAX_DEPTH and isinstance(value, dict | list):
            raise ConfigError(
                f"{path}: nests tables or arrays more than {MAX_DEPTH} levels deep (under {shown(where)}), deeper than "
                "any config needs: flatten it"
            )
        if isinstance(value, dict):
            stack.extend((v, depth + 1, f"{where}.{k}" if where else str(k)) for k, v in value.items())
        elif isinstance(value, list):
            stack.extend((v, depth + 1, where) for v in value)
