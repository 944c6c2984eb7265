"""Coin prices from CoinGecko into SQLite, one request per coin.

Modelled on Toxicsociety/crypto_price_pipeline (main.py): fetch current coin prices from the
CoinGecko API, clean the JSON and save each price with its time to ``crypto_prices.db``. Ours
asks for one coin id per request through ``requests.get`` (a new connection each time), logs
each row through the stdlib's logging to ``pipeline.log``, and stores the API's
``last_updated_at`` as the row's time. A delisted id is missing from CoinGecko's answer, and
the script, like many, then dies with a KeyError after the rows before it were committed.
Shape: the loop writes SQLite; a new client per call; the loop stops early on an exception.
"""

import logging
import os
import sqlite3

import requests

API = os.environ.get("REALWORLD_API", "https://api.coingecko.com") + "/coingecko/api/v3/simple/price"
log = logging.getLogger("pipeline.prices")


def open_db(path="crypto_prices.db"):
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE IF NOT EXISTS crypto_prices (coin TEXT, price_usd REAL, updated_at INTEGER)")
    return conn


def store_prices(conn, coins):
    stored = 0
    for coin in coins:
        response = requests.get(API, params={"ids": coin, "vs_currencies": "usd", "include_last_updated_at": "true"},
                                timeout=15)
        response.raise_for_status()
        data = response.json()[coin]
        conn.execute("INSERT INTO crypto_prices VALUES (?, ?, ?)", (coin, data["usd"], data["last_updated_at"]))
        conn.commit()
        log.info("stored %s at %s", coin, data["usd"])
        stored += 1
    return stored
