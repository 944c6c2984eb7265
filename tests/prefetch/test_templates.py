"""A pattern is followed only once it predicted one of the loop's own requests, and retires at
its first miss (``_templates``), held against requests as httpx describes them (nothing sent)."""

from __future__ import annotations

from typing import Any

import httpx

from sched_accel._engine import Slot
from sched_accel._integrations import CLIENTS, Request
from sched_accel._prefetch._ahead import Sent, Window
from sched_accel._prefetch._templates import Templates

CLIENT = CLIENTS["httpx"]


def request(url: str, **headers: str) -> Request:
    """The loop's request, as httpx's transport sees it."""
    sent = httpx.Request("GET", url, headers={name.replace("_", "-"): value for name, value in headers.items()})
    described = CLIENT.describe(None, (sent,), {}, frozenset({"GET"}))
    assert described is not None
    return described


def templates(items: list[Any], window: int = 8) -> Templates:
    window_ = Window(iter(items), window)
    window_.read()
    return Templates(window_, replay=False)


def observe(run: Templates, url: str, **headers: str) -> tuple[Any, str | None]:
    entry, differs = run.observe(CLIENT, None, None, request(url, **headers))
    return (entry.index if entry is not None else None), differs


def test_a_pattern_is_confirmed_by_the_loop_s_request_for_another_item() -> None:
    """Learned from the first item; the same URL again tests nothing; the second item's URL,
    as predicted and with the same headers, confirms it."""
    run = templates(["t0", "t1", "t2"])
    assert observe(run, "http://h/item/t0") == (0, None)
    [known] = run.learned
    assert not known.confirmed
    assert observe(run, "http://h/item/t0") == (0, None) and not known.confirmed
    assert observe(run, "http://h/item/t1") == (1, None)
    assert known.confirmed and known.upto == 1
    assert known.pattern.url_for("t2") == "http://h/item/t2"


def test_a_prediction_with_other_headers_retires_the_pattern_and_its_kind() -> None:
    """A header that changes on every request: the prediction for the second item had the
    first one's; the pattern retires, says which header, and is not learned again."""
    run = templates(["t0", "t1", "t2", "t3"])
    observe(run, "http://h/item/t0", x_sequence="0")
    assert observe(run, "http://h/item/t1", x_sequence="1") == (1, "x-sequence")
    [known] = run.learned
    assert known.retired and not known.confirmed
    observe(run, "http://h/item/t2", x_sequence="2")
    assert run.learned == [known]


def test_the_item_s_value_written_otherwise_retires_the_pattern() -> None:
    """Confirmed with ``New+York``; ``Tel%20Aviv`` holds the item's value, encoded otherwise."""
    run = templates(["Vienna", "New York", "Tel Aviv"])
    observe(run, "http://h/w?q=Vienna")
    observe(run, "http://h/w?q=New+York")
    [known] = run.learned
    assert known.confirmed
    assert observe(run, "http://h/w?q=Tel%20Aviv") == (2, None)
    assert known.retired


def test_a_request_of_another_shape_is_another_pattern() -> None:
    """Two requests per item: two patterns, each confirmed by its own next request."""
    run = templates(["a1", "b2", "c3"])
    for url in ("http://h/price/a1", "http://h/volume/a1", "http://h/price/b2", "http://h/volume/b2"):
        observe(run, url)
    assert [known.confirmed for known in run.learned] == [True, True]


def test_a_pattern_never_confirmed_by_requests_of_its_shape_is_said_retired_at_the_end() -> None:
    """A page number the item does not hold: each request is a pattern of its own, none
    confirmed; at the end they count as retired (the run's line says the loop did not follow them)."""
    run = templates(["p0", "p1", "p2"])
    for index, token in enumerate(["p0", "p1", "p2"]):
        observe(run, f"http://h/item/{token}?page={index}")
    assert not any(known.confirmed or known.retired for known in run.learned)
    run.close()
    assert run.learned and all(known.retired for known in run.learned)


def test_a_request_sent_ahead_and_never_asked_for_is_contradicted() -> None:
    """The loop asked for another URL of the same shape for that item: the sent one is
    contradicted as the loop moves past the item (its pattern then retires)."""
    run = templates(["t1", "t2", "t3"])
    observe(run, "http://h/item/t1?mode=lite")
    observe(run, "http://h/item/t2?mode=lite")
    [known] = run.learned
    entry = run.items.entries[2]
    sent = Sent(entry.index, Slot(lambda: None, (), {}), known, request("http://h/item/t3?mode=lite"))
    entry.sent.append(sent)
    assert observe(run, "http://h/item/t3?mode=full")[0] == 2
    [passed] = run.items.passed(3, run.learned)
    assert passed is sent and sent.contradicted
    run.retire(known)
    assert known.retired


def test_an_item_whose_unplaced_value_differs_is_not_predicted() -> None:
    """A ``/`` written into a path splits a segment: an item whose such value differs from the
    learned one's has no prediction."""
    run = templates(
        [{"name": "a/b", "id": 1}, {"name": "a/b", "id": 2}, {"name": "c", "id": 3}, {"name": "a/b", "id": 4}]
    )
    observe(run, "http://h/item/a/b/1")
    observe(run, "http://h/item/a/b/2")
    [known] = run.learned
    assert known.confirmed
    known.count(run.items.entries)
    assert [known.url(entry) for entry in list(run.items.entries)[-2:]] == [None, "http://h/item/a/b/4"]
