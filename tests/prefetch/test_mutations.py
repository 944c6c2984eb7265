"""Which per-item functions may run as a shadow: those that change no Python state the real
run reads (``_prefetch._mutations``). Each shape is a small function of ours, modelled on
the kind of program named in its test's docstring (none of their code)."""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import functools
import heapq
import inspect
import json
import logging
import os
import random
import sqlite3
import sys
import time
import types
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import requests

from sched_accel._prefetch._mutations import DEPTH, Verdict, mutations

HERE = Path(__file__).name
logger = logging.getLogger("app")
CACHE: dict[str, Any] = {}
COUNT = 0


def line_of(function: Callable[..., Any], text: str) -> int:
    """The file's line of the first line of ``function`` that contains ``text``."""
    lines, first = inspect.getsourcelines(function)
    return first + next(i for i, line in enumerate(lines) if text in line)


def refused(function: Callable[..., Any], *parts: str) -> Verdict:
    """Checks that ``function`` is refused with a one-line why holding every part."""
    verdict = mutations(function)
    assert not verdict.ok, verdict
    assert verdict.why is not None and "\n" not in verdict.why
    for part in parts:
        assert part in verdict.why, verdict.why
    return verdict


# -- fakes of libraries that are not installed: the check knows them by module name


aiosqlite = types.ModuleType("aiosqlite")


class _Connection:
    async def execute(self, sql: str, *args: Any) -> None: ...

    async def commit(self) -> None: ...

    async def __aenter__(self) -> _Connection:
        return self

    async def __aexit__(self, *exc: object) -> None: ...


def _connect(path: str) -> _Connection:
    return _Connection()


_connect.__module__ = "aiosqlite"
aiosqlite.connect = _connect  # type: ignore[attr-defined]


class Manager:
    def create(self, **fields: Any) -> Any:
        self.rows = fields  # the fake's own state: the check must not read this code
        return fields


Manager.__module__ = "django.db.models.manager"


class City:
    objects = Manager()


# -- shapes that change nothing the real run reads


class Tracker:
    """A scraper's per-item method: logs through self.logger, reads through self.session."""

    def __init__(self, session: requests.Session) -> None:
        self.logger = logging.getLogger("tracker")
        self.session = session
        self.defaults = {"format": "json"}

    def fetch(self, url: str) -> dict[str, Any]:
        self.logger.info("fetching %s", url)
        params = dict(self.defaults)
        params["page"] = "1"
        response = self.session.get(url, params=params, timeout=10)
        response.raise_for_status()
        data = response.json()
        data["fetched_at"] = time.time()
        logger.debug("got %s", urllib.parse.urlsplit(url).netloc)
        return self._shape(data)

    def _shape(self, data: dict[str, Any]) -> dict[str, Any]:
        out = {"id": data["id"], "tags": sorted(data.get("tags", []))}
        out["json"] = json.dumps(out)
        return out


class Store:
    """An async bot's per-item method that saves each answer to SQLite (issue 20, shape 5)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.cache: dict[str, Any] = {}
        self.client = httpx.AsyncClient()

    async def fetch(self, key: str) -> Any:
        response = await self.client.get(f"https://api.example/{key}")
        value = response.json()
        await self._update(key, value)
        return value

    async def _update(self, key: str, value: Any) -> None:
        async with aiosqlite.connect(self.path) as db:
            await db.execute("INSERT INTO answers VALUES (?, ?)", (key, json.dumps(value)))
            await db.commit()

    async def fetch_cached(self, key: str) -> Any:
        response = await self.client.get(f"https://api.example/{key}")
        await self._remember(key, response.json())

    async def _remember(self, key: str, value: Any) -> None:
        self.cache[key] = value


class Saver:
    """A cron job's per-item method that stores each record through a sqlite3 cursor."""

    def __init__(self, path: str) -> None:
        self.conn = sqlite3.connect(path)
        self.session = requests.Session()

    def fetch(self, record_id: int) -> Any:
        try:
            record = self.session.get(f"https://api.example/records/{record_id}").json()
        except requests.RequestException as error:
            logger.warning("skipped %s: %s", record_id, error)
            return None
        cursor = self.conn.cursor()
        cursor.execute("INSERT INTO records VALUES (?, ?)", (record_id, record["name"]))
        self.conn.commit()
        return cursor.fetchone()


