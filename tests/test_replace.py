"""_replace.py: what a patched replace-mode loop does when called, seen through install() as an app sees it."""

from __future__ import annotations

import importlib
import os
import re
import textwrap
from types import ModuleType
from typing import Any

import anyio
import pytest

import sched_accel
from sched_accel._replace import ReplaceMode
from sched_accel._state import ALL, ControlFile

from .conftest import App

CLIENT = """
    CALLS = []
    FAIL = set()


    def fetch(token):
        CALLS.append(token)
        if token in FAIL:
            raise LookupError(token)
        return token * 2
"""
JOBS = """
    import sys

    import anyio

    import client

    RAN = []
    ERROR = None
    HANDLING = []


    def update(tokens):
        RAN.append(list(tokens))
        HANDLING.append(sys.exc_info()[1])
        if ERROR is not None:
            raise ERROR
        return [client.fetch(t) for t in tokens]


    async def update_async(tokens):
        RAN.append(list(tokens))
        HANDLING.append(sys.exc_info()[1])
        await anyio.sleep(0)
        if ERROR is not None:
            raise ERROR
        return [client.fetch(t) for t in tokens]


    class Job:
        def __init__(self, name):
            self.name = name

        def run(self, tokens, *, label="nightly"):
            RAN.append(("run", self.name, list(tokens), label))
            return ["original", self.name]

        @classmethod
        def build(cls, tokens):
            RAN.append(("build", cls.__name__, list(tokens)))
            return ["original", cls.__name__]

        @staticmethod
        def helper(tokens):
            RAN.append(("helper", list(tokens)))
            return ["original"]


    class Nightly(Job):
        pass
"""
ACCEL = """
    import anyio

    import client

    RAN = []
    ERROR = None


    def update(tokens):
        RAN.append(list(tokens))
        if ERROR is not None:
            raise ERROR
        return ["accel", *(client.fetch(t) for t in tokens)]


    def tolerant(tokens):
        RAN.append(list(tokens))
        out = []
        for token in tokens:
            try:
                out.append(client.fetch(token))
            except LookupError:
                out.append(None)
        return out


    async def update_async(tokens):
        RAN.append(list(tokens))
        await anyio.sleep(0)
        if ERROR is not None:
            raise ERROR
        return ["accel", *(client.fetch(t) for t in tokens)]


    async def forever(tokens):
        RAN.append(list(tokens))
        await anyio.sleep_forever()


    def run(job, tokens, *, label="nightly"):
        RAN.append(("run", job, list(tokens), label))
        if ERROR is not None:
            raise ERROR
        return ["accel", job.name]


    def build(cls, tokens):
        RAN.append(("build", cls, list(tokens)))
        if ERROR is not None:
            raise ERROR
        return ["accel", cls.__name__]


    def helper(*args, **kwargs):
        RAN.append(("helper", args, kwargs))
        if ERROR is not None:
            raise ERROR
        return ["accel"]
"""


class Modules:
    """The app's three modules, imported (and so patched)."""

    def __init__(self) -> None:
        self.jobs: Any = importlib.import_module("jobs")
        self.accel: Any = importlib.import_module("accel")
        self.client: Any = importlib.import_module("client")


def start(app: App, monkeypatch: pytest.MonkeyPatch, targets: str, top: str = "") -> Modules:
    """Write the app and a config declaring ``targets``, install with the flag on, import it."""
    app.write("client.py", CLIENT)
    app.write("jobs.py", JOBS)
    app.write("accel.py", ACCEL)
    app.config(textwrap.dedent(top) + "\n" + textwrap.dedent(targets))
    monkeypatch.setenv("ENABLE_SCHEDULER_OPTIMIZATION", "true")
    assert sched_accel.install() is True
    return Modules()


def target(loop: str, replacement: str, *extra: str) -> str:
    """One [[targets]] table."""
    return "\n".join(["[[targets]]", f'loop = "{loop}"', f'replacement = "{replacement}"', *extra]) + "\n"


