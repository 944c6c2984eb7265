"""Daily closing prices of a watchlist into SQLite, through an API client class that writes
through the database object it is handed.

Modelled on richwandell/stock-data (utils/api/StockPriceAPIClient.py): a ``StockPriceAPIClient``
built around the app's ``Db``, whose ``load_symbol(symbol)`` loads a symbol's prices from a
stock price API into the database. Ours gives the client a logger of its own
(``self.logger``) and passes the database to ``load_symbol(symbol, db)``, which writes through
``db.save_prices``; a user names that method as the target's ``fetch`` (the README's "the slow
call it makes per item"); the API's address comes from REALWORLD_API.
Shape: a class method as fetch that logs through self.logger and writes through a parameter's
method (issue 20, item 5).
"""

import logging

from stocks.client import StockPriceAPIClient
from stocks.db import Db

SYMBOLS = ["AAPL", "MSFT", "GOOG", "AMZN", "NVDA", "META", "TSLA", "IBM", "ORCL", "SAP", "ASML", "INTC"]


def update_all(client, db, symbols):
    days = 0
    for symbol in symbols:
        days += client.load_symbol(symbol, db)
    return days


if __name__ == "__main__":
    logging.basicConfig(filename="stocks.log", level=logging.INFO, format="%(levelname)s %(name)s %(message)s")
    print(update_all(StockPriceAPIClient("demo-key"), Db(), SYMBOLS), "days stored")
