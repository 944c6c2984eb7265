"""The API client: loads a symbol's daily prices and hands them to the database it is given."""

import logging
import os

import requests

API = os.environ.get("REALWORLD_API", "https://www.alphavantage.co") + "/stocks/query"


class StockPriceAPIClient:
    def __init__(self, api_key):
        self.api_key = api_key
        self.session = requests.Session()
        self.logger = logging.getLogger("stocks.client")

    def load_symbol(self, symbol, db):
        response = self.session.get(API, params={"function": "TIME_SERIES_DAILY", "symbol": symbol,
                                                 "apikey": self.api_key}, timeout=10)
        series = response.json()["Time Series (Daily)"]
        self.logger.info("loaded %d days of %s", len(series), symbol)
        db.save_prices(symbol, [(day, float(v["4. close"])) for day, v in sorted(series.items())])
        return len(series)