UPDATE = target("jobs:update", "accel:update", 'fetch = "client:fetch"', 'items = "tokens"', "concurrency = 4")
UPDATE_ASYNC = target("jobs:update_async", "accel:update_async", 'fetch = "client:fetch"', 'items = "tokens"')


def events(captured: list[str], name: str) -> list[str]:
    """The captured lines of one event."""
    return [line for line in captured if line.startswith(f"sched_accel.{name} ")]


def fields(line: str) -> dict[str, str]:
    """The k=v fields of a log line (up to its message)."""
    head = line.split(" - ", 1)[0]
    return {key: value.strip('"') for key, value in re.findall(r'(\w+)=("[^"]*"|\S+)', head)}


def envelope(patched: Any) -> ReplaceMode:
    """The mode installed on a patched loop (wrapt keeps it as _self_wrapper)."""
    found = patched._self_wrapper.mode  # inside the Switched that times runs made switched off
    assert isinstance(found, ReplaceMode)
    return found


def control() -> ControlFile:
    """The control file this test's process reads (the one `sched-accel on|off` writes)."""
    return ControlFile(os.environ["SCHED_ACCEL_CONTROL"])


# -- replace mode, sync -----------------------------------------------------------------


def test_replace_returns_the_replacements_result(app: App, monkeypatch: pytest.MonkeyPatch) -> None:
    """In replace mode the replacement runs instead of the loop and its result is returned."""
    m = start(app, monkeypatch, UPDATE)
    assert m.jobs.update([1, 2]) == ["accel", 2, 4]
    assert m.accel.RAN == [[1, 2]]
    assert m.jobs.RAN == []


def test_an_async_replacement_of_a_sync_loop_is_refused_when_patching(
    app: App, monkeypatch: pytest.MonkeyPatch, capture_events: list[str]
) -> None:
    """A sync loop named with an async replacement would hand its callers a coroutine where it
    returned its result (found by `make fuzz`): refused when patching, in one line naming both;
    the loop runs unpatched and returns its own result."""
    m = start(app, monkeypatch, target("jobs:update", "accel:update_async", 'items = "tokens"'))
    assert m.jobs.update([1, 2]) == [2, 4]
    assert m.jobs.RAN == [[1, 2]] and m.accel.RAN == []
    said = "".join(capture_events)
    assert "accel:update_async: the replacement is async and the loop jobs:update is not" in said


def test_a_replacement_that_returns_a_coroutine_to_a_sync_loop_falls_back(
    app: App, monkeypatch: pytest.MonkeyPatch, capture_events: list[str]
) -> None:
    """The same from a sync function that returns a coroutine (seen only when it runs): the
    coroutine is closed unawaited, and the original runs once, as after a replacement that raised."""
    app.write("late.py", "import accel\n\ndef update(tokens):\n    return accel.update_async(tokens)\n")
    m = start(app, monkeypatch, target("jobs:update", "late:update", 'items = "tokens"'))
    assert m.jobs.update([1, 2]) == [2, 4]
    assert m.jobs.RAN == [[1, 2]]
    [fallback] = events(capture_events, "fallback")
    assert "returned an awaitable" in fallback


def test_replace_mode_runs_reach_sched_accel_status(app: App, monkeypatch: pytest.MonkeyPatch) -> None:
    """A replace-mode run is saved as the target's last run, as prefetch runs are (one RunReport for both)."""
    from sched_accel._config import load_config
    from sched_accel._state import load_runs

    m = start(app, monkeypatch, UPDATE)
    m.jobs.update([1, 2])
    record = load_runs(load_config().app_dir)["jobs:update"]
    assert (record["run"]["mode"], record["run"]["outcome"], record["run"]["items"]) == ("replace", "ok", 2)


def test_replace_passes_keyword_arguments(app: App, monkeypatch: pytest.MonkeyPatch) -> None:
    """Arguments given by keyword reach the replacement by keyword."""
    m = start(app, monkeypatch, UPDATE)
    assert m.jobs.update(tokens=[3]) == ["accel", 6]
    assert m.accel.RAN == [[3]]


