"""The scheduled job: score every token, one after the other."""

from __future__ import annotations

import logging
import sqlite3

from legacy_app.client import ApiClient

log = logging.getLogger("legacy_app.jobs")

TOKENS = [f"TOKEN{i:03d}" for i in range(70)]


def score(data: dict) -> float:
    return round(data["price"] * 0.7 + data["volume"] / 10_000 * 0.3, 6)


def update_scores(tokens: list[str], client: ApiClient, db_path: str) -> int:
    """Fetch each token's pair data, score it and save it. Returns how many were saved."""
    conn = sqlite3.connect(db_path)
    conn.execute("CREATE TABLE IF NOT EXISTS scores (token TEXT PRIMARY KEY, price REAL, score REAL)")
    saved = 0
    for token in tokens:
        try:
            data = client.get_pair(token)
        except Exception as exc:
            log.warning("skipping %s: %s", token, exc)
            continue
        conn.execute(
            "INSERT OR REPLACE INTO scores VALUES (?, ?, ?)", (token, data["price"], score(data))
        )
        conn.commit()
        saved += 1
    conn.close()
    return saved
