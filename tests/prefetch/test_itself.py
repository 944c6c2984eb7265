"""Patterns whose URL is the item itself (``_itself``): an item that is a URL, a request the
loop made in its last run."""

from __future__ import annotations

from sched_accel._prefetch._itself import Replay, Whole, whole
from sched_accel._prefetch._requests import Url
from sched_accel._prefetch._shape import fields


def test_an_item_that_is_a_whole_url_is_sent_as_the_client_sends_it() -> None:
    """An item that is the URL: another item's URL, quoted as the client quotes it, on the same host only."""
    item = {"url": "http://h/pages/a b"}
    pattern = whole(Url("http://h/pages/a%20b"), fields(item), "httpx")
    assert isinstance(pattern, Whole) and pattern.paths == {"item.url"}
    assert pattern.url_for({"url": "http://h/pages/São"}) == "http://h/pages/S%C3%A3o"
    assert pattern.url_for({"url": "http://elsewhere/pages/x"}) is None
    assert pattern.match(Url("http://h/pages/c"), {"url": "http://h/pages/c"}) is pattern
    assert whole(Url("http://h/pages/a%20b"), fields(item), "urllib") is None  # urllib sends it as given
    assert whole(Url("http://h/pages/other"), fields(item), "httpx") is None


def test_replay_sends_a_learned_request_only_to_the_host_called() -> None:
    """``items = "learned"``: the recorded request itself, to the same host only."""
    replay = Replay("GET", "http://a.example/x/1")
    assert replay.url_for(["GET", "http://a.example/x/2"]) == "http://a.example/x/2"
    assert replay.url_for(["GET", "http://b.example/x/2"]) is None
    assert replay.url_for(["POST", "http://a.example/x/2"]) is None
    assert replay.match(Url("http://a.example/x/2"), ["GET", "http://a.example/x/2"]) is replay
