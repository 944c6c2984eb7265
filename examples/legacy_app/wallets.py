"""The wallet queue: addresses waiting for a balance refresh, persisted in SQLite.

Producers push addresses; the refresh job pops them one at a time. The balances API
rate-limits hard: a wallet answered 429 is dropped (it comes back with the next push).
"""

from __future__ import annotations

import logging
import sqlite3
from typing import Any

import httpx

from legacy_app import settings

log = logging.getLogger("legacy_app.wallets")


class WalletQueue:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        conn.execute("CREATE TABLE IF NOT EXISTS wallet_queue (id INTEGER PRIMARY KEY, address TEXT NOT NULL)")

    def push(self, addresses: list[str]) -> None:
        self.conn.executemany("INSERT INTO wallet_queue (address) VALUES (?)", [(a,) for a in addresses])
        self.conn.commit()

    def pop(self) -> str | None:
        row = self.conn.execute("SELECT id, address FROM wallet_queue ORDER BY id LIMIT 1").fetchone()
        if row is None:
            return None
        self.conn.execute("DELETE FROM wallet_queue WHERE id = ?", (row[0],))
        self.conn.commit()
        return row[1]


class BalanceApi:
    def __init__(self) -> None:
        self.http = httpx.Client(base_url=settings.UPSTREAM_URL, timeout=30)

    def balance(self, address: str) -> dict[str, Any]:
        response = self.http.get(f"/wallets/{address}")
        response.raise_for_status()
        return response.json()


def refresh_wallets(db_path: str | None = None) -> dict[str, int]:
    """Drain the queue: fetch each wallet's balance and store it."""
    conn = sqlite3.connect(db_path or settings.data_path("wallets.db"))
    conn.execute("CREATE TABLE IF NOT EXISTS balances (address TEXT PRIMARY KEY, balance REAL, txs INTEGER)")
    queue = WalletQueue(conn)
    api = BalanceApi()
    done = dropped = 0
    while (address := queue.pop()) is not None:
        try:
            data = api.balance(address)
        except httpx.HTTPStatusError as exc:
            if exc.response.status_code == 429:
                log.info("rate limited, dropping %s", address)
                dropped += 1
                continue
            raise
        conn.execute("INSERT OR REPLACE INTO balances VALUES (?, ?, ?)", (address, data["balance"], data["txs"]))
        conn.commit()
        done += 1
    conn.close()
    return {"refreshed": done, "dropped": dropped}
