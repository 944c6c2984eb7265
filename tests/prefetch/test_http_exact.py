"""Templates made exact (``_requests``, ``_templates``), against the real local server: each
loop runs unpatched, then patched, and the server's count of every URL (its raw request
target, byte for byte) must be the same.

- item values wherever they sit: dicts of floats, tuples, namedtuples, dataclasses, slotted
  objects, attributes two levels deep;
- values the client encodes (``New York`` is ``New+York`` in ``params``, ``New%20York`` in a
  path), through httpx, requests, urllib and aiohttp;
- a short value inside a path segment (``A0`` in ``/A0USD/``);
- a template fans out only once it predicted the loop's own next request, and retires at its
  first miss;
- a new client per call (``requests.get``, ``httpx.get``) gets the whole window.
"""

from __future__ import annotations

import contextlib
import importlib
import io
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from ..conftest import App
from ..faultserver import FaultServer
from .test_prefetch_shapes import install, run_line


@pytest.fixture
def server() -> Iterator[FaultServer]:
    with FaultServer(latency=0.02) as running:
        yield running


JOBS = """
    import json
    import urllib.parse
    import urllib.request
    from collections import namedtuple
    from dataclasses import dataclass

    import httpx
    import requests

    Point = namedtuple("Point", "name lat lon")


    @dataclass
    class Place:
        name: str
        lat: float
        lon: float


    class Slotted:
        __slots__ = ("name", "lat", "lon")

        def __init__(self, name, lat, lon):
            self.name, self.lat, self.lon = name, lat, lon


    class Located:  # the coordinates two levels deep
        def __init__(self, name, lat, lon):
            self.name = name
            self.where = Place(name, lat, lon)


    def coords(loc):
        if isinstance(loc, dict):
            return loc["lat"], loc["lon"]
        if isinstance(loc, Located):
            return loc.where.lat, loc.where.lon
        if type(loc) is tuple:
            return loc[1], loc[2]
        return loc.lat, loc.lon


    def forecast(base, locations):
        # open-meteo's shape: floats of the item as query parameters, through one session
        out = []
        with requests.Session() as session:
            for loc in locations:
                lat, lon = coords(loc)
                answer = session.get(f"{base}/item/forecast", params={"latitude": lat, "longitude": lon})
                out.append(answer.json()["value"])
        return out


    def weather_httpx(base, cities):
        with httpx.Client() as client:
            return [client.get(f"{base}/item/weather", params={"q": city, "units": "metric"}).json()["value"] for city in cities]


    def weather_requests(base, cities):
        with requests.Session() as session:
            return [session.get(f"{base}/item/weather", params={"q": city}).json()["value"] for city in cities]


    def weather_urllib(base, cities):
        out = []
        for city in cities:
            query = urllib.parse.urlencode({"q": city, "days": 3})
            with urllib.request.urlopen(f"{base}/item/weather?{query}") as answer:
                out.append(json.load(answer)["value"])
        return out


    def weather_urllib_quoted(base, cities):
        out = []
        for city in cities:
            with urllib.request.urlopen(f"{base}/item/city/{urllib.parse.quote(city)}") as answer:
                out.append(json.load(answer)["value"])
        return out


    def weather_path(base, cities):
        # the city written into the path: httpx quotes it there (%20, not +)
        with httpx.Client() as client:
            return [client.get(f"{base}/item/city/{city}/now").json()["value"] for city in cities]


    def tickers(base, symbols):
        with httpx.Client() as client:
            return [client.get(f"{base}/item/{symbol}USD/ticker").json()["value"] for symbol in symbols]


    def versions(base, numbers):
        with httpx.Client() as client:
            return [client.get(f"{base}/item/v1/{n}").json()["value"] for n in numbers]


    def paged(base, tokens):
        # a page number the item does not hold: no request of it can be predicted
        with httpx.Client() as client:
            return [client.get(f"{base}/item/{token}", params={"page": i}).json()["value"] for i, token in enumerate(tokens)]


    def modes(base, tokens):
        # a mode the item does not hold but decides: every fifth item asks for "full"
        with httpx.Client() as client:
            out = []
            for token in tokens:
                mode = "full" if int(token[1:]) % 5 == 0 else "lite"
                out.append(client.get(f"{base}/item/{token}", params={"mode": mode}).json()["value"])
            return out


    def chained(base, ids):
        # every fourth user's manager first: a user further on, asked for out of the items' order
        with httpx.Client() as client:
            out = []
            for i in ids:
                if i % 4 == 2:
                    out.append(client.get(f"{base}/item/u{i + 3}").json()["value"])
                out.append(client.get(f"{base}/item/u{i}").json()["value"])
            return out


    def shouted(base, tokens):
        # a URL made from the item, not holding it: nothing to learn
        with httpx.Client() as client:
            return [client.get(f"{base}/item/{token.upper()}").json()["value"] for token in tokens]


    def per_call_requests(base, tokens):
        return [requests.get(f"{base}/item/{token}").json()["value"] for token in tokens]


    def per_call_httpx(base, tokens):
        return [httpx.get(f"{base}/item/{token}").json()["value"] for token in tokens]


    def statuses(base, urls):
        # the items are whole URLs, each fetched with a client of its own
        return [httpx.get(url).status_code for url in urls]
"""
CITIES = [
    "Vienna",
    "New York",
    "São Paulo",
    "Tel Aviv",
    "Berlin",
    "Rio de Janeiro",
    "Zürich",
    "Kraków",
    "St. John's",
    "A&B=C",
]
PLACES = [
    ("Vienna", 47.0744, 12.694),
    ("Oslo", 59.9139, 10.7522),
    ("Lima", -12.0464, -77.0428),
    ("Cairo", 30.0444, 31.2357),
    ("Perth", -31.9523, 115.8613),
    ("Quito", -0.1807, -78.4678),
    ("Reykjavik", 64.1466, -21.9426),
    ("Nome", 64.5011, -165.4064),
]


