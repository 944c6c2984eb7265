"""The status code of each of a list of URLs, with httpx, a new AsyncClient per request.

Modelled on NicholasBallard/tempo (try.py): ``get_async(url)`` opens an ``httpx.AsyncClient``
for one GET; ``launch`` runs it over a list of URLs and prints each status code. Ours awaits
the URLs one after the other in a for loop and does not print the elapsed time (it differs
from run to run); the URLs live under REALWORLD_API.
Shape: async; httpx with a new AsyncClient per item.
"""

import asyncio
import os

import httpx

BASE = os.environ.get("REALWORLD_API", "https://webcode.me") + "/pages/"
URLS = [BASE + slug for slug in ["index", "get", "google", "stackoverflow", "github", "missing", "docs", "api",
                                 "news", "jobs"]]


async def get_async(url):
    async with httpx.AsyncClient() as client:
        return await client.get(url)


async def launch(urls):
    codes = []
    for url in urls:
        response = await get_async(url)
        codes.append(response.status_code)
    for status_code in codes:
        print(status_code)
    return codes


if __name__ == "__main__":
    asyncio.run(launch(URLS))