def test_replacement_raising_falls_back_to_the_original(
    app: App, monkeypatch: pytest.MonkeyPatch, capture_events: list[str]
) -> None:
    """When the replacement raises, the original runs exactly once and its result is returned."""
    m = start(app, monkeypatch, UPDATE)
    m.accel.ERROR = RuntimeError("pool exhausted")
    assert m.jobs.update([1, 2]) == [2, 4]
    assert m.jobs.RAN == [[1, 2]]
    assert m.client.CALLS == [1, 2]
    [fallback] = events(capture_events, "fallback")
    assert "target=jobs:update" in fallback
    assert 'reason="RuntimeError: pool exhausted"' in fallback
    [run] = events(capture_events, "run")
    assert fields(run)["outcome"] == "fallback"


def test_fallback_runs_the_original_outside_the_failure(app: App, monkeypatch: pytest.MonkeyPatch) -> None:
    """The original runs as if called directly: not inside the handling of the replacement's error."""
    m = start(app, monkeypatch, UPDATE)
    m.accel.ERROR = RuntimeError("pool exhausted")
    m.jobs.update([1])
    assert m.jobs.HANDLING == [None]


def test_original_exception_during_fallback_propagates_unchanged(app: App, monkeypatch: pytest.MonkeyPatch) -> None:
    """The original's own exception reaches the caller as is, not chained to the replacement's."""
    m = start(app, monkeypatch, UPDATE)
    m.accel.ERROR = RuntimeError("pool exhausted")
    m.jobs.ERROR = ValueError("bad token")
    with pytest.raises(ValueError, match="bad token") as info:
        m.jobs.update([1])
    assert info.value is m.jobs.ERROR
    assert info.value.__context__ is None
    assert info.value.__cause__ is None
    assert m.jobs.RAN == [[1]]


def test_propagate_raises_the_replacements_exception(
    app: App, monkeypatch: pytest.MonkeyPatch, capture_events: list[str]
) -> None:
    """on_error = "propagate": the replacement's exception reaches the caller and the original never runs."""
    m = start(app, monkeypatch, UPDATE + 'on_error = "propagate"\n')
    m.accel.ERROR = RuntimeError("pool exhausted")
    with pytest.raises(RuntimeError, match="pool exhausted") as info:
        m.jobs.update([1, 2])
    assert info.value is m.accel.ERROR
    assert m.jobs.RAN == []
    assert events(capture_events, "fallback") == []
    [run] = events(capture_events, "run")
    assert fields(run)["outcome"] == "failed"


@pytest.mark.parametrize("interrupt", [KeyboardInterrupt, SystemExit, GeneratorExit])
def test_base_exception_from_replacement_is_not_swallowed(
    app: App, monkeypatch: pytest.MonkeyPatch, capture_events: list[str], interrupt: type[BaseException]
) -> None:
    """A KeyboardInterrupt-like BaseException from the replacement propagates; the original does not run."""
    m = start(app, monkeypatch, UPDATE)
    m.accel.ERROR = interrupt()
    with pytest.raises(interrupt):
        m.jobs.update([1])
    assert m.jobs.RAN == []
    assert events(capture_events, "fallback") == []


def test_interrupted_run_is_ended(app: App, monkeypatch: pytest.MonkeyPatch, capture_events: list[str]) -> None:
    """A run cut short by a BaseException still ends: one run line, and no run left in progress."""
    m = start(app, monkeypatch, UPDATE)
    m.accel.ERROR = KeyboardInterrupt()
    with pytest.raises(KeyboardInterrupt):
        m.jobs.update([1])
    assert envelope(m.jobs.update).current_run() is None
    [run] = events(capture_events, "run")
    assert fields(run)["outcome"] == "interrupted"
    m.accel.ERROR = None
    m.client.fetch(9)  # outside any run: not counted anywhere
    assert m.jobs.update([1, 2]) == ["accel", 2, 4]
    assert fields(events(capture_events, "run")[1])["ok"] == "2"


# -- methods ----------------------------------------------------------------------------


