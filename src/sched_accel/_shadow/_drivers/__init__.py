"""The database drivers and ORMs whose writes stop a shadow: one module per library, each
with where to hook (``HOOKS``: a module and what to wrap in it once it is imported), what
is a read and what an effect, and the versions supported (``SUPPORTED``).

sqlite3 itself is C: its writes are refused by an authorizer (``.._sqlite``).
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType

from . import aiosqlite, asyncpg, django, psycopg, psycopg2, pymysql, redis, sqlalchemy

__all__ = ["HOOKS", "SUPPORTED"]

_LIBRARIES = {
    "aiosqlite": aiosqlite,
    "asyncpg": asyncpg,
    "django": django,
    "psycopg": psycopg,
    "psycopg2": psycopg2,
    "pymysql": pymysql,
    "redis": redis,
    "sqlalchemy": sqlalchemy,
}
#: library -> the versions we support.
SUPPORTED = {name: module.SUPPORTED for name, module in _LIBRARIES.items()}
HOOKS: tuple[tuple[str, Callable[[ModuleType], None]], ...] = tuple(
    hook for module in _LIBRARIES.values() for hook in module.HOOKS
)
