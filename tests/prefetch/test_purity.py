"""Which per-item functions are run ahead: only those whose code writes nothing (``_purity``)."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from sched_accel._prefetch._purity import writes

CACHE: dict[str, int] = {}
RESULTS: list[int] = []
LIMIT = 10
logger = logging.getLogger("app")


def reads(client: Any, token: str) -> Any:
    answer = client.get(f"/item/{token}", params={"limit": LIMIT})
    data = answer.json()
    out = {"token": token}
    out["value"] = data["value"]  # its own dict
    rows = []
    rows.append(out)
    return rows


def prints(client: Any, token: str) -> Any:
    data = client.get(f"/item/{token}").json()
    print("fetched", token)
    return data


def logs(client: Any, token: str) -> Any:
    logger.info("fetching %s", token)
    return client.get(f"/item/{token}").json()


def commits(db: Any, client: Any, token: str) -> Any:
    data = client.get(f"/item/{token}").json()
    db.execute("INSERT INTO t VALUES (?)", (data["value"],))
    return data


def caches(client: Any, token: str) -> Any:
    CACHE[token] = client.get(f"/item/{token}").json()["value"]
    return CACHE[token]


def appends(client: Any, token: str) -> Any:
    RESULTS.append(client.get(f"/item/{token}").json()["value"])


def reads_state(client: Any, token: str) -> Any:
    return client.get(f"/item/{token}").json()["value"] + CACHE.get(token, 0)


def posts(client: Any, token: str) -> Any:
    return client.post(f"/item/{token}").json()


def declares_global(token: str) -> Any:
    global LIMIT
    LIMIT = 3
    return token


def writes_a_file(token: str) -> Any:
    with open(f"/tmp/{token}", "w") as file:
        file.write(token)


def reads_a_file(token: str) -> Any:
    with open(f"/tmp/{token}") as file:
        return file.read()


def calls_a_writer(client: Any, token: str) -> Any:
    return prints(client, token)


class Api:
    def __init__(self) -> None:
        self.count = 0

    def get(self, token: str) -> Any:
        return {"token": token}

    def counting(self, token: str) -> Any:
        self.count += 1
        return {"token": token}


@pytest.mark.parametrize("function", [reads, reads_a_file, Api.get], ids=lambda f: f.__qualname__)
def test_functions_that_only_read(function: Any) -> None:
    assert writes(function) is None


@pytest.mark.parametrize(
    ("function", "reason"),
    [
        (prints, "calls print()"),
        (logs, "logs (logger.info)"),
        (commits, "calls db.execute(), which writes"),
        (caches, "assigns to CACHE[token]"),
        (appends, "calls RESULTS.append(), which writes"),
        (reads_state, "reads the module-level dict CACHE"),
        (posts, "calls client.post(), which writes"),
        (declares_global, "declares global LIMIT"),
        (writes_a_file, "opens a file for writing"),
        (calls_a_writer, "calls prints, which calls print()"),
        (Api.counting, "assigns to self.count"),
    ],
    ids=lambda v: v.__qualname__ if callable(v) else "",
)
def test_functions_that_write(function: Any, reason: str) -> None:
    """Each names what it found, and the line (to look at before saying pure = true)."""
    found = writes(function)
    assert found is not None and found.startswith(reason), found
    assert "(line " in found


def test_a_function_without_source_is_not_called_pure() -> None:
    assert writes(len) == "its source cannot be read, so what it does cannot be checked"
    assert writes(eval("lambda token: token")) is not None
