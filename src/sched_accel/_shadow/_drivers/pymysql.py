"""PyMySQL: every statement, a cursor's included, is sent by ``Connection.query``: any statement
stops the shadow there, a read too (a connection is not thread-safe, and a shadow runs in
another thread than the real run using it), and so does ``commit``. Its socket connects in
``pymysql.connect``: a shadow that connects stops there. Supported: PyMySQL 1.0 and later
(tested, without a server, on 1.2)."""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType

from .._context import ACTING
from .._wrapping import wrap
from ._calls import always

__all__ = ["HOOKS", "SUPPORTED"]

SUPPORTED = ">=1.0"


def _connection(module: ModuleType) -> None:
    # A read too: a PyMySQL connection is not thread-safe, and a shadow runs in another thread.
    wrap(
        module.Connection,
        "query",
        always("PyMySQL", "ran a statement on a connection one thread may use at a time"),
        ACTING.get,
    )
    wrap(module.Connection, "commit", always("PyMySQL", "committed"), ACTING.get)


HOOKS: tuple[tuple[str, Callable[[ModuleType], None]], ...] = (("pymysql.connections", _connection),)
