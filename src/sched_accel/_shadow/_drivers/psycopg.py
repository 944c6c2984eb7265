"""psycopg 3 (sync and async): its cursors are Python. A statement that writes stops the
shadow at ``execute``/``executemany``/``stream`` (a ``sql.SQL`` composed object is read through
the cursor), ``copy`` always, and so does ``commit``; a ``with conn`` or
``with conn.transaction()`` block left normally (which would commit) is left as if it had
raised instead (psycopg rolls it back), then the shadow stops. Supported: psycopg 3.1 and later
(tested on 3.3 against PostgreSQL 15)."""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType

from .._context import ACTING
from .._wrapping import wrap
from ._calls import always, leave_without_commit, statement

__all__ = ["HOOKS", "SUPPORTED"]

SUPPORTED = ">=3.1"


def _psycopg(module: ModuleType) -> None:
    check = statement("psycopg")
    for cursor in ("Cursor", "AsyncCursor", "ServerCursor", "AsyncServerCursor"):
        for name in ("execute", "executemany", "stream"):
            if name in vars(getattr(module, cursor)):
                wrap(getattr(module, cursor), name, check, ACTING.get)
    for cursor in ("Cursor", "AsyncCursor"):
        wrap(getattr(module, cursor), "copy", always("psycopg", "ran COPY"), ACTING.get)
    for connection in ("Connection", "AsyncConnection"):
        wrap(getattr(module, connection), "commit", always("psycopg", "committed"), ACTING.get)
    leave = leave_without_commit("psycopg")
    wrap(module.Connection, "__exit__", leave, ACTING.get)
    wrap(module.AsyncConnection, "__aexit__", leave, ACTING.get)
    wrap(module.Transaction, "__exit__", leave, ACTING.get)
    wrap(module.AsyncTransaction, "__aexit__", leave, ACTING.get)


HOOKS: tuple[tuple[str, Callable[[ModuleType], None]], ...] = (("psycopg", _psycopg),)
