"""The server drivers' wrappers (psycopg 2 and 3, asyncpg, PyMySQL; test_postgres runs the
first three against a real server, PyMySQL has none here), called with a stand-in for the
connection or cursor: a write stops the shadow before the driver runs; a read, or any call
outside a shadow, reaches the driver (which then fails on the stand-in)."""

from __future__ import annotations

from typing import Any

import pytest
import wrapt

from sched_accel._exceptions import Stopped
from sched_accel._shadow import Shadow, shadowed
from sched_accel._shadow._drivers._calls import leave_without_commit
from sched_accel._shadow._wrapping import is_ours

pytestmark = pytest.mark.usefixtures("active")


class StandIn:
    """Neither a connection nor a cursor: the real method fails on it."""


def method(owner: type, name: str) -> Any:
    """``owner.name`` bound to a stand-in, as the app's ``conn.name`` would be."""
    return vars(owner)[name].__get__(StandIn(), owner)


def stops(owner: type, name: str, *args: Any) -> str:
    """Call in a shadow; return why it stopped (failing if it did not)."""
    with shadowed(Shadow()), pytest.raises(Stopped) as stopped:
        method(owner, name)(*args)
    return stopped.value.why


def reaches_the_driver(owner: type, name: str, *args: Any, shadow: bool = True) -> None:
    """Call (in a shadow, or not); the driver itself gets the call and fails on the stand-in."""
    with shadowed(Shadow()) if shadow else _nothing():
        try:
            result = method(owner, name)(*args)
        except Exception:  # the driver's own error: Stopped is no Exception, and fails the test
            return
    if hasattr(result, "close"):  # an async method's coroutine, never awaited
        result.close()


class _nothing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def test_psycopg() -> None:
    """psycopg 3: writes, COPY, commit and leaving a transaction normally stop; reads reach it."""
    psycopg = pytest.importorskip("psycopg")
    from psycopg import sql

    assert stops(psycopg.Cursor, "execute", "INSERT INTO t VALUES (1)").startswith(
        "a database write through psycopg: INSERT"
    )
    assert "DELETE" in stops(psycopg.Cursor, "executemany", sql.SQL("DELETE FROM {}").format(sql.Identifier("t")), [])
    assert stops(psycopg.AsyncCursor, "execute", "UPDATE t SET a = 1").startswith(
        "a database write through psycopg: UPDATE"
    )
    assert stops(psycopg.ServerCursor, "execute", "DELETE FROM t").startswith("a database write through psycopg")
    assert stops(psycopg.Cursor, "copy", "COPY t FROM STDIN").startswith("ran COPY through psycopg")
    assert stops(psycopg.Connection, "commit").startswith("committed through psycopg")
    assert stops(psycopg.AsyncConnection, "commit").startswith("committed through psycopg")
    for owner, name in (
        (psycopg.Connection, "__exit__"),
        (psycopg.Transaction, "__exit__"),
        (psycopg.AsyncTransaction, "__aexit__"),
    ):
        assert wrapt.find_wrapper(vars(owner)[name], predicate=is_ours) is not None
    reaches_the_driver(psycopg.Cursor, "execute", "SELECT 1")
    reaches_the_driver(psycopg.AsyncCursor, "execute", "SELECT 1")
    reaches_the_driver(psycopg.Cursor, "execute", "INSERT INTO t VALUES (1)", shadow=False)


