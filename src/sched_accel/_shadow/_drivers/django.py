"""The Django ORM: every statement, the ORM's and ``connection.cursor()``'s, goes through
``CursorWrapper.execute``/``executemany`` (``CursorDebugWrapper`` calls them); a write stops
the shadow there, a stored procedure (``callproc``) always, and so does
``BaseDatabaseWrapper.commit``. An ``atomic()`` block left normally (which would commit, or
release its savepoint) is left as if it had raised instead: Django rolls it back and puts
the connection's autocommit back, then the shadow stops.

A sync shadow runs in a worker thread, where Django opens a connection of its own (its
connections are per thread): the runner closes it (``django.db.connections.close_all()``).
Supported: Django 4.2 and later (tested on 5.2)."""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType

from .._context import ACTING
from .._wrapping import wrap
from ._calls import always, leave_without_commit, statement

__all__ = ["HOOKS", "SUPPORTED"]

SUPPORTED = ">=4.2"


def _cursor(module: ModuleType) -> None:
    wrap(module.CursorWrapper, "execute", statement("the Django ORM"), ACTING.get)
    wrap(module.CursorWrapper, "executemany", statement("the Django ORM"), ACTING.get)
    wrap(module.CursorWrapper, "callproc", always("the Django ORM", "called a stored procedure"), ACTING.get)


def _connection(module: ModuleType) -> None:
    wrap(module.BaseDatabaseWrapper, "commit", always("the Django ORM", "committed"), ACTING.get)


def _transaction(module: ModuleType) -> None:
    wrap(module.Atomic, "__exit__", leave_without_commit("the Django ORM"), ACTING.get)


HOOKS: tuple[tuple[str, Callable[[ModuleType], None]], ...] = (
    ("django.db.backends.utils", _cursor),
    ("django.db.backends.base.base", _connection),
    ("django.db.transaction", _transaction),
)