def test_method_replacement_gets_the_instance(app: App, monkeypatch: pytest.MonkeyPatch) -> None:
    """A method's replacement is called with the instance first, whether called on it or on the class."""
    m = start(app, monkeypatch, target("jobs:Job.run", "accel:run"))
    job = m.jobs.Job("nightly-1")
    assert job.run([1], label="x") == ["accel", "nightly-1"]
    assert m.jobs.Job.run(job, [2]) == ["accel", "nightly-1"]
    assert m.accel.RAN == [("run", job, [1], "x"), ("run", job, [2], "nightly")]


def test_method_fallback_gets_the_instance(app: App, monkeypatch: pytest.MonkeyPatch) -> None:
    """On fallback the original method runs bound to the same instance."""
    m = start(app, monkeypatch, target("jobs:Job.run", "accel:run"))
    m.accel.ERROR = RuntimeError("boom")
    job = m.jobs.Job("nightly-1")
    assert job.run([1], label="x") == ["original", "nightly-1"]
    assert m.jobs.Job.run(job, [2]) == ["original", "nightly-1"]
    assert m.jobs.RAN == [("run", "nightly-1", [1], "x"), ("run", "nightly-1", [2], "nightly")]


def test_classmethod_replacement_gets_the_class(app: App, monkeypatch: pytest.MonkeyPatch) -> None:
    """A classmethod's replacement gets the class it was called on (a subclass too, or via an instance)."""
    m = start(app, monkeypatch, target("jobs:Job.build", "accel:build"))
    assert m.jobs.Job.build([1]) == ["accel", "Job"]
    assert m.jobs.Nightly.build([2]) == ["accel", "Nightly"]
    assert m.jobs.Nightly("n").build([3]) == ["accel", "Nightly"]
    assert m.accel.RAN == [("build", m.jobs.Job, [1]), ("build", m.jobs.Nightly, [2]), ("build", m.jobs.Nightly, [3])]
    m.accel.ERROR = RuntimeError("boom")
    assert m.jobs.Nightly.build([4]) == ["original", "Nightly"]
    assert m.jobs.RAN == [("build", "Nightly", [4])]


def test_staticmethod_replacement_gets_only_the_arguments(app: App, monkeypatch: pytest.MonkeyPatch) -> None:
    """A staticmethod's replacement gets neither instance nor class, called on either."""
    m = start(app, monkeypatch, target("jobs:Job.helper", "accel:helper"))
    assert m.jobs.Job.helper([1]) == ["accel"]
    assert m.jobs.Job("n").helper(tokens=[2]) == ["accel"]
    assert m.accel.RAN == [("helper", ([1],), {}), ("helper", (), {"tokens": [2]})]
    m.accel.ERROR = RuntimeError("boom")
    assert m.jobs.Job.helper([3]) == ["original"]
    assert m.jobs.RAN == [("helper", [3])]


# -- async loops ------------------------------------------------------------------------


@pytest.mark.anyio
async def test_async_replace(app: App, monkeypatch: pytest.MonkeyPatch, capture_events: list[str]) -> None:
    """An async loop is replaced by its async replacement, awaited."""
    m = start(app, monkeypatch, UPDATE_ASYNC)
    assert await m.jobs.update_async([1, 2]) == ["accel", 2, 4]
    assert m.accel.RAN == [[1, 2]]
    assert m.jobs.RAN == []
    [run] = events(capture_events, "run")
    assert (fields(run)["outcome"], fields(run)["ok"]) == ("ok", "2")


@pytest.mark.anyio
async def test_async_fallback(app: App, monkeypatch: pytest.MonkeyPatch, capture_events: list[str]) -> None:
    """An async replacement that raises falls back to awaiting the original once, outside the failure."""
    m = start(app, monkeypatch, UPDATE_ASYNC)
    m.accel.ERROR = RuntimeError("pool exhausted")
    assert await m.jobs.update_async([1, 2]) == [2, 4]
    assert m.jobs.RAN == [[1, 2]]
    assert m.jobs.HANDLING == [None]
    assert len(events(capture_events, "fallback")) == 1


