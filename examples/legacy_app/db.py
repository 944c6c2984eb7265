"""A small async database session over SQLite: one connection, on its own thread, per session.

(What aiosqlite does; the app wrote its own before it had the dependency.)
"""

from __future__ import annotations

import asyncio
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from typing import Any


class AsyncSession:
    def __init__(self, path: str) -> None:
        self.path = path
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="db-session")
        self._conn: sqlite3.Connection | None = None

    async def _run(self, fn: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._thread, fn, *args)

    async def __aenter__(self) -> AsyncSession:
        def connect() -> None:
            self._conn = sqlite3.connect(self.path, timeout=30)

        await self._run(connect)
        return self

    async def execute(self, sql: str, params: tuple[Any, ...] = ()) -> None:
        assert self._conn is not None
        await self._run(self._conn.execute, sql, params)

    async def commit(self) -> None:
        assert self._conn is not None
        await self._run(self._conn.commit)

    async def __aexit__(self, *exc: object) -> None:
        if self._conn is not None:
            await self._run(self._conn.close)
        self._thread.shutdown(wait=False)
