"""The token catalogue, in the app's SQLite database."""

from __future__ import annotations

import sqlite3

HOT = [f"HOT{i:03d}" for i in range(35)]
COLD = [f"TOKEN{i:03d}" for i in range(70)]


class TokenRepository:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        conn.execute("CREATE TABLE IF NOT EXISTS tokens (symbol TEXT PRIMARY KEY, tier TEXT NOT NULL)")
        if conn.execute("SELECT COUNT(*) FROM tokens").fetchone()[0] == 0:
            conn.executemany("INSERT INTO tokens VALUES (?, 'hot')", [(s,) for s in HOT])
            conn.executemany("INSERT INTO tokens VALUES (?, 'cold')", [(s,) for s in COLD])
            conn.commit()

    def tokens(self, tier: str) -> list[str]:
        """The symbols of one tier ('hot' or 'cold'), in catalogue order."""
        rows = self.conn.execute("SELECT symbol FROM tokens WHERE tier = ? ORDER BY symbol", (tier,))
        return [symbol for (symbol,) in rows]