@pytest.mark.anyio
async def test_async_original_exception_propagates_unchanged(app: App, monkeypatch: pytest.MonkeyPatch) -> None:
    """The async original's own exception during fallback reaches the caller unchained."""
    m = start(app, monkeypatch, UPDATE_ASYNC)
    m.accel.ERROR = RuntimeError("pool exhausted")
    m.jobs.ERROR = ValueError("bad token")
    with pytest.raises(ValueError, match="bad token") as info:
        await m.jobs.update_async([1])
    assert info.value.__context__ is None


@pytest.mark.anyio
async def test_async_propagate(app: App, monkeypatch: pytest.MonkeyPatch) -> None:
    """on_error = "propagate" raises the async replacement's exception; the original never runs."""
    m = start(app, monkeypatch, UPDATE_ASYNC + 'on_error = "propagate"\n')
    m.accel.ERROR = RuntimeError("pool exhausted")
    with pytest.raises(RuntimeError, match="pool exhausted"):
        await m.jobs.update_async([1])
    assert m.jobs.RAN == []


@pytest.mark.anyio
async def test_async_cancellation_is_not_swallowed(
    app: App, monkeypatch: pytest.MonkeyPatch, capture_events: list[str]
) -> None:
    """Cancelling an accelerated async loop cancels it: no fallback, and the run is ended."""
    m = start(app, monkeypatch, target("jobs:update_async", "accel:forever", 'fetch = "client:fetch"'))
    with anyio.CancelScope() as scope:
        scope.cancel()
        await m.jobs.update_async([1])
    assert scope.cancelled_caught
    assert m.accel.RAN == [[1]]
    assert m.jobs.RAN == []
    assert events(capture_events, "fallback") == []
    assert envelope(m.jobs.update_async).current_run() is None
    [run] = events(capture_events, "run")
    assert fields(run)["outcome"] == "interrupted"


# -- switching off, the breaker ---------------------------------------------------------


def test_control_file_off_is_honoured_at_the_next_call(
    app: App, monkeypatch: pytest.MonkeyPatch, capture_events: list[str]
) -> None:
    """`sched-accel off` takes effect at the next call without reinstall, and `on` brings it back."""
    m = start(app, monkeypatch, UPDATE)
    assert m.jobs.update([1]) == ["accel", 2]
    control().write(frozenset({"jobs:update"}))
    assert m.jobs.update([2]) == [4]
    control().write(frozenset({ALL}))
    assert m.jobs.update([3]) == [6]
    control().write(frozenset())
    assert m.jobs.update([4]) == ["accel", 8]
    assert m.accel.RAN == [[1], [4]]
    assert m.jobs.RAN == [[2], [3]]
    runs = [fields(line) for line in events(capture_events, "run")]
    assert [run["outcome"] for run in runs] == ["ok", "off", "off", "ok"]  # switched off: the original, timed
    assert [run.get("by", "-") for run in runs][1:3] == [os.environ["SCHED_ACCEL_CONTROL"]] * 2


def test_other_target_off_leaves_this_one_on(app: App, monkeypatch: pytest.MonkeyPatch) -> None:
    """Switching another target off does not touch this one."""
    m = start(app, monkeypatch, UPDATE)
    control().write(frozenset({"jobs:other"}))
    assert m.jobs.update([1]) == ["accel", 2]


def test_breaker_trips_after_threshold_fallbacks(
    app: App, monkeypatch: pytest.MonkeyPatch, capture_events: list[str]
) -> None:
    """After breaker_threshold fallbacks in a row the original is called directly; `on` re-arms it."""
    m = start(app, monkeypatch, UPDATE, top="breaker_threshold = 2\n")
    m.accel.ERROR = RuntimeError("down")
    for token in (1, 2, 3, 4):
        assert m.jobs.update([token]) == [token * 2]
    assert m.accel.RAN == [[1], [2]]
    assert m.jobs.RAN == [[1], [2], [3], [4]]
    assert len(events(capture_events, "fallback")) == 2
    [tripped] = events(capture_events, "breaker_open")
    assert "fallbacks=2" in tripped
    m.accel.ERROR = None
    control().write(frozenset())
    assert m.jobs.update([5]) == ["accel", 10]


