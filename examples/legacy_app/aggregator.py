"""Market data for the prediction model: two or three API calls per market."""

from __future__ import annotations

from typing import Any

import httpx

from legacy_app import settings


class MarketAggregator:
    def __init__(self, base_url: str | None = None) -> None:
        self.http = httpx.AsyncClient(base_url=base_url or settings.UPSTREAM_URL, timeout=30)

    async def _get(self, path: str) -> dict[str, Any]:
        response = await self.http.get(path)
        response.raise_for_status()
        return response.json()

    async def snapshot(self, market: str) -> dict[str, Any]:
        """Ticker and depth for a market, and the funding rate for a perpetual."""
        data = {"ticker": await self._get(f"/markets/{market}/ticker")}
        data["depth"] = await self._get(f"/markets/{market}/depth")
        if market.endswith("-PERP"):
            data["funding"] = await self._get(f"/markets/{market}/funding")
        return data

    async def aclose(self) -> None:
        await self.http.aclose()
