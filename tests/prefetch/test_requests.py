"""Where an item's values are in a URL, and the URL for another item (``_requests``)."""

from __future__ import annotations

from collections import namedtuple
from dataclasses import dataclass

from sched_accel._prefetch._requests import Pattern, Url, fields, learn


@dataclass
class Wallet:
    chain: str
    address: str
    _secret: str = "x"


class Slotted:
    __slots__ = ("_hidden", "lat", "unset")

    def __init__(self, lat: float) -> None:
        self.lat, self._hidden = lat, "h"

    @property
    def computed(self) -> str:  # never read: only stored values are fields
        raise AssertionError("a property ran")


Point = namedtuple("Point", "lat lon")


def taught(url: str, item: object, then: str, other: object, library: str | None = None) -> Pattern:
    """The pattern learned from ``url`` for ``item``, narrowed by ``then`` (the loop's request for ``other``)."""
    pattern = learn(url, item, library=library)
    assert pattern is not None
    narrowed = pattern.match(Url(then), other)
    assert isinstance(narrowed, Pattern)
    return narrowed


def test_fields_of_scalars_dicts_objects_and_tuples() -> None:
    """Strings, ints, floats and bools, in dicts, dataclasses, tuples and slots, two levels deep."""
    assert fields("BTC") == [("item", "BTC")]
    assert fields(7) == [("item", "7")] and fields(47.0744) == [("item", "47.0744")]
    assert fields(True) == [("item", "True")] and fields(None) == [] and fields("") == []
    assert fields({"symbol": "ETH", "meta": {"id": 3}, "a.b": "skip"}) == [
        ("item.symbol", "ETH"),
        ("item.meta.id", "3"),
    ]
    assert fields(Wallet("eth", "0xabc")) == [("item.chain", "eth"), ("item.address", "0xabc")]
    assert fields(("eth", 5)) == [("item.0", "eth"), ("item.1", "5")]
    assert fields(Point(1.5, -2.25)) == [("item.0", "1.5"), ("item.1", "-2.25")]
    assert fields(Slotted(12.694)) == [("item.lat", "12.694")]  # set slots only, no property


def test_a_pattern_fills_path_segments_and_query_values_once_narrowed() -> None:
    """Learned from one item, a pattern predicts nothing until a request for another item tells
    the item's values from text that is there by chance; then it fills them in."""
    pattern = learn("https://api.example.com/v1/chains/eth/balance?address=0xabc&flag&page=1", Wallet("eth", "0xabc"))
    assert pattern is not None and pattern.url_for(Wallet("sol", "So1")) is None  # "eth" may be a constant
    narrowed = taught(
        "https://api.example.com/v1/chains/eth/balance?address=0xabc&flag&page=1",
        Wallet("eth", "0xabc"),
        "https://api.example.com/v1/chains/bsc/balance?address=0xdef&flag&page=1",
        Wallet("bsc", "0xdef"),
    )
    assert (
        narrowed.url_for(Wallet("sol", "So1"))
        == "https://api.example.com/v1/chains/sol/balance?address=So1&flag&page=1"
    )
    assert narrowed.url_for(Wallet("sol", "So1 2")) is None  # %20, + or a space: not told yet
    assert narrowed.url_for({"chain": "x"}) is None  # a field missing: no prediction


def test_a_value_inside_a_segment_keeps_its_prefix_and_suffix() -> None:
    """``BTC`` in ``BTC-USD``, and a short ``A0`` in ``A0USD`` too (a weak sign: narrowed first)."""
    pattern = taught("http://h/pairs/BTC-USD", "BTC", "http://h/pairs/SOL-USD", "SOL")
    assert pattern.url_for("ETH") == "http://h/pairs/ETH-USD"
    short = learn("http://h/A0USD/ticker", "A0")
    assert short is not None and not short.strong
    assert taught("http://h/A0USD/ticker", "A0", "http://h/B1USD/ticker", "B1").url_for("C2") == "http://h/C2USD/ticker"
    assert learn("http://h/items", "zzz") is None


def test_a_value_there_by_chance_stays_literal() -> None:
    """Item ``1`` is in ``/v1/1`` twice: the request for ``2`` (``/v1/2``) keeps ``v1`` as text."""
    pattern = taught("http://h/v1/1", 1, "http://h/v1/2", 2)
    assert pattern.url_for(3) == "http://h/v1/3"
    learned = learn("http://h/v1/1", 1)
    assert learned is not None and learned.match(Url("http://h/v2/2"), 2) is not None


def test_encodings_are_told_apart_by_the_values_that_differ() -> None:
    """``Vienna`` fits every encoding; ``New York`` as ``New+York`` leaves urlencode's (``+``,
    ``%27``), as ``New%20York`` httpx's own quoting of a URL (``'`` kept)."""
    params = taught("http://h/w?q=Vienna", "Vienna", "http://h/w?q=New+York", "New York", library="httpx")
    assert params.url_for("St. John's") == "http://h/w?q=St.+John%27s"
    written = taught("http://h/w?q=Vienna", "Vienna", "http://h/w?q=New%20York", "New York", library="httpx")
    assert written.url_for("São Paulo") == "http://h/w?q=S%C3%A3o%20Paulo"
    assert written.url_for("St. John's") is None  # quote() would say %27, httpx's own quoting '
    yarl = taught("http://h/w?q=Vienna", "Vienna", "http://h/w?q=New+York", "New York", library="aiohttp")
    assert yarl.url_for("a/b") is None  # urlencode: a%2Fb, yarl's params: a/b
    assert yarl.match(Url("http://h/w?q=a/b"), "a/b") is not None


def test_floats_and_bools_are_written_as_each_client_writes_them() -> None:
    """``str(47.0744)``; a bool ``True`` is ``true`` in httpx's params."""
    pattern = taught(
        "http://h/f?lat=47.0744&lon=12.694",
        {"lat": 47.0744, "lon": 12.694},
        "http://h/f?lat=-1.5&lon=1e-07",
        {"lat": -1.5, "lon": 1e-07},
    )
    assert pattern.url_for({"lat": -0.25, "lon": 0.1}) == "http://h/f?lat=-0.25&lon=0.1"
    assert pattern.url_for({"lat": 1e20, "lon": 0.1}) is None  # 1e+20 written in the URL, or params' 1e%2B20
    params = pattern.match(Url("http://h/f?lat=1e%2B20&lon=0.1"), {"lat": 1e20, "lon": 0.1})
    assert params is not None and params.url_for({"lat": 2e20, "lon": 0.5}) == "http://h/f?lat=2e%2B20&lon=0.5"
    flag = taught(
        "http://h/x?id=a1&active=true",
        {"id": "a1", "on": True},
        "http://h/x?id=b2&active=false",
        {"id": "b2", "on": False},
    )
    assert flag.url_for({"id": "c3", "on": True}) == "http://h/x?id=c3&active=true"


def test_near_is_the_item_s_values_written_otherwise() -> None:
    """A request with the item's value where the pattern has it, encoded otherwise, is ``near``;
    one with another value, or other literal text, is not."""
    pattern = taught("http://h/w?q=Vienna&u=m", "Vienna", "http://h/w?q=New%20York&u=m", "New York", library="httpx")
    assert pattern.near(Url("http://h/w?q=Tel+Aviv&u=m"), "Tel Aviv")
    assert not pattern.near(Url("http://h/w?q=Tel%20Aviv&u=m"), "Tel Aviv")  # made exactly
    assert not pattern.near(Url("http://h/w?q=Oslo&u=m"), "Tel Aviv")
    assert not pattern.near(Url("http://h/w?q=Tel+Aviv&u=x"), "Tel Aviv")