def prints_progress(session: requests.Session, item: str) -> Any:
    print(f"fetching {item}...", flush=True)
    sys.stdout.write(".")
    return session.get(f"https://api.example/{item}").json()


def saves_city(name: str) -> Any:
    answer = requests.get("https://geo.example/search", params={"q": name}, timeout=5).json()
    return City.objects.create(name=name, lat=answer["lat"])


def posts_through_a_session(user: dict[str, Any]) -> Any:
    with requests.Session() as session:
        return session.post("https://api.example/graphql", json={"query": user["id"]}).json()


async def new_client_per_item(item: str) -> Any:
    async with httpx.AsyncClient() as client:
        response = await client.get(f"https://api.example/{item}")
        await asyncio.sleep(0)
        return response.json()


def builds_a_report(rows: list[dict[str, Any]], item: str) -> dict[str, Any]:
    counts: dict[str, int] = collections.Counter()
    report: dict[str, Any] = {"item": item, "rows": []}
    for row in requests.get(f"https://api.example/{item}").json():
        report["rows"].append({"name": row["name"]})
        counts[row["kind"]] += 1
    report.setdefault("total", len(rows))
    return report


def writes_a_file(item: str) -> None:
    with open(f"/tmp/{item}.json", "w") as file:
        file.write(json.dumps(requests.get(f"https://api.example/{item}").json()))


def weather_at(location: dict[str, Any]) -> dict[str, Any]:
    params = {"latitude": location["lat"], "longitude": location["lon"], "current": "temperature_2m"}
    answer = requests.get("https://weather.example/v1/forecast", params=params, timeout=10)
    answer.raise_for_status()
    data = answer.json()
    data["name"] = location["name"]
    return {"name": location["name"], "temperature": data["current"]["temperature_2m"]}


async def fetch_with(session: Any, url: str) -> Any:
    async with session.get(url) as response:
        response.raise_for_status()
        return json.loads(await response.text())


def walks_pages(session: requests.Session, url: str, depth: int = 0) -> list[Any]:
    page = session.get(url).json()
    rest = walks_pages(session, page["next"], depth + 1) if page.get("next") else []
    return [*page["items"], *rest]


# -- shapes that change what the real run reads


class Feed:
    """A feed poller that skips the URLs it has already seen."""

    def __init__(self) -> None:
        self.seen: set[str] = set()
        self.calls = 0

    def fetch(self, url: str) -> Any:
        if url in self.seen:
            return None
        self.seen.add(url)
        return requests.get(url).json()

    def counted(self, url: str) -> Any:
        self.calls += 1
        return requests.get(url).json()


def counts_globally(url: str) -> Any:
    global COUNT
    COUNT += 1
    return requests.get(url).json()


def caches_by_key(key: str) -> Any:
    if key in CACHE:
        return CACHE[key]
    data = requests.get(f"https://api.example/{key}").json()
    CACHE[key] = data
    return data


@functools.lru_cache(maxsize=128)
def token_for(user: str) -> str:
    return str(requests.post("https://auth.example/token", json={"user": user}).json()["token"])


def uses_a_cached_token(user: str) -> Any:
    return requests.get("https://api.example/me", headers={"Authorization": token_for(user)}).json()


def collects(url: str, results: list[Any]) -> None:
    results.append(requests.get(url).json())


def calls_back(url: str, on_item: Callable[[Any], None]) -> None:
    on_item(requests.get(url).json())


def marks_rows(rows: list[dict[str, Any]]) -> None:
    for row in rows:
        row["done"] = True


def bumps(counter: list[int]) -> None:
    counter[0] += 1