class Compared:
    """``loop(server.url, items)`` unpatched, then patched: equal values, and every URL the server
    received as often; ``fields`` are the patched run's line."""

    def __init__(
        self,
        app: App,
        server: FaultServer,
        monkeypatch: pytest.MonkeyPatch,
        capture: list[str],
        loop: str,
        make: Callable[[Any], list[Any]],
        *,
        concurrency: int = 4,
        window: int = 8,
        equal: bool = True,
    ) -> None:
        app.write("exact.py", JOBS)
        app.config(f'[[targets]]\nloop = "exact:{loop}"\nitems = 1\nconcurrency = {concurrency}\nwindow = {window}\n')
        module: Any = importlib.import_module("exact")
        self.before, self.gets_before = self.run(server, lambda: getattr(module, loop)(server.url, make(module)))
        install(monkeypatch, capture)
        self.after, self.gets_after = self.run(server, lambda: getattr(module, loop)(server.url, make(module)))
        self.fields = run_line(capture)
        assert self.after == self.before
        if equal:
            assert self.gets_after == self.gets_before, (
                self.gets_after - self.gets_before,
                self.gets_before - self.gets_after,
            )

    @staticmethod
    def run(server: FaultServer, call: Callable[[], Any]) -> tuple[Any, Counter[str]]:
        server.reset_counts()
        with contextlib.redirect_stdout(io.StringIO()):
            value = call()
        return value, Counter(key for method, key in server.log if method == "GET")

    @property
    def prefetched(self) -> int:
        return int(self.fields["prefetched"])


# -- where the item's values are ---------------------------------------------------------------------
@pytest.mark.parametrize(
    "shape",
    ["dict", "tuple", "namedtuple", "dataclass", "slotted", "nested"],
)
@pytest.mark.slow
def test_floats_of_an_item_in_query_parameters_are_found(
    app: App, server: FaultServer, monkeypatch: pytest.MonkeyPatch, capture_events: list[str], shape: str
) -> None:
    """``params={"latitude": loc["lat"], ...}``: the floats are found wherever they sit in the item."""

    def make(module: Any) -> list[Any]:
        kinds: dict[str, Callable[..., Any]] = {
            "dict": lambda n, a, o: {"name": n, "lat": a, "lon": o},
            "tuple": lambda n, a, o: (n, a, o),
            "namedtuple": module.Point,
            "dataclass": module.Place,
            "slotted": module.Slotted,
            "nested": module.Located,
        }
        return [kinds[shape](*place) for place in PLACES]

    run = Compared(app, server, monkeypatch, capture_events, "forecast", make)
    assert run.prefetched == len(PLACES) - 2  # the first teaches, the second confirms