def test_psycopg2(monkeypatch: pytest.MonkeyPatch) -> None:
    """psycopg2: connect() makes connections of our subclass, whose cursors (of any factory)
    check a shadow's statements; commit, callproc and COPY stop."""
    psycopg2 = pytest.importorskip("psycopg2")
    extensions, extras = pytest.importorskip("psycopg2.extensions"), pytest.importorskip("psycopg2.extras")

    from sched_accel._shadow._drivers.psycopg2 import connection_class, cursor_class

    made: list[dict[str, Any]] = []
    monkeypatch.setattr(psycopg2, "_connect", lambda dsn, **kwargs: made.append(kwargs))
    psycopg2.connect("dbname=app")
    psycopg2.connect("dbname=app", connection_factory=extras.LoggingConnection)
    ours = connection_class(extensions.connection, extensions.cursor)
    assert made[0]["connection_factory"] is ours and issubclass(ours, extensions.connection)
    assert made[1]["connection_factory"] is extras.LoggingConnection  # the app's own: left alone

    plain, real_dict = cursor_class(extensions.cursor), cursor_class(extras.RealDictCursor)
    assert issubclass(real_dict, extras.RealDictCursor) and cursor_class(real_dict) is real_dict
    assert stops(plain, "execute", "INSERT INTO t VALUES (1)").startswith("a database write through psycopg2: INSERT")
    assert stops(real_dict, "executemany", "DELETE FROM t", []).startswith("a database write through psycopg2: DELETE")
    assert stops(plain, "callproc", "proc").startswith("called a stored procedure through psycopg2")
    assert stops(plain, "copy_expert", "COPY t TO STDOUT", None).startswith("ran COPY through psycopg2")
    assert stops(ours, "commit").startswith("committed through psycopg2")
    reaches_the_driver(plain, "execute", "SELECT 1")
    reaches_the_driver(plain, "execute", "DELETE FROM t", shadow=False)


def test_asyncpg() -> None:
    """asyncpg: any statement stops at the call (before the coroutine runs), reads too (a
    connection takes one operation at a time: the real run's may be waiting); copies always."""
    asyncpg = pytest.importorskip("asyncpg")
    connection = asyncpg.connection.Connection
    shared = "ran a statement on a connection that takes one operation at a time"
    assert stops(connection, "execute", "DELETE FROM t").startswith(shared)
    assert stops(connection, "fetch", "SELECT 1").startswith(shared)
    assert stops(connection, "copy_records_to_table", "t").startswith("ran copy_records_to_table through asyncpg")
    reaches_the_driver(connection, "fetch", "SELECT 1", shadow=False)


def test_pymysql() -> None:
    """PyMySQL: every statement goes through Connection.query: any stops (a connection is not
    thread-safe), and commit."""
    pymysql = pytest.importorskip("pymysql")
    connection = pymysql.connections.Connection
    shared = "ran a statement on a connection one thread may use at a time through PyMySQL"
    assert stops(connection, "query", "UPDATE t SET a = 1").startswith(shared)
    assert stops(connection, "query", "SELECT 1").startswith(shared)
    assert stops(connection, "commit").startswith("committed through PyMySQL")
    reaches_the_driver(connection, "query", "UPDATE t SET a = 1", shadow=False)


class Block:
    """A transaction block of a driver: it commits when left normally, rolls back otherwise."""

    def __init__(self) -> None:
        self.left: list[str] = []

    def __exit__(self, exc_type: object, exc: object, traceback: object) -> None:
        self.left.append("commit" if exc_type is None else f"rollback on {getattr(exc_type, '__name__', exc_type)}")

    async def __aexit__(self, exc_type: object, exc: object, traceback: object) -> None:
        self.__exit__(exc_type, exc, traceback)


def test_a_block_left_normally_in_a_shadow_rolls_back_then_stops() -> None:
    """leave_without_commit: in a shadow, a normal exit becomes a rollback, then Stopped; an
    exit with an exception, or outside a shadow, is the driver's own."""
    import asyncio

    leave = leave_without_commit("a driver")
    block = Block()
    with shadowed(Shadow()), pytest.raises(Stopped, match="committed through a driver"):
        leave(block.__exit__, block, (None, None, None), {})
    with shadowed(Shadow()):
        leave(block.__exit__, block, (ValueError, ValueError(), None), {})
    leave(block.__exit__, block, (None, None, None), {})
    shadow = Shadow()
    with shadowed(shadow):
        left = leave(block.__aexit__, block, (None, None, None), {})
    with pytest.raises(Stopped):
        asyncio.run(left)
    assert block.left == ["rollback on Stopped", "rollback on ValueError", "commit", "rollback on Stopped"]
    assert shadow.stopped is not None and shadow.stopped.startswith("committed through a driver")