def defaults_shared(url: str, acc: list[Any] = []) -> list[Any]:  # noqa: B006 - the shape under test
    acc.append(url)
    return acc


def closes_over() -> Callable[[str], Any]:
    seen = 0

    def fetch(url: str) -> Any:
        nonlocal seen
        seen += 1
        return requests.get(url).json()

    return fetch


class Sink:
    """A writer handed in as a parameter, whose method keeps rows (issue 20, shape 5)."""

    def __init__(self) -> None:
        self.rows: list[Any] = []

    def write_row(self, row: Any) -> None:
        self.rows.append(row)


def writes_through(url: str, sink: Sink) -> None:
    sink.write_row(requests.get(url).json())


class Client:
    """An SDK client whose lookup counts its calls."""

    def __init__(self) -> None:
        self.hits = 0

    def lookup(self, key: str) -> Any:
        self.hits += 1
        return requests.get(f"https://api.example/{key}").json()


class UsesClient:
    def __init__(self, client: Any) -> None:
        self.client = client

    def fetch(self, key: str) -> Any:
        return self.client.lookup(key)


class Base:
    def fetch(self, url: str) -> Any:
        data = requests.get(url).json()
        self._keep(data)
        return data

    def _keep(self, data: Any) -> None:
        pass


class Keeper(Base):
    def __init__(self) -> None:
        self.kept: list[Any] = []

    def _keep(self, data: Any) -> None:
        self.kept.append(data)


class Buckets:
    def __init__(self) -> None:
        self.by_kind: dict[str, list[Any]] = {}

    def _bucket(self, kind: str) -> list[Any]:
        return self.by_kind[kind]

    def fetch(self, url: str, kind: str) -> None:
        self._bucket(kind).append(requests.get(url).json())

    def _fresh(self, data: Any) -> dict[str, Any]:
        return {"data": data}

    def shaped(self, url: str) -> Any:
        out = self._fresh(requests.get(url).json())
        out["at"] = time.time()
        return out


class Token:
    @functools.cached_property
    def token(self) -> str:
        return str(requests.post("https://auth.example/token").json()["token"])

    def fetch(self, url: str) -> Any:
        return requests.get(url, headers={"Authorization": self.token}).json()


class Registry:
    known: set[str] = set()

    @classmethod
    def lookup(cls, name: str) -> Any:
        return requests.get(f"https://api.example/{name}").json() if name in cls.known else None

    @classmethod
    def register(cls, name: str) -> None:
        cls.known.add(name)

    @staticmethod
    def normalise(names: list[str]) -> list[str]:
        names.append("")
        return names


def pushes(heap: list[Any], url: str) -> None:
    heapq.heappush(heap, requests.get(url).json()["rank"])


def jitters(url: str) -> Any:
    time.sleep(random.random())
    return requests.get(url).json()


def sets_env(url: str) -> Any:
    os.environ["LAST_URL"] = url
    return requests.get(url).json()


def deep(level: int) -> None:
    if level:
        deeper(level - 1)


def deeper(level: int) -> None:
    deepest(level)


def deepest(level: int) -> None:
    CACHE["level"] = level


def chain(n: int, directory: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[], None]:
    """A module of ``n + 1`` functions, each calling the next (the last one reads)."""
    module = types.ModuleType(f"chain_{n}")
    module.__file__ = str(directory / f"chain_{n}.py")
    source = "\n".join(f"def f{i}():\n    return f{i + 1}()" for i in range(n)) + f"\ndef f{n}():\n    return 1\n"
    Path(module.__file__).write_text(source)
    monkeypatch.setitem(sys.modules, module.__name__, module)
    exec(compile(source, module.__file__, "exec"), vars(module))
    return vars(module)["f0"]  # type: ignore[no-any-return]


# -- tests