# -- values the client encodes ----------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize(
    "loop", ["weather_httpx", "weather_requests", "weather_urllib", "weather_urllib_quoted", "weather_path"]
)
def test_values_the_client_encodes_are_predicted_byte_for_byte(
    app: App, server: FaultServer, monkeypatch: pytest.MonkeyPatch, capture_events: list[str], loop: str
) -> None:
    """Cities with spaces, accents and reserved characters: each URL reaches the server exactly as
    often as the sequential loop asks for it (``New+York`` in a query, ``New%20York`` in a path)."""
    run = Compared(app, server, monkeypatch, capture_events, loop, lambda _: CITIES)
    keys = "".join(run.gets_before)
    # httpx's params write a space as the installed httpx does: ``+`` from 0.28 on, ``%20`` in 0.27.
    plus = ("weather_requests", "weather_urllib") + (("weather_httpx",) if "+" in str(httpx.QueryParams(q=" ")) else ())
    assert ("New+York" in keys) == (loop in plus)
    # "Vienna" teaches; "New York" is encoded two ways by the encodings still possible, so the
    # loop asks for it itself (and settles which); then "São Paulo" confirms.
    assert run.prefetched >= len(CITIES) - 4
    assert int(run.fields["wasted"]) == 0


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
@pytest.mark.anyio
async def test_aiohttp_params_are_predicted_as_yarl_encodes_them(
    app: App, server: FaultServer, monkeypatch: pytest.MonkeyPatch, capture_events: list[str]
) -> None:
    """aiohttp's ``params`` go through yarl (``New+York``, ``/`` and ``?`` kept): every URL once."""
    pytest.importorskip("aiohttp")
    app.write(
        "aweather.py",
        """
        import aiohttp

        async def weather(base, cities):
            async with aiohttp.ClientSession() as session:
                out = []
                for city in cities:
                    async with session.get(f"{base}/item/weather", params={"q": city, "lat": 1.5}) as answer:
                        out.append((await answer.json())["value"])
                return out
    """,
    )
    app.config('[[targets]]\nloop = "aweather:weather"\nitems = 1\nconcurrency = 4\nwindow = 8\n')
    module: Any = importlib.import_module("aweather")
    cities = [*CITIES, "a/b?c"]

    async def run() -> tuple[Any, Counter[str]]:
        server.reset_counts()
        value = await module.weather(server.url, cities)
        return value, Counter(key for method, key in server.log if method == "GET")

    before = await run()
    install(monkeypatch, capture_events)
    after = await run()
    assert after == before
    assert int(run_line(capture_events)["prefetched"]) >= len(cities) - 4


# -- a short value inside a path segment ------------------------------------------------------------
def test_a_short_item_inside_a_path_segment_is_found(
    app: App, server: FaultServer, monkeypatch: pytest.MonkeyPatch, capture_events: list[str]
) -> None:
    """``A0`` in ``/A0USD/ticker``: found, trusted once it predicted ``/B1USD/ticker``."""
    symbols = [f"{chr(65 + i)}{i}" for i in range(12)]
    run = Compared(app, server, monkeypatch, capture_events, "tickers", lambda _: symbols)
    assert run.prefetched == len(symbols) - 2


def test_a_short_value_found_by_coincidence_is_settled_by_the_next_request(
    app: App, server: FaultServer, monkeypatch: pytest.MonkeyPatch, capture_events: list[str]
) -> None:
    """Item ``1`` is in ``/v1/1`` twice: the next request (``/v1/2``) says which one is the item's."""
    run = Compared(app, server, monkeypatch, capture_events, "versions", lambda _: list(range(1, 13)))
    assert run.prefetched == 10


# -- fan out only once confirmed; retire at the first miss -----------------------------------------
def test_a_template_that_never_predicts_the_next_request_sends_nothing(
    app: App, server: FaultServer, monkeypatch: pytest.MonkeyPatch, capture_events: list[str]
) -> None:
    """A page number the item does not hold: nothing is sent ahead at all, not even at first."""
    tokens = [f"p{i}" for i in range(12)]
    run = Compared(app, server, monkeypatch, capture_events, "paged", lambda _: tokens)
    assert run.prefetched == 0 and run.fields["wasted"] == "0"
    assert sum(run.gets_after.values()) == len(tokens)
    assert any("not_accelerated" in line and "never the ones" in line for line in capture_events)


def test_a_loop_whose_requests_hold_no_item_says_so_with_its_first_item(
    app: App, server: FaultServer, monkeypatch: pytest.MonkeyPatch, capture_events: list[str]
) -> None:
    """The run's line shows the first request beside the first item (not "none")."""
    run = Compared(app, server, monkeypatch, capture_events, "shouted", lambda _: ["t0", "t1", "t2"])
    assert run.prefetched == 0
    [line] = [line for line in capture_events if "not_accelerated" in line]
    assert "/item/T0" in line and "first item: 't0'" in line


