"""psycopg2: its connection and cursor are C types, whose methods cannot be wrapped, and
libpq's sockets are not audited: without this, nothing would see a shadow's writes.

So ``psycopg2.connect`` (Python) is wrapped for good once installed, in and outside shadows:
a connection made without a ``connection_factory`` is made of :func:`connection_class`, a
subclass of ``psycopg2.extensions.connection`` whose ``cursor()`` makes its cursors (of the
factory asked for, ``RealDictCursor`` and the like included) of a subclass that checks the
statement in a shadow before ``execute``/``executemany`` (a write stops the shadow;
``callproc`` and ``copy_*`` always do), and whose ``commit`` stops a shadow (a ``with conn:``
block left normally, which would commit in C, is left as if it had raised: a rollback).

Limits: a connection made before the hook, or with a ``connection_factory`` of the app's
(``LoggingConnection``, ``DictConnection``), is not covered. Supported: psycopg2 2.8 and later
(tested on 2.9 against PostgreSQL 15).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from types import ModuleType
from typing import Any

from ..._exceptions import Stopped
from .._context import ACTING, where
from .._sql import writes
from .._wrapping import Args, Kwargs, wrap

__all__ = ["HOOKS", "SUPPORTED", "connection_class", "cursor_class"]

SUPPORTED = ">=2.8"


def _stop_if_writes(cursor: Any, query: Any) -> None:
    shadow = ACTING.get()
    if shadow is not None:
        shadow.check()
        what = writes(query, cursor)
        if what is not None:
            shadow.stop(f"a database write through psycopg2: {what} ({where()})")


def _stop(what: str) -> None:
    shadow = ACTING.get()
    if shadow is not None:
        shadow.stop(f"{what} through psycopg2 ({where()})")


@functools.cache
def cursor_class(base: type) -> type:
    """``base`` (a psycopg2 cursor class), checking a shadow's statements."""
    if getattr(base, "_sched_accel_shadowed", False):
        return base

    class ShadowedCursor(base):  # type: ignore[misc]
        _sched_accel_shadowed = True

        def execute(self, query: Any, vars: Any = None) -> Any:
            _stop_if_writes(self, query)
            return super().execute(query, vars)

        def executemany(self, query: Any, vars_list: Any) -> Any:
            _stop_if_writes(self, query)
            return super().executemany(query, vars_list)

        def callproc(self, *args: Any, **kwargs: Any) -> Any:
            _stop("called a stored procedure")
            return super().callproc(*args, **kwargs)

        def copy_from(self, *args: Any, **kwargs: Any) -> Any:
            _stop("ran COPY FROM")
            return super().copy_from(*args, **kwargs)

        def copy_to(self, *args: Any, **kwargs: Any) -> Any:
            _stop("ran COPY TO")
            return super().copy_to(*args, **kwargs)

        def copy_expert(self, *args: Any, **kwargs: Any) -> Any:
            _stop("ran COPY")
            return super().copy_expert(*args, **kwargs)

    ShadowedCursor.__name__ = ShadowedCursor.__qualname__ = base.__name__
    ShadowedCursor.__module__ = base.__module__
    return ShadowedCursor


@functools.cache
def connection_class(base: type, default_cursor: type) -> type:
    """``base`` (``psycopg2.extensions.connection``), whose cursors are :func:`cursor_class`'s."""

    class ShadowedConnection(base):  # type: ignore[misc]
        def cursor(self, *args: Any, **kwargs: Any) -> Any:
            if len(args) > 1:
                args = (args[0], cursor_class(args[1] or self.cursor_factory or default_cursor), *args[2:])
            else:
                kwargs["cursor_factory"] = cursor_class(
                    kwargs.get("cursor_factory") or self.cursor_factory or default_cursor
                )
            return super().cursor(*args, **kwargs)

        def commit(self) -> None:
            _stop("committed")
            super().commit()

        def __exit__(self, exc_type: Any, exc: Any, traceback: Any) -> Any:
            shadow = ACTING.get()
            if shadow is None or exc_type is not None:
                return super().__exit__(exc_type, exc, traceback)
            why = f"committed through psycopg2 ({where()})"  # ``with conn:`` commits in C
            shadow.mark(why)
            stopped = Stopped(why)
            super().__exit__(Stopped, stopped, None)  # rolls back instead
            raise stopped

    ShadowedConnection.__name__ = ShadowedConnection.__qualname__ = base.__name__
    ShadowedConnection.__module__ = base.__module__
    return ShadowedConnection


def _always() -> bool:
    return True


def _psycopg2(module: ModuleType) -> None:
    extensions = module.extensions

    def connect(wrapped: Callable[..., Any], instance: Any, args: Args, kwargs: Kwargs) -> Any:
        if len(args) < 2 and kwargs.get("connection_factory") is None:
            kwargs["connection_factory"] = connection_class(extensions.connection, extensions.cursor)
        return wrapped(*args, **kwargs)

    wrap(module, "connect", connect, _always)


HOOKS: tuple[tuple[str, Callable[[ModuleType], None]], ...] = (("psycopg2", _psycopg2),)