@pytest.mark.parametrize(
    "function",
    [
        Tracker.fetch,
        Store.fetch,
        Saver.fetch,
        prints_progress,
        saves_city,
        posts_through_a_session,
        new_client_per_item,
        builds_a_report,
        writes_a_file,
        walks_pages,
        weather_at,
        fetch_with,
    ],
    ids=lambda f: f.__qualname__,
)
def test_functions_that_change_nothing_of_the_apps_may_be_shadowed(function: Callable[..., Any]) -> None:
    """Logging, reads, requests of any method, ORM and SQLite writes, prints, files, own objects: ok."""
    assert mutations(function) == Verdict(True)


def test_a_tracker_method_that_logs_and_reads_through_self() -> None:
    """A scraper's method logging via self.logger and reading via self.session.get is ok."""
    assert mutations(Tracker(requests.Session()).fetch).ok


def test_an_await_of_a_method_that_writes_sqlite_is_the_run_times_business() -> None:
    """An async bot's ``await self._update(...)`` writing aiosqlite is ok: the run time stops it."""
    assert mutations(Store.fetch).ok


def test_an_await_of_a_method_that_fills_a_cache_is_refused_naming_it() -> None:
    """The same bot's ``_update`` storing ``self.cache[k]`` is refused, with its line and the chain."""
    verdict = refused(Store.fetch_cached, "stores self.cache[key]", "in Store._remember called from Store.fetch_cached")
    assert (verdict.file, verdict.line) == (__file__, line_of(Store._remember, "self.cache[key] = value"))
    assert (
        verdict.why
        == f"stores self.cache[key] ({HERE}:{verdict.line}, in Store._remember called from Store.fetch_cached)"
    )


def test_a_dedupe_set_is_refused() -> None:
    """A feed poller's ``self.seen.add(url)`` would make the real call skip its item."""
    refused(
        Feed.fetch, "calls self.seen.add", "which changes self.seen", f"{HERE}:{line_of(Feed.fetch, 'self.seen.add')}"
    )


def test_counters_are_refused() -> None:
    """``self.calls += 1`` and ``global COUNT; COUNT += 1`` (a job's progress counter) are refused."""
    refused(Feed.counted, "updates self.calls")
    refused(counts_globally, "updates the global COUNT", f":{line_of(counts_globally, 'COUNT += 1')},")
    refused(closes_over(), "updates the closure variable seen")


def test_a_module_level_cache_dict_is_refused() -> None:
    """An API wrapper's ``CACHE[key] = data``, which the loop's next item would hit, is refused."""
    refused(caches_by_key, "stores CACHE[key]")


def test_an_lru_cache_is_refused() -> None:
    """A cached token getter: two shadows could both miss and request twice, so it is refused."""
    refused(uses_a_cached_token, "calls token_for", "whose cache a shadow would fill")
    refused(token_for, "caches its results (functools.lru_cache)")


def test_a_cached_property_is_refused() -> None:
    """A client that logs in once into a cached_property: a shadow would log in for the real run."""
    refused(Token.fetch, "reads self.token", "cached_property")


@pytest.mark.parametrize(
    ("function", "why"),
    [
        (collects, "calls results.append"),
        (marks_rows, "stores row['done']"),
        (bumps, "updates counter[0]"),
        (defaults_shared, "calls acc.append"),
        (pushes, "calls heapq.heappush"),
        (sets_env, "stores os.environ['LAST_URL']"),
    ],
    ids=lambda v: getattr(v, "__name__", ""),
)
def test_changes_to_what_was_passed_in_or_shared_are_refused(function: Callable[..., Any], why: str) -> None:
    """An exporter appending to the list it was given, marking rows, a shared default: refused."""
    refused(function, why)


def test_a_callback_parameter_cannot_be_followed() -> None:
    """A crawler calling ``on_item(x)`` it was handed is refused: the callback could do anything."""
    refused(calls_back, "calls on_item", "a parameter, which could not be followed")


def test_a_parameters_method_is_followed_by_its_annotation() -> None:
    """``sink: Sink`` leads to ``Sink.write_row``, which appends to its rows (issue 20, shape 5)."""
    refused(writes_through, "calls self.rows.append", "in Sink.write_row called from writes_through")


