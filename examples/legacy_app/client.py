"""The API client, as legacy code has it: one blocking call per token."""

from __future__ import annotations

from typing import Any

import httpx

from legacy_app import settings


class ApiClient:
    def __init__(self, base_url: str | None = None) -> None:
        self.base_url = base_url or settings.UPSTREAM_URL
        self.http = httpx.Client(base_url=self.base_url, timeout=30)

    def get_pair(self, token: str) -> dict[str, Any]:
        response = self.http.get(f"/pair/{token}")
        response.raise_for_status()
        return response.json()

    def close(self) -> None:
        self.http.close()
