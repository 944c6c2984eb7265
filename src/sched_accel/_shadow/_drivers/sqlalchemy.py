"""SQLAlchemy (Core and ORM, sync and asyncio): every statement reaches the DB-API through
``Connection._exec_single_context`` or ``_exec_insertmany_context`` with its final SQL text
(``context.statement``); a write stops the shadow there, before any cursor is touched (which
SQLAlchemy would take for a disconnect, :class:`Stopped` being no ``Exception``).
``Transaction.commit`` (``Connection.commit``, ``Session.commit``, leaving ``engine.begin()``)
stops it too. Async engines run these in a greenlet that carries the caller's context.

Not seen: what the statement's construction runs before it (a dialect that pre-executes a
sequence's ``nextval`` for a primary key). Supported: SQLAlchemy 2.0 and later (tested on 2.1).
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any

from .._context import ACTING
from .._wrapping import Args, Kwargs, wrap
from ._calls import always, statement

__all__ = ["HOOKS", "SUPPORTED"]

SUPPORTED = ">=2.0"


def _context_statement(instance: Any, args: Args, kwargs: Kwargs) -> Any:
    context = args[1] if len(args) > 1 else kwargs.get("context")
    return getattr(context, "statement", None)


def _engine(module: ModuleType) -> None:
    check = statement("SQLAlchemy", pick=_context_statement)
    wrap(module.Connection, "_exec_single_context", check, ACTING.get)
    wrap(module.Connection, "_exec_insertmany_context", check, ACTING.get)
    wrap(module.Transaction, "commit", always("SQLAlchemy", "committed a transaction"), ACTING.get)


HOOKS: tuple[tuple[str, Callable[[ModuleType], None]], ...] = (("sqlalchemy.engine.base", _engine),)
