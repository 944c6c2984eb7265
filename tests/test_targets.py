"""_targets.py: parsing ``where:qualname`` specs and resolving them to what gets patched."""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from types import ModuleType

import pytest

from sched_accel import TargetError, TargetSpec
from sched_accel._targets import close_modules, close_names, did_you_mean

from .conftest import App

JOBS = """
    import functools

    LIMIT = 10


    def update(tokens):
        return tokens


    async def update_async(tokens):
        return tokens


    def produce(tokens):
        yield from tokens


    async def produce_async(tokens):
        for token in tokens:
            yield token


    def _decorate(function):
        @functools.wraps(function)
        def wrapper(*args, **kwargs):
            return function(*args, **kwargs)

        return wrapper


    @_decorate
    def wrapped_producer(tokens):
        yield from tokens


    class Job:
        def run(self, tokens):
            return tokens

        async def run_async(self, tokens):
            return tokens

        @classmethod
        def build(cls, tokens):
            return tokens

        @staticmethod
        def helper(tokens):
            return tokens

        @property
        def size(self):
            return 1

        class Inner:
            def step(self, tokens):
                return tokens


    class Nightly(Job):
        pass
"""


@pytest.fixture
def jobs(app: App) -> ModuleType:
    """A module with every kind of target (and non-target) in it."""
    app.write("jobs.py", JOBS)
    return importlib.import_module("jobs")


# -- parse ------------------------------------------------------------------------------


def test_parse_module_target() -> None:
    """ "pkg.mod:Class.method" splits into module and qualname."""
    spec = TargetSpec.parse("legacy_app.jobs:Tracker.update")
    assert (spec.module, spec.qualname, spec.path) == ("legacy_app.jobs", "Tracker.update", None)
    assert spec.text == "legacy_app.jobs:Tracker.update"
    assert not spec.is_script


def test_parse_strips_surrounding_space() -> None:
    """Spaces around a spec are not part of it (nor of the name logs use)."""
    spec = TargetSpec.parse("  jobs:update \t")
    assert spec.text == "jobs:update"
    assert spec.module == "jobs"


@pytest.mark.parametrize("where", ["jobs/tracker.py", "tracker.py", "./tracker.py", "jobs/tracker"])
def test_parse_script_target_relative_to_base(tmp_path: Path, where: str) -> None:
    """A script path is made absolute relative to ``base`` (the config's folder)."""
    spec = TargetSpec.parse(f"{where}:main", base=str(tmp_path))
    assert spec.is_script
    assert spec.module is None
    assert spec.qualname == "main"
    assert spec.path == os.path.realpath(os.path.join(tmp_path, where))
    assert spec.path is not None and os.path.isabs(spec.path)


def test_parse_absolute_script_target_ignores_base(tmp_path: Path) -> None:
    """An absolute script path stays as it is, whatever the base."""
    script = tmp_path / "job.py"
    spec = TargetSpec.parse(f"{script}:main", base="/somewhere/else")
    assert spec.path == os.path.realpath(script)


def test_parse_script_target_expands_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A script path starting with ~ is under the user's home."""
    monkeypatch.setenv("HOME", str(tmp_path))
    spec = TargetSpec.parse("~/jobs/run.py:main", base="/elsewhere")
    assert spec.path == os.path.realpath(tmp_path / "jobs" / "run.py")


def test_parse_script_target_refused_when_not_allowed() -> None:
    """With allow_path=False (fetch, replacement) a script path is refused."""
    with pytest.raises(ValueError, match="a script path is allowed only for `loop`"):
        TargetSpec.parse("jobs/client.py:get", allow_path=False)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (42, 'a string "module:qualname"'),
        (None, 'a string "module:qualname"'),
        ("jobs.update", "a colon then"),
        ("jobs:", "a colon then"),
        ("", "a colon then"),
        ("jobs:main.<locals>.update", "defined inside another function"),
        ("jobs:Job..run", "dotted Python names"),
        ("jobs:1st", "dotted Python names"),
        ("jobs:run-all", "dotted Python names"),
        (":update", "dotted module name"),
        ("legacy-app:update", "dotted module name"),
        ("jobs.:update", "dotted module name"),
    ],
)
def test_parse_errors(value: object, message: str) -> None:
    """A malformed spec raises ValueError saying what is allowed."""
    with pytest.raises(ValueError, match=message):
        TargetSpec.parse(value)


