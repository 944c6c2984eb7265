"""Two targets whose modules import each other: both are patched, whichever is imported
first, however the import is written, and when one of them is the process's ``__main__``.

A module is put in ``sys.modules`` before its body runs; until that body has finished, the
loop it defines does not exist yet, so the start-up hook must not patch it then."""

from __future__ import annotations

import importlib
import json
import sys
import threading
from collections.abc import Iterator
from types import ModuleType

import pytest

from _sched_accel_boot import ImportWatcher

from .conftest import App
from .test_boot import FLAG, config_env, events

#: Their child pythons must run as in production, without a tracer (see conftest).
pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("unmeasured_children")]

# legacy_app.web and legacy_app.leaderboard import each other at their top; `{imports}` is
# how each names the other. Each calls its own loop when run as `python -m`.
WEB = """
    {imports}

    def serve(tokens):
        return ["web", *tokens]

    if __name__ == "__main__":
        import report
        report.show(serve)
        report.show_other("legacy_app.leaderboard", "refresh")
"""
LEADERBOARD = """
    {imports}

    def refresh(tokens):
        return ["leaderboard", *tokens]

    if __name__ == "__main__":
        import report
        report.show(refresh)
        report.show_other("legacy_app.web", "serve")
"""
IMPORTS = {
    "from-package": ("from legacy_app import leaderboard", "from legacy_app import web"),
    "import-dotted": ("import legacy_app.leaderboard", "import legacy_app.web"),
}
ACCEL = """
    def serve(tokens):
        return ["fast web", *tokens]

    def refresh(tokens):
        return ["fast leaderboard", *tokens]
"""
CONFIG = """
    [[targets]]
    loop = "legacy_app.web:serve"
    replacement = "accel:serve"

    [[targets]]
    loop = "legacy_app.leaderboard:refresh"
    replacement = "accel:refresh"
"""
# One line of JSON per loop called: what it returned and whether our wrapper is in place.
REPORT = """
    import json
    import sys

    def show(loop):
        print(json.dumps([loop(["x"]), type(loop).__name__]))

    def show_other(module, name):
        show(getattr(sys.modules[module], name))
"""
MAIN = """
    import report
    import {first}
    import legacy_app.web as web
    import legacy_app.leaderboard as leaderboard

    report.show(web.serve)
    report.show(leaderboard.refresh)
"""
WEB_PATCHED = [["fast web", "x"], "SchedAccelWrapper"]
LEADERBOARD_PATCHED = [["fast leaderboard", "x"], "SchedAccelWrapper"]


@pytest.fixture(params=list(IMPORTS))
def pair(app: App, request: pytest.FixtureRequest) -> App:
    """legacy_app.web and legacy_app.leaderboard, importing each other as the param says."""
    web_imports, leaderboard_imports = IMPORTS[request.param]
    app.write("legacy_app/__init__.py", "")
    app.write("legacy_app/web.py", WEB.format(imports=web_imports))
    app.write("legacy_app/leaderboard.py", LEADERBOARD.format(imports=leaderboard_imports))
    app.write("accel.py", ACCEL)
    app.write("report.py", REPORT)
    app.config(CONFIG)
    return app


def shown(stdout: str) -> list[object]:
    """What each report.show printed."""
    return [json.loads(line) for line in stdout.splitlines()]


@pytest.mark.parametrize("first", ["legacy_app.web", "legacy_app.leaderboard"])
def test_both_targets_are_patched_whichever_module_is_imported_first(pair: App, first: str) -> None:
    """Each of two mutually importing target modules imported first: both loops are patched."""
    pair.write("main.py", MAIN.format(first=first))
    out = pair.run("main.py", env=config_env(pair, **{FLAG: "1"}))
    assert out.returncode == 0, out.stderr
    assert shown(out.stdout) == [WEB_PATCHED, LEADERBOARD_PATCHED], out.stderr
    assert sorted(events(out.stderr)) == ["active", "patched", "patched", "run", "run"]


@pytest.mark.parametrize(
    ("module", "expected"),
    [
        ("legacy_app.web", [WEB_PATCHED, LEADERBOARD_PATCHED]),
        ("legacy_app.leaderboard", [LEADERBOARD_PATCHED, WEB_PATCHED]),
    ],
)
def test_both_targets_are_patched_when_one_is_run_as_main(pair: App, module: str, expected: list[object]) -> None:
    """``python -m`` one of them: its loop (in ``__main__``) and the other's are patched."""
    out = pair.run("-m", module, env=config_env(pair, **{FLAG: "1"}))
    assert out.returncode == 0, out.stderr
    assert shown(out.stdout) == expected, out.stderr
    assert sorted(events(out.stderr)) == ["active", "patched", "patched", "run", "run"]


# -- the watcher itself, in this process: a module watched while its body runs ----------------
HOOKS = """
    import threading

    WATCHER = None
    CALLS = []
    WATCHED = set()
    FAIL = False
    STARTED = threading.Event()
    GO = threading.Event()

    def record(module):
        CALLS.append((module.__name__, getattr(module, "VALUE", "half-loaded")))

    def during(name):
        # Called from the body of the module `name`: watch it while it is half-loaded.
        if name not in WATCHED:
            WATCHED.add(name)
            WATCHER.watch(name, record)
            CALLS.append((name, "watched"))
"""
HALF = """
    import hooks

    hooks.during(__name__)
    if hooks.FAIL:
        raise RuntimeError("this import fails")
    VALUE = 1
"""


