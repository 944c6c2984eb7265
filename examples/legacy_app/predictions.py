"""Prediction generation, started by cron: ``python -m legacy_app.predictions``.

The markets come from the listings file, filtered (active only) and de-duplicated (the
exchange lists some markets under two names); each market's data is aggregated and one
prediction is written through its own session. The run must end before the next cron start.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import sys
import time

from legacy_app import settings
from legacy_app.aggregator import MarketAggregator
from legacy_app.db import AsyncSession

log = logging.getLogger("legacy_app.predictions")

#: The exchange's listings as the app receives them (aliases, delisted markets and all).
LISTINGS = [
    {"symbol": s, "status": "delisted" if s in ("LUNA-USD", "FTT-USD", "LUNA-PERP") else "active"}
    for s in (
        "BTC-USD",
        "ETH-USD",
        "SOL-USD",
        "btc-usd",
        "LUNA-USD",
        "ADA-USD",
        "XRP-USD",
        "DOT-USD",
        "BTC-PERP",
        "ETH-PERP",
        "FTT-USD",
        "SOL-PERP",
        "eth-usd",
        "AVAX-USD",
        "LINK-USD",
        "LUNA-PERP",
        "ATOM-USD",
        "DOGE-PERP",
        "MATIC-USD",
        "NEAR-USD",
        "ARB-PERP",
        "OP-USD",
        "sol-perp",
        "APT-USD",
        "BNB-USD",
        "TRX-USD",
    )
]


def predict(data: dict) -> tuple[float, str]:
    ticker, depth = data["ticker"], data["depth"]
    imbalance = (depth["bid_size"] - depth["ask_size"]) / (depth["bid_size"] + depth["ask_size"] or 1)
    signal = ticker["change"] * 0.6 + imbalance * 0.4 - data.get("funding", {}).get("rate", 0.0) * 10
    return round(signal, 8), "up" if signal > 0 else "down"


def _ensure_table(db_path: str) -> None:
    with sqlite3.connect(db_path) as conn:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS predictions (market TEXT PRIMARY KEY, last REAL, signal REAL, direction TEXT)"
        )


async def generate_predictions(db_path: str | None = None) -> int:
    """One prediction per active market. Returns how many were written."""
    db_path = db_path or settings.data_path("predictions.db")
    _ensure_table(db_path)
    markets = list(dict.fromkeys(m["symbol"].upper() for m in LISTINGS if m["status"] == "active"))
    aggregator = MarketAggregator()
    written = 0
    try:
        for market in markets:
            try:
                data = await aggregator.snapshot(market)
            except Exception as exc:
                log.warning("no prediction for %s: %s", market, exc)
                continue
            signal, direction = predict(data)
            async with AsyncSession(db_path) as session:
                await session.execute(
                    "INSERT OR REPLACE INTO predictions VALUES (?, ?, ?, ?)",
                    (market, data["ticker"]["last"], signal, direction),
                )
                await session.commit()
            written += 1
    finally:
        await aggregator.aclose()
    return written


async def main(db_path: str | None = None) -> int:
    return await asyncio.wait_for(generate_predictions(db_path), settings.PREDICTION_DEADLINE_SECONDS)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    started = time.perf_counter()
    written = asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else None))
    print(f"written={written} seconds={time.perf_counter() - started:.3f}")
