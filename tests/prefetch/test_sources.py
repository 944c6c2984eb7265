"""_sources.py: a run's items, read from each kind of source without the loop noticing."""

from __future__ import annotations

import collections
import queue
from typing import Any

import pytest

import sched_accel
from sched_accel._exceptions import TargetError
from sched_accel._prefetch._sources import Items, independent, one_shot, split
from sched_accel._settings import Argument, Learned, ModuleObject, ReturnedBy
from sched_accel._targets import TargetSpec

from ..conftest import App


def loop(tokens: Any, other: int = 0) -> None:
    """A loop taking its items as its first parameter."""


@pytest.mark.parametrize("value", [[1, 2, 3], (1, 2, 3), {1, 2, 3}, {1: "a", 2: "b", 3: "c"}, range(1, 4)])
def test_collections_are_read_twice(value: Any) -> None:
    """Sequences, sets and mappings are re-readable: we read our own iterator, the loop its own."""
    ours = independent(value)
    assert ours is not None and sorted(ours) == [1, 2, 3]
    assert sorted(value) == [1, 2, 3]


@pytest.mark.parametrize("value", ["abc", b"abc", queue.Queue(), collections.Counter().elements()])
def test_strings_and_one_shot_iterables_are_not_read_ahead(value: Any) -> None:
    """A string is not a list of items; a queue or an iterator cannot be read twice."""
    assert independent(value) is None


def test_an_iterator_is_split_and_the_loop_still_sees_every_item() -> None:
    """A one-shot iterator argument is tee'd: both sides see every item, in order."""
    ours, theirs = split(iter([1, 2, 3]))
    assert ours is not None
    assert list(ours) == [1, 2, 3]
    assert list(theirs) == [1, 2, 3]


def test_a_generator_is_not_split() -> None:
    """A generator runs the app's code as it is read: the loop gets it untouched, we get nothing."""

    def items() -> Any:
        yield 1

    generator = items()
    assert split(generator) == (None, generator)
    assert one_shot(generator) and not one_shot(iter([1])) and not one_shot([1])


def test_an_iterator_s_exception_reaches_the_loop_at_its_place() -> None:
    """The loop's side raises the iterator's exception where it came; ours just stops there
    (a dict that changes size while its iterator is read)."""
    prices = {"a": 1, "b": 2}
    ours, theirs = split(iter(prices))
    assert ours is not None and next(ours) == "a"
    prices["c"] = 3
    assert list(ours) == []  # ours stops at the RuntimeError
    with pytest.raises(RuntimeError, match="changed size"):
        list(theirs)


def test_an_argument_source_binds_by_name_or_position_and_swaps_in_the_tee() -> None:
    """items = "tokens" (or 0): found in the call, by keyword or position; an iterator is replaced by its twin."""
    items = Items("jobs:loop", Argument("tokens"), None)
    source, args, kwargs = items.bind(loop, (), {"tokens": [1, 2]})
    assert source is not None and list(source) == [1, 2]
    assert kwargs == {"tokens": [1, 2]}
    generator = iter([5, 6])
    source, args, kwargs = Items("jobs:loop", Argument(0), None).bind(loop, (generator, 1), {})
    assert source is not None and list(source) == [5, 6]
    assert args[0] is not generator and list(args[0]) == [5, 6]
    assert args[1] == 1


def test_an_argument_not_passed_gives_no_source() -> None:
    """A call that does not pass the items leaves the loop to run without prefetching."""
    assert Items("jobs:loop", Argument("missing"), None).bind(loop, ([1],), {})[0] is None
    assert Items("jobs:loop", Argument(3), None).bind(loop, ([1],), {})[0] is None


def test_a_module_object_is_read_when_the_loop_starts() -> None:
    """items = "module:NAME" is looked up at each run (the module's current value)."""
    import sys

    source, _, _ = Items("jobs:loop", ModuleObject(TargetSpec.parse("sys:path")), None).bind(loop, (), {})
    assert source is not None and list(source) == sys.path
    digits = ModuleObject(TargetSpec.parse("string:digits"))
    assert Items("jobs:loop", digits, None).bind(loop, (), {})[0] is None  # a string is not a collection


def test_returned_by_sources_are_captured_inside_the_loop() -> None:
    """items = "returned-by:..." gives nothing when the loop starts: the capture sets it later."""
    items = Items("jobs:loop", ReturnedBy(TargetSpec.parse("repo:Repo.active")), None)
    assert items.captured
    assert items.bind(loop, ([1],), {})[0] is None


def test_a_learned_source_reads_the_last_run_s_calls(tmp_path: Any) -> None:
    """items = "learned" reads the calls saved for this target (none yet: an empty source)."""
    items = Items("jobs:loop", Learned(), str(tmp_path))
    assert items.learned is not None
    source, _, _ = items.bind(loop, (), {})
    assert source is not None and list(source) == []
    items.learned.save([[1], [2]])
    source, _, _ = items.bind(loop, (), {})
    assert source is not None and list(source) == [[1], [2]]


def test_a_module_object_that_is_not_there_is_named_with_what_is_spelled_like_it(app: App) -> None:
    """``items = "app_settings:ITEM_IDS"`` when the module holds ITEMS: the config's error, with a
    did-you-mean (it was logged as an internal error of ours)."""
    app.write("app_settings.py", "ITEMS = [1, 2]\n")
    items = Items("jobs:loop", ModuleObject(TargetSpec.parse("app_settings:ITEM_IDS")), None)
    with pytest.raises(TargetError, match=r"app_settings has no attribute 'ITEM_IDS' \(did you mean 'ITEMS'\?\)"):
        items.bind(loop, (), {})
    missing = Items("jobs:loop", ModuleObject(TargetSpec.parse("app_setings:ITEMS")), None)
    with pytest.raises(TargetError, match=r"module 'app_setings' cannot be imported .*did you mean 'app_settings'"):
        missing.bind(loop, (), {})


def test_an_unresolved_module_object_is_said_once_and_the_loop_runs(
    app: App, monkeypatch: pytest.MonkeyPatch, capture_events: list[str]
) -> None:
    """At run time: one items_unresolved line (ERROR, not internal_error) for any number of
    runs, and the loop's own result each time."""
    app.write("app_settings.py", "ITEMS = [1, 2]\n")
    app.write(
        "jobs.py",
        """
        import app_settings

        def get(i):
            return i * 10

        def loop():
            return [get(i) for i in app_settings.ITEMS]
    """,
    )
    app.config('[[targets]]\nloop = "jobs:loop"\nfetch = "jobs:get"\nitems = "app_settings:ITEM_IDS"\n')
    monkeypatch.setenv("ENABLE_SCHEDULER_OPTIMIZATION", "1")
    assert sched_accel.install() is True
    import jobs

    assert jobs.loop() == jobs.loop() == [10, 20]
    [line] = [line for line in capture_events if "items_unresolved" in line or "internal_error" in line]
    assert line.startswith("sched_accel.items_unresolved target=jobs:loop - items = 'app_settings:ITEM_IDS'")
    assert "(did you mean 'ITEMS'?)" in line
