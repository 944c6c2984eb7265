"""_sql: what SQL text only reads, statement by statement, deny by default."""

from __future__ import annotations

import pytest

from sched_accel._shadow._sql import pragma_reads, sql_text, writes

READS = [
    "SELECT * FROM t",
    "  -- a comment\n select a, updated_at FROM t WHERE name = 'delete me'",
    "WITH x AS (SELECT 1) SELECT * FROM x",
    "EXPLAIN ANALYZE SELECT 1",
    "SHOW TABLES",
    "select replace(name, 'a', 'b') from t",
    "SELECT $$ drop table t $$",
    'SELECT "insert" FROM t',
    "SELECT $1, $2",
    "BEGIN",
    "ROLLBACK",
    "SAVEPOINT s1",
    "SET search_path TO app",
    "PRAGMA table_info(t)",
    "PRAGMA foreign_keys = ON",
    "PRAGMA main.journal_mode",
    "DECLARE c CURSOR FOR SELECT * FROM t",
    b"SELECT 1",
    "SELECT 1; SELECT 2;",
]
WRITES = [
    "INSERT INTO t VALUES (1)",
    "update t set a = 1",
    "DELETE FROM t",
    "REPLACE INTO t VALUES (1)",
    "CREATE TABLE t (a)",
    "DROP TABLE t",
    "COMMIT",
    "END",
    "RELEASE SAVEPOINT s1",
    "SELECT 1; DELETE FROM t",
    "WITH gone AS (DELETE FROM t RETURNING *) SELECT * FROM gone",
    "SELECT * INTO copy FROM t",
    "SELECT * FROM t FOR UPDATE",
    "SELECT nextval('seq')",
    "SELECT pg_advisory_lock(1)",
    "PRAGMA journal_mode = WAL",
    "PRAGMA user_version = 3",
    "PRAGMA optimize",
    "SET GLOBAL max_connections = 10",
    "CALL proc()",
    "VACUUM",
    "SELECT 'a\\'; DELETE FROM t; -- '",  # MySQL reads the backslash as an escape
    "COPY t FROM STDIN",
]


@pytest.mark.parametrize("sql", READS)
def test_reads(sql: str | bytes) -> None:
    """Each of these only reads (or sets up this session)."""
    assert writes(sql) is None


@pytest.mark.parametrize("sql", WRITES)
def test_writes(sql: str) -> None:
    """Each of these writes, or makes writes last: the reason quotes it."""
    what = writes(sql)
    assert what is not None and what.split()[0] == sql.split()[0]


def test_a_long_statement_is_cut_and_an_unreadable_one_is_a_write() -> None:
    """The reason is cut to 80 characters; something that is not SQL text stops."""
    what = writes("INSERT INTO t VALUES " + ", ".join(["(1)"] * 100))
    assert what is not None and len(what) == 80 and what.endswith("...")
    assert writes(object()) == "a statement we cannot read (object)"
    assert writes("") is None


def test_composed_statements_are_read_through_as_string() -> None:
    """psycopg's sql.SQL-like objects are read through as_string(context)."""

    class Composed:
        def as_string(self, context: object) -> str:
            if context is None:
                raise TypeError("needs a connection")
            return "DELETE FROM t"

    assert sql_text(Composed(), context="cursor") == "DELETE FROM t"
    assert writes(Composed(), "cursor") == "DELETE FROM t"
    assert writes(Composed()) is not None


def test_pragmas() -> None:
    """A pragma reads, or sets what lasts for this connection only; others write."""
    assert pragma_reads("table_info", True) and pragma_reads("cache_size", True) and pragma_reads("journal_mode", False)
    assert not pragma_reads("journal_mode", True) and not pragma_reads("wal_checkpoint", False)
    assert pragma_reads("main.foreign_keys", True)
