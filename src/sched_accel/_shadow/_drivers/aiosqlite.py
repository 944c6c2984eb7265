"""aiosqlite: its statements run in a thread of its own, which does not carry the shadow's
context (so sqlite3's authorizer cannot tell them from the app's): the SQL text is checked
here instead, when the shadow calls. Writes and ``commit`` stop the shadow; ``rollback`` and
reads go on. Supported: aiosqlite 0.17 and later (tested on 0.22)."""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType

from .._context import ACTING
from .._wrapping import wrap
from ._calls import always, statement

__all__ = ["HOOKS", "SUPPORTED"]

SUPPORTED = ">=0.17"
_STATEMENTS = ("execute", "executemany", "executescript", "execute_insert", "execute_fetchall")


def _connection(module: ModuleType) -> None:
    for name in _STATEMENTS:
        wrap(module.Connection, name, statement("aiosqlite"), ACTING.get)
    wrap(module.Connection, "commit", always("aiosqlite", "committed"), ACTING.get)


def _cursor(module: ModuleType) -> None:
    for name in ("execute", "executemany", "executescript"):
        wrap(module.Cursor, name, statement("aiosqlite"), ACTING.get)


HOOKS: tuple[tuple[str, Callable[[ModuleType], None]], ...] = (
    ("aiosqlite.core", _connection),
    ("aiosqlite.cursor", _cursor),
)
