import sqlite3


class Db:
    def __init__(self, path="stocks.db"):
        self.conn = sqlite3.connect(path)
        self.conn.execute("CREATE TABLE IF NOT EXISTS prices (symbol TEXT, day TEXT, close REAL)")

    def save_prices(self, symbol, rows):
        self.conn.executemany("INSERT INTO prices VALUES (?, ?, ?)", [(symbol, day, close) for day, close in rows])
        self.conn.commit()
