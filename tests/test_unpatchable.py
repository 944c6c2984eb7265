"""_unpatchable.py: targets that cannot be patched safely are refused with the reason and what
to name instead: at config validation from the spec's text, and when the target resolves."""

from __future__ import annotations

import abc
import ast
import importlib
import sys
import textwrap
import tomllib
from pathlib import Path

import pytest

import sched_accel
from sched_accel import ConfigError, TargetError, TargetSpec, load_config
from sched_accel._prefetch._purity import CLIENT_LIBRARIES
from sched_accel._unpatchable import HTTP_LIBRARIES, LIBRARIES, STDLIB, refused_module

from .conftest import App
from .test_cli import cli, parts, table

INSTEAD = "name the app's own function that contains the loop"
STDLIB_WHY = "is part of the standard library that sched_accel itself runs on: patching it would reach into sched_accel's own work"
LIBRARY_WHY = (
    "is a library that sched_accel itself runs on or patches: patching it would reach into sched_accel's own work"
)
C_WHY = "is a built-in or C function ({}): it has no Python code to wrap, and every caller in the interpreter, sched_accel included, shares it"

# An app module that reaches interpreter internals and our own dependencies under its own names.
ALIASES = """
    import collections
    import functools
    import json
    import threading


    size = len
    dumps = json.dumps
    part = functools.partial(print, "item")
    nothing = object()


    class Meta(type):
        def __call__(cls, *args, **kwargs):
            return super().__call__(*args, **kwargs)


    class Ordered(collections.OrderedDict):
        pass


    class Worker(threading.Thread):
        pass


    class Plain:
        pass


    class Callable:
        def __call__(self, tokens):
            return tokens


    call = Callable()


    def update(tokens):
        return [t * 2 for t in tokens]
"""
AT_RESOLVE = {
    "size": C_WHY.format("builtin_function_or_method"),
    "Ordered.popitem": C_WHY.format("method_descriptor"),
    "Plain.__init__": C_WHY.format("wrapper_descriptor"),
    "nothing.__str__": C_WHY.format("method-wrapper"),
    "part": "is a functools.partial object, not a function with code of its own",
    "call": "is a Callable object, not a function with code of its own",
    "Meta.__call__": "is a method of the metaclass aliases.Meta (a subclass of type), which runs whenever any class of that kind is made or called",
    "dumps": "is defined in json, part of the standard library that sched_accel itself runs on",
    "Worker.run": "is defined in threading, part of the standard library",
}


def config_for(loop: str, **keys: str) -> str:
    """A one-target config: ``loop`` with a replacement, and ``keys`` (TOML values as written)."""
    extra = "".join(f"{key} = {value}\n" for key, value in keys.items())
    return f'[[targets]]\nloop = "{loop}"\nreplacement = "aliases:update"\n{extra}'


# -- from the spec's text, when the config is validated ----------------------------------------
@pytest.mark.parametrize(
    ("loop", "why"),
    [
        (
            "builtins:len",
            "builtins is the module of the interpreter's built-in functions and types, which every module calls",
        ),
        ("builtins:type.__call__", "builtins is the module of the interpreter's built-in functions"),
        ("abc:ABCMeta.__call__", f"abc {STDLIB_WHY}"),
        ("threading:Thread.run", f"threading {STDLIB_WHY}"),
        ("json:dumps", f"json {STDLIB_WHY}"),
        ("collections:OrderedDict.popitem", f"collections {STDLIB_WHY}"),
        ("urllib.request:urlopen", f"urllib.request {STDLIB_WHY}"),
        ("_json:encode_basestring", f"_json {STDLIB_WHY}"),
        ("httpx:Client.send", f"httpx {LIBRARY_WHY}"),
        ("wrapt:FunctionWrapper.__call__", f"wrapt {LIBRARY_WHY}"),
        ("sched_accel._engine:map", "sched_accel._engine is sched_accel's own code"),
    ],
)
def test_a_loop_in_a_module_we_run_on_is_refused_by_the_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capture_events: list[str], loop: str, why: str
) -> None:
    """Such a loop is a config error naming it, why, and what to name instead: install() logs it and returns False."""
    path = tmp_path / "sched_accel.toml"
    path.write_text(config_for(loop))
    monkeypatch.setenv("ENABLE_SCHEDULER_OPTIMIZATION", "1")
    assert sched_accel.install(path) is False
    [line] = capture_events
    assert line.startswith(
        f"sched_accel.config_invalid - {path}: target 1 ({loop}): targets.loop = '{loop}' is not allowed: "
    )
    assert f"is not allowed: {why}" in line and f"; {INSTEAD}; the app runs unpatched" in line


