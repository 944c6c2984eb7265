"""_shape.py: making the loop's call for an item, and telling whether a real call is the predicted one."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from sched_accel._engine import Slot
from sched_accel._prefetch._shape import CallShape, item_path, same


def fetch(*args: object, **kwargs: object) -> None:
    """A per-item function."""


def test_item_paths_look_up_attributes_keys_and_indexes() -> None:
    """``item.a.0.b``: attribute, then index, then key; no code is evaluated."""
    item = SimpleNamespace(a=[{"b": 7}])
    assert item_path("item")(item) is item
    assert item_path("item.a.0.b")(item) == 7


@pytest.mark.parametrize("path", ["thing", "item.", "item..a", ""])
def test_a_path_not_from_the_item_is_refused(path: str) -> None:
    """A path must start with ``item`` and have no empty parts."""
    with pytest.raises(ValueError, match="an item path starts with 'item'"):
        item_path(path)


def test_same_is_identity_or_equality_and_never_raises() -> None:
    """Arguments match by identity or ==; a comparison that raises is a mismatch."""

    class Odd:
        def __eq__(self, other: object) -> bool:
            raise RuntimeError("no comparing")

    odd = Odd()
    assert same(odd, odd)
    assert not same(odd, Odd())
    assert same([1], [1])


def test_the_item_goes_where_the_first_call_had_it() -> None:
    """By position or by keyword, the other arguments as the first call passed them."""
    by_position = CallShape(fetch, None, ("a", "ITEM", "c"), {"x": 1}, position=1)
    assert by_position.arguments(9) == (("a", 9, "c"), {"x": 1})
    by_keyword = CallShape(fetch, None, ("a",), {"x": 1}, keyword="token")
    assert by_keyword.arguments(9) == (("a",), {"x": 1, "token": 9})
    built = CallShape(fetch, None, (), {"x": 1}, builder=lambda item: (item, item + 1))
    assert built.arguments(9) == ((9, 10), {"x": 1})


def test_a_real_call_matches_its_prediction_only_exactly() -> None:
    """Same bound instance, same arguments, same keywords: anything else is a miss."""
    client = object()
    shape = CallShape(fetch, client, ("ITEM",), {"timeout": 5}, position=0)
    slot: Slot[None] = Slot(fetch, *shape.arguments("t1"))
    assert shape.matches(slot, client, ("t1",), {"timeout": 5})
    assert not shape.matches(slot, object(), ("t1",), {"timeout": 5})
    assert not shape.matches(slot, client, ("t2",), {"timeout": 5})
    assert not shape.matches(slot, client, ("t1",), {"timeout": 6})
    assert not shape.matches(slot, client, ("t1", "extra"), {"timeout": 5})
    assert not shape.matches(slot, client, ("t1",), {})
