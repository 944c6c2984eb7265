"""psycopg2, psycopg 3 and asyncpg against a real PostgreSQL server: a shadow's reads go on
through the app's own connection, its writes and commits stop it before they reach the
server, and the connection stays good for the app."""

from __future__ import annotations

from typing import Any

import pytest

from sched_accel._exceptions import Stopped
from sched_accel._shadow import Shadow, shadowed

from .helpers import in_thread

pytestmark = pytest.mark.usefixtures("active")


def reason(outcome: Any) -> str:
    assert isinstance(outcome.error, Stopped), outcome
    return str(outcome.error.why).rpartition(" (")[0]


def test_psycopg2(postgres_dsn: str) -> None:
    """psycopg2: SELECT goes on; INSERT (plain, RealDictCursor, execute_values) and leaving
    ``with conn:`` (a commit) stop; the table holds the app's rows only."""
    psycopg2 = pytest.importorskip("psycopg2")
    extras = pytest.importorskip("psycopg2.extras")
    conn = psycopg2.connect(postgres_dsn)
    conn.autocommit = True
    with conn.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS t2; CREATE TABLE t2 (a text); INSERT INTO t2 VALUES ('first')")

    def read() -> object:
        with conn.cursor(cursor_factory=extras.RealDictCursor) as cursor:
            cursor.execute("SELECT a FROM t2")
            return cursor.fetchall()

    def with_block() -> None:
        with psycopg2.connect(postgres_dsn) as own, own.cursor() as cursor:
            cursor.execute("SELECT 1")

    outcome = in_thread(read)
    assert outcome.error is None and outcome.value == [{"a": "first"}]
    assert reason(in_thread(lambda: conn.cursor().execute("INSERT INTO t2 VALUES ('shadow')"))).endswith(
        "INSERT INTO t2 VALUES ('shadow')"
    )
    assert "DELETE" in reason(
        in_thread(lambda: conn.cursor(cursor_factory=extras.RealDictCursor).execute("DELETE FROM t2"))
    )
    assert "INSERT" in reason(
        in_thread(lambda: extras.execute_values(conn.cursor(), "INSERT INTO t2 VALUES %s", [("x",)]))
    )
    assert reason(in_thread(with_block)) == "committed through psycopg2"
    with conn.cursor() as cursor:
        cursor.execute("INSERT INTO t2 VALUES ('main')")
        cursor.execute("SELECT a FROM t2 ORDER BY a")
        assert cursor.fetchall() == [("first",), ("main",)]
    conn.close()


def test_psycopg(postgres_dsn: str) -> None:
    """psycopg 3: SELECT goes on; INSERT and a transaction block left normally stop; the
    app's connection is left usable (the block rolled back, its bookkeeping straight)."""
    psycopg = pytest.importorskip("psycopg")
    conn = psycopg.connect(postgres_dsn, autocommit=True)
    conn.execute("DROP TABLE IF EXISTS t3; CREATE TABLE t3 (a text); INSERT INTO t3 VALUES ('first')")

    def block() -> object:
        with conn.transaction():
            return conn.execute("SELECT count(*) FROM t3").fetchall()

    outcome = in_thread(lambda: conn.execute("SELECT a FROM t3").fetchall())
    assert outcome.error is None and outcome.value == [("first",)]
    assert reason(in_thread(lambda: conn.execute("INSERT INTO t3 VALUES ('shadow')"))).startswith(
        "a database write through psycopg: INSERT"
    )
    assert reason(in_thread(block)) == "committed through psycopg"
    conn.execute("INSERT INTO t3 VALUES ('main')")
    assert conn.execute("SELECT a FROM t3 ORDER BY a").fetchall() == [("first",), ("main",)]
    conn.close()


@pytest.mark.audit
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
@pytest.mark.anyio
async def test_asyncpg(postgres_dsn: str) -> None:
    """asyncpg: a shadow task's statements stop, its fetch too (one operation at a time on the
    app's connection), inside a transaction block too; connecting in a shadow stops; the app's
    connection stays usable."""
    asyncpg = pytest.importorskip("asyncpg")
    params = dict(item.split("=") for item in postgres_dsn.split())
    connect = {"host": params["host"], "port": int(params["port"]), "user": "postgres", "database": "postgres"}
    conn = await asyncpg.connect(**connect)
    await conn.execute("DROP TABLE IF EXISTS t4; CREATE TABLE t4 (a text); INSERT INTO t4 VALUES ('first')")
    try:
        reasons: list[str] = []
        for attempt in ("fetch", "insert", "transaction", "connect"):
            shadow = Shadow()
            with shadowed(shadow):
                try:
                    if attempt == "fetch":
                        await conn.fetch("SELECT a FROM t4")
                    elif attempt == "insert":
                        await conn.execute("INSERT INTO t4 VALUES ('shadow')")
                    elif attempt == "transaction":
                        async with conn.transaction():
                            await conn.fetch("SELECT 1")
                    else:
                        await asyncpg.connect(**connect)
                except Stopped as exc:
                    reasons.append(exc.why.rpartition(" (")[0])
        shared = "ran a statement on a connection that takes one operation at a time (the real run's may be waiting) through asyncpg"
        assert reasons == [
            shared,
            shared,
            shared,  # the block's own statement, before it could be left normally
            f"connected a socket to ('127.0.0.1', {connect['port']}) outside a read",
        ]
        await conn.execute("INSERT INTO t4 VALUES ('main')")
        assert [tuple(r) for r in await conn.fetch("SELECT a FROM t4 ORDER BY a")] == [("first",), ("main",)]
    finally:
        await conn.close()