def test_parse_script_target_with_colon_in_path(tmp_path: Path) -> None:
    """The qualname is after the last colon, so a path may contain colons."""
    spec = TargetSpec.parse("a:b/job.py:main", base=str(tmp_path))
    assert spec.qualname == "main"
    assert spec.path == os.path.realpath(tmp_path / "a:b" / "job.py")


# -- resolve ----------------------------------------------------------------------------


def test_resolve_function(jobs: ModuleType) -> None:
    """A module-level function resolves to itself, owned by its module."""
    resolved = TargetSpec.parse("jobs:update").resolve(jobs)
    assert resolved.kind == "function"
    assert resolved.owner is jobs
    assert resolved.attribute == "update"
    assert resolved.function is jobs.update
    assert resolved.raw is jobs.update
    assert not resolved.is_async


def test_resolve_method(jobs: ModuleType) -> None:
    """A method resolves to the plain function, owned by its class."""
    resolved = TargetSpec.parse("jobs:Job.run").resolve(jobs)
    assert resolved.kind == "method"
    assert resolved.owner is jobs.Job
    assert resolved.attribute == "run"
    assert resolved.function is vars(jobs.Job)["run"]


def test_resolve_classmethod(jobs: ModuleType) -> None:
    """A classmethod is seen as one (from the class __dict__), its function unwrapped."""
    resolved = TargetSpec.parse("jobs:Job.build").resolve(jobs)
    assert resolved.kind == "classmethod"
    assert isinstance(resolved.raw, classmethod)
    assert resolved.function is vars(jobs.Job)["build"].__func__
    assert resolved.owner is jobs.Job


def test_resolve_staticmethod(jobs: ModuleType) -> None:
    """A staticmethod is seen as one, its function unwrapped."""
    resolved = TargetSpec.parse("jobs:Job.helper").resolve(jobs)
    assert resolved.kind == "staticmethod"
    assert isinstance(resolved.raw, staticmethod)
    assert resolved.function is vars(jobs.Job)["helper"].__func__


def test_resolve_async_function(jobs: ModuleType) -> None:
    """An async function is marked is_async."""
    resolved = TargetSpec.parse("jobs:update_async").resolve(jobs)
    assert (resolved.kind, resolved.is_async) == ("function", True)


def test_resolve_async_method(jobs: ModuleType) -> None:
    """An async method is marked is_async too."""
    resolved = TargetSpec.parse("jobs:Job.run_async").resolve(jobs)
    assert (resolved.kind, resolved.is_async) == ("method", True)


def test_resolve_nested_class_method(jobs: ModuleType) -> None:
    """Outer.Inner.method walks through both classes; the owner is the inner class."""
    resolved = TargetSpec.parse("jobs:Job.Inner.step").resolve(jobs)
    assert resolved.kind == "method"
    assert resolved.owner is jobs.Job.Inner
    assert resolved.attribute == "step"


@pytest.mark.parametrize(("name", "kind"), [("run", "method"), ("build", "classmethod"), ("helper", "staticmethod")])
def test_resolve_inherited(jobs: ModuleType, name: str, kind: str) -> None:
    """A member inherited from a base class is found through the MRO, owned by the named subclass."""
    resolved = TargetSpec.parse(f"jobs:Nightly.{name}").resolve(jobs)
    assert resolved.kind == kind
    assert resolved.owner is jobs.Nightly
    assert resolved.attribute == name
    assert resolved.raw is vars(jobs.Job)[name]