@pytest.fixture
def hooks(app: App) -> Iterator[ModuleType]:
    """A hooks module whose ``during(name)`` watches ``name`` with a fresh watcher."""
    app.write("hooks.py", HOOKS)
    for name in ("half", "later", "again"):
        app.write(f"{name}.py", HALF if name == "half" else "VALUE = 2\n")
    module = importlib.import_module("hooks")
    module.WATCHER = ImportWatcher()  # type: ignore[attr-defined]
    yield module
    module.WATCHER.clear()


def test_watcher_defers_a_module_watched_while_it_runs_through_our_loader(hooks: ModuleType) -> None:
    """Watched again from its own body (imported through our loader): each callback runs once, after the body."""
    hooks.WATCHER.watch("half", hooks.record)
    import half  # noqa: F401

    assert hooks.CALLS == [("half", "watched"), ("half", 1), ("half", 1)]
    assert hooks.WATCHER.watching() == []


def test_watcher_calls_back_at_once_for_a_module_watched_from_its_own_callback(hooks: ModuleType) -> None:
    """A callback that watches the module it was called for (install() does): called at once, not left waiting."""
    calls: list[object] = []
    watcher = hooks.WATCHER
    watcher.watch("later", lambda module: watcher.watch("later", lambda again: calls.append(again.VALUE)))
    import later  # noqa: F401

    assert (calls, watcher.watching()) == ([2], [])


def test_watcher_calls_back_as_an_import_that_began_before_it_watched_ends(hooks: ModuleType) -> None:
    """Its import began before the watcher was on sys.meta_path: called back once, as that import ends."""
    import half  # noqa: F401

    # After the body (VALUE is there), before the import returned; not again at later imports.
    assert hooks.CALLS == [("half", "watched"), ("half", 1)]
    assert type(sys.modules["half"].__spec__).__module__ != "_sched_accel_boot"  # the spec's class put back
    import later  # noqa: F401

    assert hooks.CALLS == [("half", "watched"), ("half", 1)]
    hooks.WATCHER.settle()
    import again  # noqa: F401

    assert hooks.CALLS == [("half", "watched"), ("half", 1)]
    assert hooks.WATCHER.watching() == []


def test_watcher_never_calls_back_for_a_module_whose_import_failed(hooks: ModuleType) -> None:
    """Watched half-loaded, then its import fails: no callback; the next import of it that succeeds calls back once."""
    hooks.FAIL = True  # type: ignore[attr-defined]
    with pytest.raises(RuntimeError, match="this import fails"):
        import half  # noqa: F401
    import later  # noqa: F401

    hooks.WATCHER.settle()
    assert (hooks.CALLS, hooks.WATCHER.watching()) == ([("half", "watched")], ["half"])
    hooks.FAIL = False  # type: ignore[attr-defined]
    import half  # noqa: F401, F811

    assert hooks.CALLS == [("half", "watched"), ("half", 1)]
    assert hooks.WATCHER.watching() == []


def test_watcher_settles_a_module_another_thread_was_importing(app: App, hooks: ModuleType) -> None:
    """Watched while another thread runs its body: no callback then; settle() (end of install) calls back once."""
    app.write("slow.py", "import hooks\nhooks.STARTED.set()\nhooks.GO.wait(10)\nVALUE = 3\n")
    thread = threading.Thread(target=importlib.import_module, args=("slow",))
    thread.start()
    assert hooks.STARTED.wait(10)
    hooks.WATCHER.watch("slow", hooks.record)
    assert hooks.CALLS == []
    hooks.GO.set()
    thread.join(10)
    hooks.WATCHER.settle()
    hooks.WATCHER.settle()
    assert hooks.CALLS == [("slow", 3)]
    assert "slow" in sys.modules and hooks.WATCHER.watching() == []


# -- install() called from the app's own code, wherever it sits ------------------------------
# The config is not where the start-up hook looks (its name is the app's own): only the
# install() call patches. `{before}` and `{after}` are what the module holding the loop runs
# above and below its functions.
JOBS = "{before}\n\ndef get(item):\n    return item * 10\n\ndef loop(items):\n    return [get(item) for item in items]\n\n{after}\n"
INSTALL = 'import sched_accel\nsched_accel.install("jobs.toml")'
# Nothing is imported between `import jobs` and the checks: the patch must be in place when
# the import returns, not at the next import anywhere.
JOBS_MAIN = """
    import jobs
    import sys
    print(type(jobs.loop).__name__, jobs.loop([1, 2, 3]), sys.modules["sched_accel"].patched_targets())
"""
PLACES = {
    "at the bottom": ("", INSTALL),
    "at the bottom, twice": ("", f"{INSTALL}\nsched_accel.install('jobs.toml')"),
    "at the top": (INSTALL, ""),
    "in a module it imports": ("import installs", ""),
    "in a module it imports last": ("", "import installs"),
}


@pytest.mark.parametrize("place", list(PLACES))
def test_install_from_the_app_patches_the_loop_by_the_time_its_module_is_imported(app: App, place: str) -> None:
    """install() at the top or bottom of the loop's module, twice, or in a module it imports: patched when the import returns."""
    before, after = PLACES[place]
    app.write("jobs.py", JOBS.format(before=before, after=after))
    app.write("installs.py", INSTALL + "\n")
    app.write("jobs.toml", '[[targets]]\nloop = "jobs:loop"\nfetch = "jobs:get"\nitems = "items"\npure = true\n')
    app.write("main.py", JOBS_MAIN)
    out = app.run("main.py", env={FLAG: "1"})
    assert out.returncode == 0, out.stderr
    assert out.stdout.split(None, 1) == ["SchedAccelWrapper", "[10, 20, 30] ['jobs:loop']\n"], out.stderr
    # No config at start (the app names its own): said, then the app's install() is.
    assert events(out.stderr) == ["no_config", "active", "patched", "run"], out.stderr