@pytest.mark.parametrize(
    ("key", "value", "instead"),
    [
        ("replacement", '"json:dumps"', "name the app's own function that does the loop's work"),
        ("fetch", '"json:loads"', "name the app's own function that fetches one item, or leave `fetch` out"),
        ("fetch", '"anyio:run"', "name the app's own function that fetches one item"),
        ("items", '"returned-by:json:loads"', "name the app's own function that returns the items"),
    ],
)
def test_each_part_of_a_target_is_held_to_its_rule(tmp_path: Path, key: str, value: str, instead: str) -> None:
    """replacement, fetch and the items' call may not name a module we run on either; the message fits the part."""
    path = tmp_path / "sched_accel.toml"
    body = f'[[targets]]\nloop = "aliases:update"\nmode = "prefetch"\n{key} = {value}\n'
    path.write_text(body if key == "replacement" else body + 'items = "tokens"\n' * (key != "items"))
    with pytest.raises(ConfigError, match=f"targets.{key} = .* is not allowed: .*; {instead}"):
        load_config(path)


@pytest.mark.parametrize(
    "fetch", ["httpx:Client.get", "requests:Session.get", "urllib.request:urlopen", "aiohttp:ClientSession.get"]
)
def test_a_fetch_may_name_an_http_library(tmp_path: Path, fetch: str) -> None:
    """A fetch in an HTTP client library passes validation: the per-item check says it is prefetched at the HTTP level."""
    path = tmp_path / "sched_accel.toml"
    path.write_text(f'[[targets]]\nloop = "aliases:update"\nfetch = "{fetch}"\nitems = "tokens"\n')
    [target] = load_config(path).targets
    assert target.fetch is not None and target.fetch.role == "fetch"


def test_a_module_of_the_apps_named_like_ours_is_allowed() -> None:
    """Only the top-level name counts: the app's own ``jobs.json`` or ``legacy.threading`` is the app's."""
    for text in ("jobs.json:dumps", "legacy.threading:run", "jsonish:dumps", "httpx_jobs:send"):
        assert TargetSpec.parse(text, role="loop").module == text.partition(":")[0]
    assert refused_module("jobs.json", "loop") is None


# -- on the object, when the target resolves -------------------------------------------------
@pytest.mark.parametrize("qualname", list(AT_RESOLVE))
def test_what_the_apps_names_reach_is_refused_when_resolved(app: App, qualname: str) -> None:
    """A C function, a partial, a metaclass method or our dependencies' code under an app's name: TargetError saying why."""
    app.write("aliases.py", ALIASES)
    aliases = importlib.import_module("aliases")
    with pytest.raises(TargetError) as info:
        TargetSpec.parse(f"aliases:{qualname}", role="loop").resolve(aliases)
    assert str(info.value).startswith(f"aliases:{qualname}: {AT_RESOLVE[qualname]}")
    assert str(info.value).endswith(f"; {INSTEAD}")


def test_a_metaclass_method_is_refused_not_recursed_into() -> None:
    """abc:ABCMeta.__call__ (a RecursionError once) resolves to a refusal, with or without a role."""
    for spec in (TargetSpec.parse("abc:ABCMeta.__call__"), TargetSpec.parse("builtins:type.__call__")):
        with pytest.raises(
            TargetError, match=r"is a method of the metaclass (abc\.ABCMeta|builtins\.type) \(a subclass of type\)"
        ):
            spec.resolve(importlib.import_module(spec.module or ""))
    assert abc.ABCMeta.__call__ is type.__call__


def test_the_apps_own_functions_still_resolve(app: App) -> None:
    """The app's function, and its method on a class whose metaclass is the app's, are patchable."""
    app.write(
        "aliases.py",
        textwrap.dedent(ALIASES)
        + "\n\nclass Built(metaclass=Meta):\n    def run(self, tokens):\n        return tokens\n",
    )
    aliases = importlib.import_module("aliases")
    assert TargetSpec.parse("aliases:update", role="loop").resolve(aliases).kind == "function"
    assert TargetSpec.parse("aliases:Built.run", role="loop").resolve(aliases).kind == "method"


