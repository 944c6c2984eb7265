"""_sqlite and the SQLite drivers: a shadow's writes through sqlite3, aiosqlite and SQLAlchemy
never reach the database, and stop it at the app's line; its reads, and everyone else's
writes at the same time, go on."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from sched_accel._exceptions import Stopped
from sched_accel._shadow import Shadow, shadowed

from .helpers import in_thread

pytestmark = pytest.mark.usefixtures("active")


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Path]:
    """A SQLite file with a table ``t(a)`` holding one row."""
    path = tmp_path / "app.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE t (a TEXT)")
        conn.execute("INSERT INTO t VALUES ('first')")
    yield path


def rows(db: Path) -> list[str]:
    with sqlite3.connect(db) as conn:
        return [a for (a,) in conn.execute("SELECT a FROM t ORDER BY rowid")]


def test_sqlite3_reads_go_on_and_a_write_is_refused_and_stops_the_shadow(db: Path) -> None:
    """SELECT works; INSERT fails (not authorized), marks the shadow, and its next effect stops."""
    seen: list[object] = []

    def job() -> None:
        conn = sqlite3.connect(db)
        seen.append(conn.execute("SELECT a FROM t").fetchall())
        try:
            conn.execute("INSERT INTO t VALUES ('shadow')")  # the write
        except sqlite3.DatabaseError as exc:
            seen.append(str(exc))
        conn.commit()
        print("after the write")  # the shadow's next hook: Stopped

    outcome = in_thread(job)
    assert seen == [[("first",)], "not authorized"]
    assert isinstance(outcome.error, Stopped)
    assert outcome.shadow.stopped is not None and outcome.shadow.stopped.startswith(
        "a write to SQLite through sqlite3: INSERT t ("
    )
    assert "tests/shadow/test_sqlite.py:" in outcome.shadow.stopped
    assert rows(db) == ["first"]


def test_a_connection_shared_with_the_main_thread(db: Path) -> None:
    """On one connection, the main thread's writes go through; the shadow's write and its
    commit (which would commit the main thread's pending row) are refused."""
    conn = sqlite3.connect(db, check_same_thread=False)
    conn.execute("INSERT INTO t VALUES ('main, pending')")

    def job() -> None:
        for statement in ("INSERT INTO t VALUES ('shadow')", "UPDATE t SET a = 'x'"):
            try:
                conn.execute(statement)
            except sqlite3.DatabaseError:
                pass
        conn.commit()

    outcome = in_thread(job)
    assert isinstance(outcome.error, sqlite3.DatabaseError)  # COMMIT not authorized
    assert outcome.shadow.stopped is not None and "INSERT" in outcome.shadow.stopped
    assert rows(db) == ["first"]  # nothing committed by the shadow
    conn.execute("INSERT INTO t VALUES ('main, later')")
    conn.commit()
    conn.close()
    assert rows(db) == ["first", "main, pending", "main, later"]


@pytest.mark.audit
def test_a_database_that_does_not_exist_is_not_created(tmp_path: Path) -> None:
    """Connecting to a SQLite file that does not exist would create it: stopped."""
    outcome = in_thread(lambda: sqlite3.connect(tmp_path / "new.db"))
    assert isinstance(outcome.error, Stopped) and "which it would create" in outcome.error.why
    assert not (tmp_path / "new.db").exists()
    outcome = in_thread(lambda: sqlite3.connect(":memory:").execute("SELECT 1").fetchall())
    assert outcome.error is None and outcome.value == [(1,)]


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
@pytest.mark.anyio
async def test_aiosqlite_a_shadow_task_reads_and_is_stopped_at_its_write_beside_a_normal_task(db: Path) -> None:
    """Through one aiosqlite connection, the shadow task's SELECT works, its INSERT and commit
    stop it before they reach aiosqlite's thread; the normal task's INSERT goes through."""
    import aiosqlite
    import anyio

    shadow = Shadow()
    seen: list[object] = []
    read = anyio.Event()
    async with aiosqlite.connect(db) as conn:

        async def shadow_task() -> None:
            with shadowed(shadow):
                async with conn.execute("SELECT a FROM t") as cursor:
                    seen.append(await cursor.fetchall())
                read.set()
                for attempt in (lambda: conn.execute("INSERT INTO t VALUES ('shadow')"), conn.commit):
                    try:
                        await attempt()
                    except Stopped as exc:
                        seen.append(exc.why.rpartition(" (")[0])

        async def normal_task() -> None:
            await read.wait()
            await conn.execute("INSERT INTO t VALUES ('normal')")
            await conn.commit()

        async with anyio.create_task_group() as group:
            group.start_soon(shadow_task)
            group.start_soon(normal_task)
    assert seen == [
        [("first",)],
        "a database write through aiosqlite: INSERT INTO t VALUES ('shadow')",
        "committed through aiosqlite",
    ]
    assert rows(db) == ["first", "normal"]


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
@pytest.mark.anyio
async def test_aiosqlite_connecting_in_a_shadow_stops_it(db: Path) -> None:
    """aiosqlite.connect starts a thread of its own, outside the shadow: stopped."""
    import aiosqlite

    shadow = Shadow()
    with shadowed(shadow), pytest.raises(Stopped, match="started a thread"):
        async with aiosqlite.connect(db):
            pass  # pragma: no cover - never reached


def test_sqlalchemy_core_and_orm(db: Path) -> None:
    """SQLAlchemy: any statement of a shadow stops it (a session or connection is for one
    thread at a time, and the shadow's may be the real run's), before the DB-API is reached:
    a SELECT, a Core INSERT, an ORM flush; the engine's pool stays good for the app."""
    from sqlalchemy import Column, Integer, String, create_engine, insert, select, text
    from sqlalchemy.orm import Session, declarative_base

    Base = declarative_base()

    class Row(Base):  # type: ignore[valid-type,misc]
        __tablename__ = "t"
        rowid = Column(Integer, primary_key=True)
        a = Column(String)

    engine = create_engine(f"sqlite:///{db}")
    reasons: list[str] = []

    def attempt(job: object) -> None:
        outcome = in_thread(job)  # type: ignore[arg-type]
        assert isinstance(outcome.error, Stopped), outcome
        reasons.append(outcome.error.why.rpartition(" (")[0])

    def core_read() -> object:
        with engine.connect() as conn:
            return conn.execute(select(Row.a)).all()

    def core_insert() -> None:
        with engine.connect() as conn:
            conn.execute(insert(Row).values(a="shadow"))

    def orm_flush() -> None:
        with Session(engine) as session:
            session.add(Row(a="shadow"))
            session.commit()

    def read_then_commit() -> None:
        with engine.begin() as conn:
            conn.execute(text("SELECT 1"))

    for job in (core_read, core_insert, orm_flush, read_then_commit):
        attempt(job)
    assert reasons == ["ran a statement on a connection or session one thread may use at a time through SQLAlchemy"] * 4
    with Session(engine) as session:  # the app, afterwards, on the same pool
        session.add(Row(a="main"))
        session.commit()
    engine.dispose()
    assert rows(db) == ["first", "main"]
