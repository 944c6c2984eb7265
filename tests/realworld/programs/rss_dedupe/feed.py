"""Collect several RSS feeds into one SQLite table and one aggregate feed, each story once.

Modelled on er0k/feeds (feed.py): create the SQLite database and the ``feeds`` table, insert
each feed entry unless it is already there, and write ``feeds.rss`` with all of them, newest
first. Ours parses the XML with the standard library, fetches through one requests Session
with its own User-Agent, and skips a story already seen in this run (aggregators repeat each
other) with a set kept on the aggregator; the feeds live under REALWORLD_API.
Shape: a dedupe set; the loop writes SQLite and a file.
"""

import email.utils
import os
import sqlite3
import xml.etree.ElementTree as ET

import requests

BASE = os.environ.get("REALWORLD_API", "https://feeds.example") + "/feeds/"
FEEDS = ["hn-frontpage", "lobsters", "lwn", "python-insider", "pycoders", "realpython", "planet-python",
         "golang-blog", "rust-blog", "kernel-news"]


class Aggregator:
    def __init__(self, path="feeds.db"):
        self.db = sqlite3.connect(path)
        self.db.execute("CREATE TABLE IF NOT EXISTS feeds (feed TEXT, title TEXT, link TEXT UNIQUE, published TEXT)")
        self.session = requests.Session()
        self.session.headers["User-Agent"] = "er0k-feeds/1.0 (+cron)"
        self.seen = set()

    def run(self, feeds):
        new = 0
        for name in feeds:
            xml = self.session.get(BASE + name + ".xml", timeout=10).text
            for item in ET.fromstring(xml).iter("item"):
                link = item.findtext("link")
                if link in self.seen:
                    continue
                self.seen.add(link)
                published = email.utils.parsedate_to_datetime(item.findtext("pubDate")).isoformat()
                self.db.execute("INSERT OR IGNORE INTO feeds VALUES (?, ?, ?, ?)",
                                (name, item.findtext("title"), link, published))
                new += 1
            self.db.commit()
            print(f"{name}: {len(self.seen)} stories so far")
        return new

    def write_rss(self, path="feeds.rss"):
        rows = self.db.execute("SELECT title, link, published FROM feeds ORDER BY published DESC, link").fetchall()
        items = "".join(f"<item><title>{t}</title><link>{l}</link><pubDate>{p}</pubDate></item>" for t, l, p in rows)
        with open(path, "w") as out:
            out.write(f'<?xml version="1.0"?><rss version="2.0"><channel><title>feeds</title>{items}</channel></rss>\n')


if __name__ == "__main__":
    aggregator = Aggregator()
    print(aggregator.run(FEEDS), "new stories")
    aggregator.write_rss()
