"""A team's hand-written parallel version of legacy_app.jobs.update_scores (replace mode).

The fetches run in a thread pool; the scoring and the SQLite writes stay in the caller's
thread, in the original order, so the rows are the same as the sequential loop's.
"""

from __future__ import annotations

import logging
import sqlite3
from concurrent.futures import ThreadPoolExecutor

from legacy_app import settings
from legacy_app.client import ApiClient
from legacy_app.jobs import score
from legacy_app.repository import TokenRepository

log = logging.getLogger("legacy_app.jobs")


def update_scores(tier: str = "cold", db_path: str | None = None) -> int:
    db_path = db_path or settings.data_path("scores.db")
    with sqlite3.connect(db_path) as catalogue:
        tokens = TokenRepository(catalogue).tokens(tier)
    client = ApiClient()

    def fetch(token: str) -> tuple[str, dict | None, Exception | None]:
        try:
            return token, client.get_pair(token), None
        except Exception as exc:
            return token, None, exc

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(fetch, tokens))
    client.close()
    conn = sqlite3.connect(db_path)
    conn.execute("CREATE TABLE IF NOT EXISTS scores (token TEXT PRIMARY KEY, price REAL, score REAL)")
    saved = 0
    for token, data, exc in results:
        if exc is not None or data is None:
            log.warning("skipping %s: %s", token, exc)
            continue
        conn.execute("INSERT OR REPLACE INTO scores VALUES (?, ?, ?)", (token, data["price"], score(data)))
        conn.commit()
        saved += 1
    conn.close()
    return saved
