"""_context: a shadow's state, its context in a thread or task, and where the app's code stands."""

from __future__ import annotations

import threading

import pytest

from sched_accel._exceptions import Stopped
from sched_accel._shadow import SHADOW, Shadow, acting, reading, shadowed, where


def test_stopped_is_not_an_exception() -> None:
    """The app's ``except Exception`` cannot swallow Stopped."""
    assert issubclass(Stopped, BaseException)
    assert not issubclass(Stopped, Exception)
    assert Stopped("why").why == "why"


def test_stop_keeps_the_first_reason_and_raises_each_time() -> None:
    """stop() raises every time; the shadow keeps the first reason."""
    shadow = Shadow()
    with pytest.raises(Stopped, match="first"):
        shadow.stop("first")
    with pytest.raises(Stopped, match="second"):
        shadow.stop("second")
    assert shadow.stopped == "first"


def test_mark_records_without_raising_and_check_raises() -> None:
    """mark() (for callbacks that cannot raise) records; check() raises afterwards."""
    shadow = Shadow()
    shadow.check()
    shadow.mark("denied")
    shadow.mark("later")
    assert shadow.stopped == "denied"
    with pytest.raises(Stopped, match="denied"):
        shadow.check()


def test_shadowed_is_per_thread_and_reading_suspends_the_rules() -> None:
    """Inside shadowed() this thread acts as the shadow, others do not; reading() suspends it."""
    shadow = Shadow()
    seen: list[object] = []
    go = threading.Event()

    def other() -> None:
        go.wait(10)
        seen.append(acting())

    thread = threading.Thread(target=other)
    thread.start()
    with shadowed(shadow):
        assert SHADOW.get() is shadow and acting() is shadow
        go.set()
        thread.join()
        with reading():
            assert SHADOW.get() is shadow and acting() is None
        assert acting() is shadow
    assert seen == [None]
    assert SHADOW.get() is None and acting() is None


def test_where_names_the_app_line() -> None:
    """where() skips our own frames and names the caller's file and line."""

    def ours() -> str:
        return where()

    line = ours()
    assert line.startswith("tests/shadow/test_context.py:") or line.endswith(
        f"test_context.py:{ours.__code__.co_firstlineno + 1}"
    )
