"""Collection: price and supply of the tracked coins, written to a JSON snapshot."""

from __future__ import annotations

import json
import logging
import time

from legacy_app import settings
from legacy_app.sources import fetch_coin

log = logging.getLogger("legacy_app.collection")

COINS = ["BTC", "ETH", "SOL", "ADA", "XRP", "DOT", "AVAX", "LINK", "ATOM", "DOGE", "NEAR"]


def collect_prices(out_path: str | None = None) -> int:
    """Fetch every coin, pausing between coins to stay under source B's limit."""
    snapshot = {}
    for coin in COINS:
        try:
            snapshot[coin] = fetch_coin(coin)
        except Exception as exc:
            log.warning("no data for %s: %s", coin, exc)
        time.sleep(settings.COLLECT_PAUSE_SECONDS)
    with open(out_path or settings.data_path("coins.json"), "w") as file:
        json.dump(snapshot, file, indent=1, sort_keys=True)
    return len(snapshot)
