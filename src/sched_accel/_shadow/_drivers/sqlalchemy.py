"""SQLAlchemy (Core and ORM, sync and asyncio): every statement reaches the DB-API through
``Connection._exec_single_context`` or ``_exec_insertmany_context`` with its final SQL text
(``context.statement``); any statement stops the shadow there, a read too, before any cursor is
touched (which SQLAlchemy would take for a disconnect, :class:`Stopped` being no ``Exception``):
a ``Session`` or a ``Connection`` is for one thread (or task) at a time, and a shadow's may be
the one the real run is using (a session handed to the per-item function).
``Transaction.commit`` (``Connection.commit``, ``Session.commit``, leaving ``engine.begin()``)
stops it too. Async engines run these in a greenlet that carries the caller's context.

Not seen: what the statement's construction runs before it (a dialect that pre-executes a
sequence's ``nextval`` for a primary key). Supported: SQLAlchemy 2.0 and later (tested on 2.1).
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType

from .._context import ACTING
from .._wrapping import wrap
from ._calls import always

__all__ = ["HOOKS", "SUPPORTED"]

SUPPORTED = ">=2.0"


def _engine(module: ModuleType) -> None:
    check = always("SQLAlchemy", "ran a statement on a connection or session one thread may use at a time")
    wrap(module.Connection, "_exec_single_context", check, ACTING.get)
    wrap(module.Connection, "_exec_insertmany_context", check, ACTING.get)
    wrap(module.Transaction, "commit", always("SQLAlchemy", "committed a transaction"), ACTING.get)


HOOKS: tuple[tuple[str, Callable[[ModuleType], None]], ...] = (("sqlalchemy.engine.base", _engine),)
