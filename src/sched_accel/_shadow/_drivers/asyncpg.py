"""asyncpg: ``Connection``'s methods are Python (its protocol is not). Any statement stops the
shadow when it is called, a read too (a connection runs one operation at a time: a shadow's
read on the app's connection would make the real run's own fail) (``execute``, ``executemany``, ``fetch*``,
``prepare``, ``cursor``; pools delegate to them), ``copy_*`` always (to a table, or from one
into the app's file); an ``async with conn.transaction()`` block left normally (which would
commit) is left as if it had raised (asyncpg rolls it back), then the shadow stops. Connecting is a
``socket.connect`` outside a read: a shadow that opens a connection (or a pool that does for
it) stops there. Supported: asyncpg 0.27 and later (tested on 0.32 against PostgreSQL 15)."""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType

from .._context import ACTING
from .._wrapping import wrap
from ._calls import always, leave_without_commit

__all__ = ["HOOKS", "SUPPORTED"]

SUPPORTED = ">=0.27"
#: A read too: an asyncpg connection runs one operation at a time, and a shadow's on the app's
#: connection would make the real run's own fail ("another operation is in progress").
_SHARED = "ran a statement on a connection that takes one operation at a time (the real run's may be waiting)"
_STATEMENTS = ("execute", "executemany", "fetch", "fetchrow", "fetchval", "fetchmany", "prepare", "cursor")
_COPIES = ("copy_from_table", "copy_from_query", "copy_to_table", "copy_records_to_table")


def _connection(module: ModuleType) -> None:
    for name in _STATEMENTS:
        wrap(module.Connection, name, always("asyncpg", _SHARED), ACTING.get)
    for name in _COPIES:
        wrap(module.Connection, name, always("asyncpg", f"ran {name}"), ACTING.get)


def _transaction(module: ModuleType) -> None:
    wrap(module.Transaction, "__aexit__", leave_without_commit("asyncpg"), ACTING.get)


HOOKS: tuple[tuple[str, Callable[[ModuleType], None]], ...] = (
    ("asyncpg.connection", _connection),
    ("asyncpg.transaction", _transaction),
)
