import logging

from pipeline.prices import open_db, store_prices

COINS = ["bitcoin", "ethereum", "solana", "chainlink", "dogecoin", "litecoin", "tron", "pepe", "msol",
         "terra-luna", "ripple", "weth", "tether"]

if __name__ == "__main__":
    logging.basicConfig(filename="pipeline.log", level=logging.INFO, format="%(levelname)s %(name)s %(message)s")
    conn = open_db()
    print("stored", store_prices(conn, COINS), "prices")