@pytest.mark.parametrize("name", ["produce", "produce_async", "wrapped_producer"])
def test_generator_functions_are_refused(jobs: ModuleType, name: str) -> None:
    """Generator functions (also async, also behind functools.wraps) cannot be re-run on fallback."""
    with pytest.raises(TargetError, match="is a generator function") as info:
        TargetSpec.parse(f"jobs:{name}").resolve(jobs)
    assert str(info.value).startswith(f"jobs:{name}: ")
    assert "declare the function that consumes it" in str(info.value)


@pytest.mark.parametrize(
    ("qualname", "what"), [("LIMIT", "int"), ("Job", "type"), ("Job.size", "property"), ("functools", "module")]
)
def test_non_callables_are_refused(jobs: ModuleType, qualname: str, what: str) -> None:
    """Constants, classes, properties and modules are not functions: refused, saying what they are."""
    with pytest.raises(TargetError, match=f"jobs:{qualname}: is a {what}, not a function"):
        TargetSpec.parse(f"jobs:{qualname}").resolve(jobs)


def test_missing_module_attribute(jobs: ModuleType) -> None:
    """A name the module lacks is reported with the module, the name, the close names and what to do."""
    with pytest.raises(TargetError) as info:
        TargetSpec.parse("jobs:updat").resolve(jobs)
    assert str(info.value) == (
        "jobs:updat: jobs has no attribute 'updat' (did you mean 'update'?); check the spelling, "
        "or run `sched-accel check` to list what resolves"
    )


def test_missing_attribute_with_nothing_close(jobs: ModuleType) -> None:
    """Without a close name, the message suggests nothing."""
    with pytest.raises(TargetError) as info:
        TargetSpec.parse("jobs:zzz").resolve(jobs)
    assert str(info.value).startswith("jobs:zzz: jobs has no attribute 'zzz'; check the spelling")


def test_missing_class_attribute_suggests_inherited_names(jobs: ModuleType) -> None:
    """The names of a class are searched through its bases: Nightly.rnu suggests the inherited run."""
    with pytest.raises(TargetError, match=r"Nightly has no attribute 'rnu' \(did you mean 'run'\?\)"):
        TargetSpec.parse("jobs:Nightly.rnu").resolve(jobs)


def test_close_names_public_first_then_private(jobs: ModuleType) -> None:
    """Public names are suggested first, private ones only when no public name is close (or the typo is private)."""
    assert close_names("updte", jobs) == ["update"]
    assert close_names("decorate", jobs) == ["_decorate"]
    assert close_names("_updat", jobs) == ["update"]
    assert close_names("update_asyn", jobs) == ["update_async"]  # only the nearly-as-close: not update too
    assert close_names("nothing_like_it", jobs) == []
    assert close_names("__init_subclas", jobs.Job) == []  # object's own names are never suggested


def test_close_modules_are_siblings(app: App) -> None:
    """A misspelt module is matched among the modules of its package (or the top-level ones)."""
    app.write("shop/__init__.py", "")
    app.write("shop/orders.py", "")
    app.write("shop/invoices.py", "")
    assert close_modules("shop.order") == ["shop.orders"]
    assert close_modules("shopp") == ["shop"]
    assert close_modules("nopackage.orders") == []


@pytest.mark.parametrize(
    ("names", "text"),
    [([], ""), (["a"], " (did you mean 'a'?)"), (["a", "b", "c"], " (did you mean 'a', 'b' or 'c'?)")],
)
def test_did_you_mean(names: list[str], text: str) -> None:
    """The suggestion reads as a sentence, or is nothing."""
    assert did_you_mean(names) == text


def test_missing_class_attribute(jobs: ModuleType) -> None:
    """A name a class lacks is reported against that class's qualname."""
    with pytest.raises(TargetError, match=r"jobs:Job\.Inner\.nope: Job\.Inner has no attribute 'nope'"):
        TargetSpec.parse("jobs:Job.Inner.nope").resolve(jobs)


def test_missing_intermediate_attribute(jobs: ModuleType) -> None:
    """A missing class in the middle of the qualname is the one reported."""
    with pytest.raises(TargetError, match=r"jobs:Nope\.run: jobs has no attribute 'Nope'"):
        TargetSpec.parse("jobs:Nope.run").resolve(jobs)