def test_a_method_of_an_attribute_of_unknown_type_cannot_be_followed() -> None:
    """``self.client.lookup`` on a client of unknown type is refused; known from the instance, followed."""
    refused(UsesClient.fetch, "calls self.client.lookup", "which could not be followed")
    refused(UsesClient(Client()).fetch, "updates self.hits", "in Client.lookup called from UsesClient.fetch")


def test_a_subclass_override_is_followed_unless_the_instance_is_known() -> None:
    """``self._keep`` on ``Base.fetch`` may be ``Keeper._keep``, which appends; a Base instance's is not."""
    refused(Base.fetch, "calls self.kept.append", "in Keeper._keep called from Base.fetch")
    assert mutations(Base().fetch).ok


def test_what_a_helper_returns_is_tracked() -> None:
    """A helper's own new dict may be changed; the shared list it returns may not."""
    refused(Buckets.fetch, "calls self._bucket(kind).append")
    assert mutations(Buckets.shaped).ok


def test_a_draw_from_the_shared_random_generator_is_refused() -> None:
    """A jittered poller's ``random.random()`` would change the numbers the real run draws."""
    refused(jitters, "calls random.random", "shared generator")


def test_calls_are_followed_to_the_depth_bound(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Module functions are followed (here 2 calls deep); a chain longer than DEPTH is refused."""
    refused(deep, "stores CACHE['level']", "in deepest called from deeper called from deep")
    assert mutations(chain(DEPTH, tmp_path, monkeypatch)).ok
    refused(chain(DEPTH + 1, tmp_path, monkeypatch), f"past the {DEPTH} calls", "in f5 called from f4")


def test_wrappers_are_unwrapped() -> None:
    """A decorator's wrapper, a partial, a bound, static or class method: the function under it is read."""

    def logged(function: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(function)
        def wrapper(*args: Any) -> Any:
            return function(*args)

        return wrapper

    refused(logged(Feed.fetch), "self.seen.add")
    refused(functools.partial(collects, "https://a.example"), "results.append")
    assert mutations(functools.partial(Tracker.fetch, Tracker(requests.Session()))).ok
    assert mutations(staticmethod(walks_pages)).ok  # type: ignore[arg-type]


def test_static_and_class_methods_are_read() -> None:
    """A class method's ``cls`` and a static method's plain parameters are followed like any."""
    assert mutations(Registry.lookup).ok
    refused(Registry.register, "calls cls.known.add")
    refused(Registry.normalise, "calls names.append")


def test_code_the_check_did_not_foresee_is_refused_not_raised() -> None:
    """An object whose attributes raise is refused with the error, never raised to the caller."""

    class Odd:
        def __getattr__(self, name: str) -> Any:
            raise RuntimeError(name)

        def __call__(self, item: str) -> Any:
            return item

    verdict = mutations(Odd())
    assert not verdict.ok and "could not be checked (RuntimeError" in (verdict.why or "")


def test_without_source_nothing_is_shadowed() -> None:
    """A C function or a lambda typed at a prompt cannot be read, so it is refused."""
    assert "cannot be read" in (mutations(len).why or "")
    assert not mutations(eval("lambda url: url")).ok


def test_a_verdict_is_computed_once_per_function() -> None:
    """A second check of the same function is a cache hit: the same Verdict object."""
    assert mutations(Tracker.fetch) is mutations(Tracker.fetch)


def test_a_dataclass_item_built_in_the_function_is_its_own() -> None:
    """A dataclass made per item (its generated __init__ has no source) and filled in is fine."""
    assert mutations(makes_an_item).ok


@dataclasses.dataclass
class Item:
    name: str
    tags: list[str] = dataclasses.field(default_factory=list)


def makes_an_item(name: str) -> Item:
    item = Item(name)
    item.tags.append(requests.get(f"https://api.example/{name}").json()["tag"])
    return item
