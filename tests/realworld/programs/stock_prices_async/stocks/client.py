"""The async API client: loads a symbol's daily prices and stores them through aiosqlite."""

import logging
import os

import httpx

API = os.environ.get("REALWORLD_API", "https://www.alphavantage.co") + "/stocks/query"


class AsyncStockPriceAPIClient:
    def __init__(self, api_key, http, db):
        self.api_key = api_key
        self.http = http
        self.db = db
        self.logger = logging.getLogger("stocks.client")

    async def _update(self, symbol, rows):
        await self.db.executemany("INSERT INTO prices VALUES (?, ?, ?)", [(symbol, day, close) for day, close in rows])
        await self.db.commit()

    async def load_symbol(self, symbol):
        response = await self.http.get(API, params={"function": "TIME_SERIES_DAILY", "symbol": symbol,
                                                    "apikey": self.api_key})
        series = response.json()["Time Series (Daily)"]
        self.logger.info("loaded %d days of %s", len(series), symbol)
        await self._update(symbol, [(day, float(v["4. close"])) for day, v in sorted(series.items())])
        return len(series)
