"""The front page's leaderboard: the featured tokens scored, the best one published every second.

The web front (:mod:`legacy_app.web`) schedules :func:`publish_leaderboard`; each run fetches
the featured tokens' pair data one after the other and writes one row.
"""

from __future__ import annotations

import os
import sqlite3
import time
from typing import Any

from legacy_app import settings
from legacy_app.client import ApiClient

#: The tokens on the front page.
FEATURED = ["HOT001", "HOT002", "HOT003"]
#: How often the leaderboard is published, seconds.
EVERY = 1

_SCHEMA = """CREATE TABLE IF NOT EXISTS leaderboard (
    id INTEGER PRIMARY KEY, published REAL, worker INTEGER, token TEXT, score REAL, seconds REAL)"""


def score(data: dict[str, Any]) -> float:
    """The front page's score: price and volume, as the scoring job weighs them."""
    return round(float(data["price"]) * 0.7 + float(data["volume"]) / 10_000 * 0.3, 6)


def publish_leaderboard(db_path: str | None = None) -> str:
    """Score each featured token and publish the best one. Returns its symbol."""
    started = time.time()
    client = ApiClient()
    best: tuple[str, float] | None = None
    for token in FEATURED:
        value = score(client.get_pair(token))
        if best is None or value > best[1]:
            best = (token, value)
    client.close()
    assert best is not None
    conn = sqlite3.connect(db_path or settings.data_path("leaderboard.db"), timeout=30)
    conn.execute(_SCHEMA)
    conn.execute(
        "INSERT INTO leaderboard (published, worker, token, score, seconds) VALUES (?, ?, ?, ?, ?)",
        (started, os.getpid(), best[0], best[1], round(time.time() - started, 4)),
    )
    conn.commit()
    conn.close()
    return best[0]


def latest(db_path: str | None = None) -> dict[str, Any] | None:
    """The last leaderboard published, or None before the first."""
    conn = sqlite3.connect(db_path or settings.data_path("leaderboard.db"), timeout=30)
    try:
        conn.execute(_SCHEMA)
        row = conn.execute("SELECT published, token, score FROM leaderboard ORDER BY id DESC LIMIT 1").fetchone()
    finally:
        conn.close()
    return None if row is None else {"published": row[0], "token": row[1], "score": row[2]}
