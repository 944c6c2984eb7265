"""Daily closing prices of a watchlist into SQLite, async: httpx and aiosqlite, through an API
client class whose per-symbol method logs and awaits its own database write.

Modelled on richwandell/stock-data (utils/api/StockPriceAPIClient.py), as an async port: a stock
price API client built around the app's database, whose ``load_symbol(symbol)`` loads a symbol's
prices into it. Ours holds an ``httpx.AsyncClient`` and an aiosqlite connection, logs through
``self.logger`` and awaits ``self._update(...)`` to store the rows; a user names
``load_symbol`` as the target's ``fetch``; the API's address comes from REALWORLD_API.
Shape: an async class method as fetch that logs and awaits a write of its own (issue 20, item 5).
"""

import asyncio
import logging

import aiosqlite
import httpx

from stocks.client import AsyncStockPriceAPIClient

SYMBOLS = ["AAPL", "MSFT", "GOOG", "AMZN", "NVDA", "META", "TSLA", "IBM", "ORCL", "SAP", "ASML", "INTC"]


async def update_all(client, symbols):
    days = 0
    for symbol in symbols:
        days += await client.load_symbol(symbol)
    return days


async def main():
    async with aiosqlite.connect("stocks.db") as db, httpx.AsyncClient(timeout=10) as http:
        await db.execute("CREATE TABLE IF NOT EXISTS prices (symbol TEXT, day TEXT, close REAL)")
        print(await update_all(AsyncStockPriceAPIClient("demo-key", http, db), SYMBOLS), "days stored")


if __name__ == "__main__":
    logging.basicConfig(filename="stocks.log", level=logging.INFO, format="%(levelname)s %(name)s %(message)s")
    asyncio.run(main())