def test_success_between_fallbacks_keeps_the_breaker_closed(app: App, monkeypatch: pytest.MonkeyPatch) -> None:
    """Fallbacks separated by a success do not trip the breaker."""
    m = start(app, monkeypatch, UPDATE, top="breaker_threshold = 2\n")
    for error in (RuntimeError("a"), None, RuntimeError("b"), None, RuntimeError("c")):
        m.accel.ERROR = error
        m.jobs.update([1])
    assert len(m.accel.RAN) == 5


def test_uninstall_calls_the_original_directly(app: App, monkeypatch: pytest.MonkeyPatch) -> None:
    """A reference taken while installed calls the original once uninstalled."""
    m = start(app, monkeypatch, UPDATE)
    update = m.jobs.update
    sched_accel.uninstall()
    assert update([1]) == [2]
    assert m.accel.RAN == []


# -- the run line -----------------------------------------------------------------------


def test_run_line_fields(app: App, monkeypatch: pytest.MonkeyPatch, capture_events: list[str]) -> None:
    """One run line per call with target, mode, outcome, items, ok, failed, seconds and concurrency."""
    m = start(app, monkeypatch, UPDATE.replace("accel:update", "accel:tolerant"))
    m.client.FAIL.add(2)
    assert m.jobs.update([1, 2, 3]) == [2, None, 6]
    [run] = events(capture_events, "run")
    got = fields(run)
    assert re.fullmatch(r"\d+(\.\d{1,3})?", got.pop("seconds"))
    assert got == {
        "target": "jobs:update",
        "mode": "replace",
        "outcome": "ok",
        "items": "3",
        "ok": "2",
        "failed": "1",
        "concurrency": "4",
    }


def test_run_line_on_fallback_carries_the_reason(
    app: App, monkeypatch: pytest.MonkeyPatch, capture_events: list[str]
) -> None:
    """A fallback run line says why, and counts only the replacement's per-item calls."""
    m = start(app, monkeypatch, UPDATE)
    m.client.FAIL.add(2)
    m.accel.ERROR = None
    with pytest.raises(LookupError):
        m.jobs.update([1, 2, 3])  # the replacement fails at 2, then the original fails at 2 too
    [run] = events(capture_events, "run")
    got = fields(run)
    assert (got["outcome"], got["items"], got["ok"], got["failed"]) == ("fallback", "3", "1", "1")
    assert got["reason"] == "LookupError: 2"


def test_run_line_items_by_position_or_unknown(
    app: App, monkeypatch: pytest.MonkeyPatch, capture_events: list[str]
) -> None:
    """items may be a position; without items the count is shown as "-"; concurrency defaults to the top level."""
    m = start(
        app,
        monkeypatch,
        target("jobs:update", "accel:update", "items = 0") + target("jobs:Job.run", "accel:run"),
        top="concurrency = 3\n",
    )
    m.jobs.update([1, 2])
    m.jobs.Job("n").run([1, 2, 3])
    first, second = (fields(line) for line in events(capture_events, "run"))
    assert (first["items"], first["concurrency"]) == ("2", "3")
    assert (second["items"], second["concurrency"]) == ("-", "3")


def test_per_item_calls_outside_a_run_are_not_counted(
    app: App, monkeypatch: pytest.MonkeyPatch, capture_events: list[str]
) -> None:
    """The per-item call made outside any run of the loop is left alone."""
    m = start(app, monkeypatch, UPDATE)
    assert m.client.fetch(5) == 10
    m.jobs.update([1])
    assert fields(events(capture_events, "run")[0])["ok"] == "1"
    assert envelope(m.jobs.update).current_run() is None


def test_flag_is_required(app: App, monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing is replaced when the flag is off at install()."""
    app.write("client.py", CLIENT)
    app.write("jobs.py", JOBS)
    app.write("accel.py", ACCEL)
    app.config(UPDATE)
    monkeypatch.setenv("ENABLE_SCHEDULER_OPTIMIZATION", "false")
    assert sched_accel.install() is False
    jobs: ModuleType = importlib.import_module("jobs")
    assert jobs.update([1]) == [2]
