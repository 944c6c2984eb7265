"""PyMySQL: every statement, a cursor's included, is sent by ``Connection.query``: a write
stops the shadow there (a ``CALL`` too), and so does ``commit``. Its socket connects in
``pymysql.connect``: a shadow that connects stops there. Supported: PyMySQL 1.0 and later
(tested, without a server, on 1.2)."""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType

from .._context import ACTING
from .._wrapping import wrap
from ._calls import always, statement

__all__ = ["HOOKS", "SUPPORTED"]

SUPPORTED = ">=1.0"


def _connection(module: ModuleType) -> None:
    wrap(module.Connection, "query", statement("PyMySQL"), ACTING.get)
    wrap(module.Connection, "commit", always("PyMySQL", "committed"), ACTING.get)


HOOKS: tuple[tuple[str, Callable[[ModuleType], None]], ...] = (("pymysql.connections", _connection),)
