"""Titles and sizes of a list of pages, fetched with aiohttp, a new session per page.

Modelled on Hinkalina/Notes (notes/async.py): ``fetch_url`` opens an ``aiohttp.ClientSession``
for each URL and returns the page's text; ``main`` runs it over a list of URLs. Ours awaits the
pages one after the other in a for loop (as such notes' sequential variants do), writes each
page's title and word count to ``pages.tsv`` and prints them; the pages live under REALWORLD_API.
Shape: async; aiohttp with a new ClientSession per item; a file written.
"""

import asyncio
import os
import re

import aiohttp

BASE = os.environ.get("REALWORLD_API", "https://www.example.com") + "/pages/"
SLUGS = ["home", "about", "pricing", "blog", "careers", "missing", "docs", "contact", "press", "legal", "status",
         "changelog"]


async def fetch_url(url):
    async with aiohttp.ClientSession() as session:
        async with session.get(url) as response:
            return response.status, await response.text()


async def crawl(urls):
    rows = []
    for url in urls:
        status, html = await fetch_url(url)
        title = re.search(r"<title>(.*?)</title>", html)
        words = len(re.sub(r"<[^>]+>", " ", html).split())
        rows.append(f"{url.rsplit('/', 1)[1]}\t{status}\t{title.group(1) if title else '-'}\t{words}")
        print(rows[-1])
    with open("pages.tsv", "w") as out:
        out.write("\n".join(rows) + "\n")
    return len(rows)


if __name__ == "__main__":
    print(asyncio.run(crawl([BASE + slug for slug in SLUGS])), "pages")
