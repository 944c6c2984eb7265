"""Where an item's values are in a URL, and the URL for another item (``_requests``)."""

from __future__ import annotations

from dataclasses import dataclass

from sched_accel._prefetch._requests import Replay, fields, learn


@dataclass
class Wallet:
    chain: str
    address: str
    _secret: str = "x"


def test_fields_of_scalars_dicts_objects_and_tuples() -> None:
    assert fields("BTC") == [("item", "BTC")]
    assert fields(7) == [("item", "7")]
    assert fields(True) == [] and fields(None) == [] and fields("") == []
    assert fields({"symbol": "ETH", "meta": {"id": 3}, "a.b": "skip"}) == [("item.symbol", "ETH"), ("item.meta.id", "3")]
    assert fields(Wallet("eth", "0xabc")) == [("item.chain", "eth"), ("item.address", "0xabc")]
    assert fields(("eth", 5)) == [("item.0", "eth"), ("item.1", "5")]


def test_a_pattern_fills_path_segments_and_query_values_from_another_item() -> None:
    pattern = learn("https://api.example.com/v1/chains/eth/balance?address=0xabc&flag&page=1", Wallet("eth", "0xabc"))
    assert pattern is not None
    assert pattern.url_for(Wallet("sol", "So1 2")) == "https://api.example.com/v1/chains/sol/balance?address=So1%202&flag&page=1"
    assert pattern.url_for({"chain": "x"}) is None  # a field missing: no prediction


def test_a_value_inside_a_segment_keeps_its_prefix_and_suffix() -> None:
    pattern = learn("http://h/pairs/BTC-USD", "BTC")
    assert pattern is not None and pattern.url_for("ETH") == "http://h/pairs/ETH-USD"
    assert learn("http://h/v1/items", 1) is None  # "1" is only ever a whole segment or value
    assert learn("http://h/items", "zzz") is None


def test_replay_sends_a_learned_request_only_to_the_host_called() -> None:
    replay = Replay("GET", "http://a.example/x/1")
    assert replay.url_for(["GET", "http://a.example/x/2"]) == "http://a.example/x/2"
    assert replay.url_for(["GET", "http://b.example/x/2"]) is None
    assert replay.url_for(["POST", "http://a.example/x/2"]) is None
