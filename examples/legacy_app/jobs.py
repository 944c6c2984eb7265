"""Token scoring: every token of a tier, one after the other."""

from __future__ import annotations

import logging
import sqlite3

from legacy_app import settings
from legacy_app.client import ApiClient
from legacy_app.repository import TokenRepository

log = logging.getLogger("legacy_app.jobs")


def score(data: dict) -> float:
    return round(data["price"] * 0.7 + data["volume"] / 10_000 * 0.3, 6)


def update_scores(tier: str = "cold", db_path: str | None = None) -> int:
    """Fetch each token's pair data, score it and save it. Returns how many were saved."""
    conn = sqlite3.connect(db_path or settings.data_path("scores.db"))
    conn.execute("CREATE TABLE IF NOT EXISTS scores (token TEXT PRIMARY KEY, price REAL, score REAL)")
    repo = TokenRepository(conn)
    client = ApiClient()
    saved = 0
    for token in repo.tokens(tier):
        try:
            data = client.get_pair(token)
        except Exception as exc:
            log.warning("skipping %s: %s", token, exc)
            continue
        conn.execute("INSERT OR REPLACE INTO scores VALUES (?, ?, ?)", (token, data["price"], score(data)))
        conn.commit()
        saved += 1
    client.close()
    conn.close()
    return saved