@pytest.mark.slow
def test_a_confirmed_template_retires_at_its_first_miss(
    app: App, server: FaultServer, monkeypatch: pytest.MonkeyPatch, capture_events: list[str]
) -> None:
    """A mode the item decides without holding it: the template is right for t1..t4, wrong for t5;
    no URL the loop asks for is sent twice, and after t5 nothing more is sent ahead."""
    tokens = [f"t{i}" for i in range(1, 21)]
    run = Compared(
        app, server, monkeypatch, capture_events, "modes", lambda _: tokens, concurrency=2, window=4, equal=False
    )
    assert not run.gets_before - run.gets_after  # every request of the loop was made
    extra = run.gets_after - run.gets_before
    assert set(extra) <= {"t5?mode=lite", "t10?mode=lite"} and max(extra.values(), default=1) == 1
    assert all(run.gets_after[key] == count for key, count in run.gets_before.items())  # none twice
    assert run.prefetched <= 7  # t3..t9 at most (sent before the miss was seen), never after


@pytest.mark.slow
def test_a_request_for_an_item_further_on_never_sends_the_ones_between_twice(
    app: App, server: FaultServer, monkeypatch: pytest.MonkeyPatch, capture_events: list[str]
) -> None:
    """A request that names a later item (a manager) is served from what was sent for it; the
    requests already sent for the items in between are still served when the loop asks for them."""
    run = Compared(app, server, monkeypatch, capture_events, "chained", lambda _: list(range(20)))
    assert run.fields["wasted"] == "0" and run.prefetched >= 15


# -- a new client per call -----------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("loop", ["per_call_requests", "per_call_httpx"])
def test_a_new_client_per_call_gets_the_whole_window(
    app: App, server: FaultServer, monkeypatch: pytest.MonkeyPatch, capture_events: list[str], loop: str
) -> None:
    """``requests.get`` / ``httpx.get`` in the loop: every item after the second is prefetched, once."""
    tokens = [f"n{i}" for i in range(20)]
    run = Compared(app, server, monkeypatch, capture_events, loop, lambda _: tokens, concurrency=8, window=32)
    assert run.prefetched == len(tokens) - 2
    assert set(run.gets_after.values()) == {1}


@pytest.mark.slow
def test_items_that_are_whole_urls_are_found(
    app: App, server: FaultServer, monkeypatch: pytest.MonkeyPatch, capture_events: list[str]
) -> None:
    """A list of URLs (spaces and accents in them), one ``httpx.get`` each: each URL once, all
    but the first two prefetched."""
    urls = [f"{server.url}/item/page {i}/é" for i in range(10)]
    run = Compared(app, server, monkeypatch, capture_events, "statuses", lambda _: urls)
    assert run.prefetched == 8


STALE = """
    import time
    import httpx

    CLIENT = httpx.Client()

    def poll(base, keys):
        out = []
        for key in keys:
            time.sleep(0.3)  # slower than max_age: nothing sent ahead is fresh when the loop asks
            response = CLIENT.get(f"{base}/item/{key}")
            out.append((key, response.status_code))
        return out
"""


@pytest.mark.slow
def test_a_refusal_older_than_max_age_is_not_served_either(
    app: App, monkeypatch: pytest.MonkeyPatch, capture_events: list[str]
) -> None:
    """A request sent ahead and refused (503, not retried) is, like any answer, never served
    past max_age: the loop asks again and gets what the upstream says now."""
    app.write("stale.py", STALE)
    app.config(
        '[retry]\nenabled = false\n\n[[targets]]\nloop = "stale:poll"\nitems = "keys"\nconcurrency = 4\nmax_age = 0.1\n'
    )
    module: Any = importlib.import_module("stale")
    keys = [f"s{i}" for i in range(6)]
    with FaultServer(latency=0.02, faults={"s4": ["503"]}) as server:
        install(monkeypatch, capture_events)
        try:
            result = module.poll(server.url, keys)
        finally:
            module.CLIENT.close()
        asked = Counter(key for _, key in server.log)
    line = run_line(capture_events)
    assert line["prefetch"] == "http" and "stepped_aside" not in line
    assert asked["s4"] == 2  # sent ahead (503), then asked again by the loop: the refusal had gone stale
    assert result == [(key, 200) for key in keys]  # what the upstream says when the loop asks
    assert int(line["stale"]) >= 1
