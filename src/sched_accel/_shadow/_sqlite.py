"""sqlite3: its methods are C, so a shadow's writes are refused by SQLite itself.

``sqlite3.connect`` (also reached as ``sqlite3.dbapi2.connect``, which SQLAlchemy and Django
call) is wrapped for good once installed, in and outside shadows: each connection it makes,
in the thread that made it, gets an authorizer (:func:`authorize`). (The audit event
``sqlite3.connect/handle`` comes before the connection is initialised in 3.11: an authorizer
cannot be set from there.) Outside a shadow it allows everything after one C call (sqlite calls it
only when a statement is prepared, not each time a cached one runs). In a shadow it allows
what reads (``SELECT``, reading a table, a function, a ``PRAGMA`` that reads or sets what
lasts for this connection only, ``BEGIN`` and ``ROLLBACK``) and denies the rest: the statement
fails with ``sqlite3.DatabaseError: not authorized``, nothing is written, and the shadow is
marked stopped (an authorizer cannot raise through sqlite), so its next effect, hook or read
raises :class:`Stopped`.

Limits: a connection made before the hook was installed, or through a ``connect`` bound
before it (``from sqlite3 import connect``), has no authorizer (a sync shadow
cannot use one made in another thread anyway: sqlite3 refuses, unless it was made with
``check_same_thread=False``); an app that sets its own authorizer replaces ours; aiosqlite runs
its statements in a thread of its own, outside the shadow's context (its wrapper in
``_drivers`` checks the SQL text instead).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from types import ModuleType
from typing import Any
from urllib.parse import parse_qs, urlsplit

from ._context import ACTING, where
from ._sql import pragma_reads
from ._wrapping import Args, Kwargs, wrap

__all__ = ["HOOKS", "authorize", "connected", "creates"]

# sqlite3's action codes (the same in every SQLite): read ones here, names for the reason.
_SQLITE_OK, _SQLITE_DENY = 0, 1
_PRAGMA, _READ, _SELECT, _TRANSACTION, _FUNCTION, _SAVEPOINT, _RECURSIVE = 19, 20, 21, 22, 31, 32, 33
_READS = frozenset({_READ, _SELECT, _FUNCTION, _RECURSIVE})
_NAMES = {
    1: "CREATE INDEX", 2: "CREATE TABLE", 3: "CREATE TEMP INDEX", 4: "CREATE TEMP TABLE", 5: "CREATE TEMP TRIGGER",
    6: "CREATE TEMP VIEW", 7: "CREATE TRIGGER", 8: "CREATE VIEW", 9: "DELETE", 10: "DROP INDEX", 11: "DROP TABLE",
    12: "DROP TEMP INDEX", 13: "DROP TEMP TABLE", 14: "DROP TEMP TRIGGER", 15: "DROP TEMP VIEW", 16: "DROP TRIGGER",
    17: "DROP VIEW", 18: "INSERT", 19: "PRAGMA", 22: "TRANSACTION", 23: "UPDATE", 24: "ATTACH", 25: "DETACH",
    26: "ALTER TABLE", 27: "REINDEX", 28: "ANALYZE", 29: "CREATE VTABLE", 30: "DROP VTABLE", 32: "SAVEPOINT",
}  # fmt: skip


def authorize(action: int, arg1: str | None, arg2: str | None, database: str | None, trigger: str | None) -> int:
    """sqlite3's authorizer callback: everything outside a shadow, reads only inside one."""
    shadow = ACTING.get()
    if shadow is None or action in _READS:
        return _SQLITE_OK
    if action == _PRAGMA and pragma_reads(arg1 or "", arg2 is not None):
        return _SQLITE_OK
    if action in (_TRANSACTION, _SAVEPOINT) and arg1 in ("BEGIN", "ROLLBACK"):
        return _SQLITE_OK
    what = " ".join(part for part in (_NAMES.get(action, f"action {action}"), arg1) if part)
    shadow.mark(f"a write to SQLite through sqlite3: {what} ({where()})")
    return _SQLITE_DENY


def connected(connection: Any) -> None:
    """Give a new connection our authorizer."""
    try:
        connection.set_authorizer(authorize)
    except Exception:  # noqa: S110 - never break the app's connect; the connection goes uncovered
        pass


def _connect(wrapped: Callable[..., Any], instance: Any, args: Args, kwargs: Kwargs) -> Any:
    connection = wrapped(*args, **kwargs)
    connected(connection)
    return connection


def _always() -> bool:
    return True


def _sqlite3(module: ModuleType) -> None:
    wrap(module, "connect", _connect, _always)
    wrap(module.dbapi2, "connect", _connect, _always)


HOOKS: tuple[tuple[str, Callable[[ModuleType], None]], ...] = (("sqlite3", _sqlite3),)


def creates(database: object) -> bool:
    """Whether opening ``database`` (the ``sqlite3.connect`` event's argument) may create a file:
    not for ``:memory:``, a private temporary database (``""``), a read-only or in-memory URI,
    or a file that exists."""
    if isinstance(database, bytes):
        database = os.fsdecode(database)
    if not isinstance(database, (str, os.PathLike)):
        return True
    name = os.fspath(database)
    if name in ("", ":memory:") or os.path.exists(name):
        return False
    if name.startswith("file:"):
        parts = urlsplit(name)
        mode = parse_qs(parts.query).get("mode", [""])[-1]
        return mode not in ("ro", "memory") and not (parts.path == ":memory:" or os.path.exists(parts.path))
    return True
