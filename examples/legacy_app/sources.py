"""The two price sources of the collector, each with its own limits.

Source A (prices) allows 3 requests at once; source B (coin info) one request every 0.5 s.
A 429 or 503 is retried after its Retry-After (plus jitter), up to 10 times, as the vendor's docs say.
"""

from __future__ import annotations

import random
import time
from typing import Any

import httpx

from legacy_app import settings

ATTEMPTS = 10


def _get(url: str) -> dict[str, Any]:
    for attempt in range(ATTEMPTS):
        response = httpx.get(url, timeout=30)
        if response.status_code in (429, 503) and attempt < ATTEMPTS - 1:
            time.sleep(float(response.headers.get("Retry-After", "1")) * (1 + random.random() / 2))
            continue
        response.raise_for_status()
        return response.json()
    raise AssertionError("unreachable")


def fetch_coin(coin: str) -> dict[str, Any]:
    """A coin's price (source A) and supply and rank (source B)."""
    price = _get(f"{settings.UPSTREAM_URL}/a/price/{coin}")
    info = _get(f"{settings.SOURCE_B_URL}/b/info/{coin}")
    return {"coin": coin, "usd": price["usd"], "supply": info["supply"], "rank": info["rank"]}