def test_a_refused_target_is_logged_and_the_loop_runs_unpatched(
    app: App, monkeypatch: pytest.MonkeyPatch, capture_events: list[str]
) -> None:
    """install() logs target_unresolved with the reason; the loop and the app run as without us."""
    app.write("aliases.py", ALIASES)
    app.config(
        config_for("aliases:Ordered.popitem") + '\n[[targets]]\nloop = "aliases:size"\nreplacement = "aliases:update"\n'
    )
    monkeypatch.setenv("ENABLE_SCHEDULER_OPTIMIZATION", "1")
    aliases = importlib.import_module("aliases")
    assert sched_accel.install() is True
    assert sched_accel.patched_targets() == []
    assert aliases.size is len and vars(aliases.Ordered).get("popitem") is None
    lines = [line for line in capture_events if "target_unresolved" in line]
    assert [line.split(" - ")[0] for line in lines] == [
        "sched_accel.target_unresolved target=aliases:Ordered.popitem",
        "sched_accel.target_unresolved target=aliases:size",
    ]
    assert C_WHY.format("method_descriptor") in lines[0] and lines[0].endswith(f"; {INSTEAD}; this loop runs unpatched")
    assert aliases.Ordered(a=1).popitem() == ("a", 1)


# -- sched-accel check -------------------------------------------------------------------------
def test_check_reports_a_refused_loop(app: App) -> None:
    """check names the refused loop: a config error (exit 2) from the text, a problem row (exit 1) once resolved."""
    app.write("aliases.py", ALIASES)
    config = app.config(config_for("abc:ABCMeta.__call__"))
    out = cli(app, "check")
    assert out.returncode == 2
    assert f"targets.loop = 'abc:ABCMeta.__call__' is not allowed: abc {STDLIB_WHY}; {INSTEAD}" in out.stderr

    config.write_text(
        config_for("aliases:Meta.__call__") + '\n[[targets]]\nloop = "aliases:dumps"\nfetch = "aliases:size"\n'
        'mode = "prefetch"\nitems = "tokens"\n'
    )
    out = cli(app, "check")
    assert out.returncode == 1
    assert table(out.stdout)["aliases:Meta.__call__"][:3] == ["aliases:Meta.__call__", "no", "no"]
    found = parts(out.stdout)
    assert found["aliases:Meta.__call__", "loop"][1] == "problem"
    assert found["aliases:Meta.__call__", "loop"][2].startswith(AT_RESOLVE["Meta.__call__"])
    assert found["aliases:dumps", "loop"][2].startswith(AT_RESOLVE["dumps"])
    assert found["aliases:dumps", "fetch"][1:] == (
        "problem",
        C_WHY.format("builtin_function_or_method") + "; name the app's own function that fetches one item, "
        "or leave `fetch` out to prefetch the loop's HTTP requests",
    )
    assert "2 problem(s) found" in out.stderr


# -- the lists ---------------------------------------------------------------------------------
SRC = Path(__file__).resolve().parent.parent / "src"


def test_the_lists_hold_every_module_we_import() -> None:
    """Every stdlib module and every package sched_accel's code imports (or depends on) is in the lists."""
    imported: set[str] = set()
    for path in [*SRC.joinpath("sched_accel").rglob("*.py"), SRC / "_sched_accel_boot.py"]:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                imported.update(alias.name.partition(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                imported.add(node.module.partition(".")[0])
    imported.discard("__future__")
    stdlib = {name for name in imported if name in sys.stdlib_module_names}
    assert stdlib - STDLIB == set()
    assert imported - stdlib - LIBRARIES == set()
    project = tomllib.loads((SRC.parent / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    dependencies = {d.partition(">")[0].partition("<")[0].partition("[")[0].strip() for d in project["dependencies"]}
    assert dependencies - LIBRARIES == set()


def test_the_http_libraries_are_the_ones_the_fetch_check_knows() -> None:
    """A fetch is exempt from the module rule exactly where library_method explains it instead."""
    assert HTTP_LIBRARIES == CLIENT_LIBRARIES
