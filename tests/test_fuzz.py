"""Fuzzing the config: whatever a config says, the host app runs and gets its own result.

Hypothesis writes configs from a grammar of what the keys may hold and what they must not
(numbers at and past every bound, NaN and infinities, wrong types, deep tables, unknown
keys, targets naming interpreter internals, our own modules or nothing at all) and some
that are not TOML at all. Each one is installed in-process, then the app's loops (sync and
async, function level and HTTP level) run: ``install()`` returns a bool and never raises,
and each loop returns what it returns with the flag off. A sample goes through the real
start-up hook in subprocesses: each exits 0 with the flag-off output.

``make fuzz`` runs many more examples (``SCHED_ACCEL_FUZZ``).
"""

from __future__ import annotations

import asyncio
import importlib
import json
import math
import os
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import sched_accel

from .conftest import App
from .faultserver import FaultServer

EXAMPLES = int(os.environ.get("SCHED_ACCEL_FUZZ", "400"))
#: How many examples installed (True) or not (False): the grammar must reach both.
INSTALLED: Counter[bool] = Counter()

JOB = """
    import asyncio
    import urllib.request

    BASE = []

    def price(token):
        return len(str(token)) * 3

    def loop(tokens):
        return [price(token) for token in tokens]

    async def aprice(token):
        await asyncio.sleep(0)
        return len(str(token)) * 5

    async def aloop(tokens):
        return [await aprice(token) for token in tokens]

    def fetched(tokens):
        # HTTP level: a GET per item, through urllib
        out = []
        for token in tokens:
            with urllib.request.urlopen(f"{BASE[0]}/item/{token}", timeout=10) as answer:
                out.append(answer.status)
        return out
"""
TOKENS = [f"t{i}" for i in range(12)]
EXPECTED = {"loop": [6] * 10 + [9] * 2, "aloop": [10] * 10 + [15] * 2, "fetched": [200] * 12}

# -- the grammar ---------------------------------------------------------------------------------
NUMBERS = st.one_of(
    st.sampled_from([0, 1, 2, 8, 10_000, 10_001, 100_000, 100_001, 1_000_000, -1, 2**63, 86_400, 86_401]),
    st.sampled_from([0.0, 0.5, 1e-300, 1e300, math.inf, -math.inf, math.nan, 1 / 86_400, 604_800.5]),
    st.integers(-(10**12), 10**12),
    st.floats(allow_nan=True, allow_infinity=True),
)
NAMES = st.sampled_from(
    [
        "fuzzjob:loop", "fuzzjob:aloop", "fuzzjob:fetched", "fuzzjob:price", "fuzzjob:aprice", "fuzzjob:nothing",
        "builtins:len", "abc:ABCMeta.__call__", "builtins:type.__call__", "threading:Thread.run", "json:dumps",
        "sched_accel:install", "httpx:Client.get", "collections:OrderedDict.popitem", "os:getcwd", "nosuch:thing",
        "fuzzjob", ":", "fuzzjob:", "fuzzjob:<locals>.f", "../../etc:passwd", "fuzzjob.py:loop", "",
    ]
)
SCALARS = st.one_of(NUMBERS, st.booleans(), st.text(max_size=12), NAMES)


def nested(depth: int) -> Any:
    value: Any = 1
    for i in range(depth):
        value = {"k": value} if i % 2 else [value]
    return value


VALUES = st.one_of(
    SCALARS,
    st.lists(SCALARS, max_size=3),
    st.dictionaries(st.sampled_from(["a", "per_second", "loop", "x y"]), SCALARS, max_size=2),
    st.integers(20, 120).map(nested),
)
TARGET_KEYS = ["loop", "fetch", "items", "args", "concurrency", "window", "timeout", "mode", "replacement",
               "on_error", "per_second", "burst", "pure", "methods", "max_age", "skip_sleeps", "retry", "bogus"]
TOP_KEYS = ["concurrency", "breaker_threshold", "breaker_cooldown", "log", "control_file", "retry", "hosts",
            "tool", "targets", "unknown"]


@st.composite
def targets(draw: st.DrawFn) -> dict[str, Any]:
    target: dict[str, Any] = {"loop": draw(NAMES)}
    for key in draw(st.lists(st.sampled_from(TARGET_KEYS), max_size=6, unique=True)):
        if key in ("loop", "fetch", "replacement"):
            target[key] = draw(NAMES)
        elif key == "items":
            target[key] = draw(st.sampled_from(["tokens", 0, 5, "learned", "fuzzjob:TOKENS", "returned-by:x:y", "", -1]))
        elif key == "methods":
            target[key] = draw(st.lists(st.sampled_from(["GET", "HEAD", "POST", "get", 1]), max_size=3))
        else:
            target[key] = draw(VALUES)
    return target


#: Values a user may well write: the target is installed, and its loop is accelerated under them.
VALID = {
    "concurrency": st.sampled_from([1, 2, 8, 10_000]),
    "window": st.sampled_from([1, 2, 128, 100_000]),
    "timeout": st.sampled_from([5, 86_400]),
    "per_second": st.sampled_from([1_000, 1e6]),
    "burst": st.sampled_from([1, 100_000]),
    "items": st.sampled_from(["tokens", 0, "learned"]),
    "pure": st.booleans(),
    "methods": st.sampled_from([["GET"], ["HEAD"], ["GET", "HEAD"]]),
    "max_age": st.sampled_from([1e-6, 60, 86_400]),
    "skip_sleeps": st.booleans(),
}
FETCH = {"fuzzjob:loop": "fuzzjob:price", "fuzzjob:aloop": "fuzzjob:aprice", "fuzzjob:fetched": "http"}


@st.composite
def valid_targets(draw: st.DrawFn) -> dict[str, Any]:
    loop = draw(st.sampled_from(sorted(FETCH)))
    target: dict[str, Any] = {"loop": loop}
    if draw(st.booleans()):
        target["fetch"] = FETCH[loop]
        target["items"] = "tokens"  # a per-item function needs its items declared
    for key in draw(st.lists(st.sampled_from(sorted(VALID)), max_size=5, unique=True)):
        target[key] = draw(VALID[key])
    return target


@st.composite
def configs(draw: st.DrawFn) -> str:
    """A config's text: half valid (so that loops run accelerated), half from the wider
    grammar, some not TOML at all, some a pyproject.toml's ``[tool]`` gone wrong."""
    kind = draw(st.integers(0, 9))
    if kind < 5:
        top = {"concurrency": draw(VALID["concurrency"])} if draw(st.booleans()) else {}
        return toml(top | {"targets": draw(st.lists(valid_targets(), min_size=1, max_size=3, unique_by=lambda t: t["loop"]))})
    if kind == 5:
        return draw(st.sampled_from(["tool = 1\n", 'tool = "x"\n', "[tool]\nsched_accel = 3\n", "[tool.sched_accel]\ntargets = 1\n"]))
    if kind == 6:
        return draw(st.text(max_size=200)) + draw(st.sampled_from(["", "[[targets]]\nloop = 'x:y", "\x00\xff", "a = [[[["]))
    doc: dict[str, Any] = {}
    for key in draw(st.lists(st.sampled_from(TOP_KEYS), max_size=4, unique=True)):
        if key == "targets":
            continue
        if key == "hosts":
            doc[key] = {draw(st.sampled_from(["127.0.0.1", "api.example.com", "x/y", ""])): {
                draw(st.sampled_from(["per_second", "burst", "concurrency", "breaker_cooldown", "nope"])): draw(VALUES)}}
        elif key == "retry":
            doc[key] = {draw(st.sampled_from(["deadline", "attempts", "initial", "maximum", "on", "patterns"])): draw(VALUES)}
        else:
            doc[key] = draw(VALUES)
    doc["targets"] = draw(st.lists(targets(), min_size=1, max_size=3))
    return toml(doc)


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf") if math.isinf(value) else repr(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    return "{" + ", ".join(f"{json.dumps(str(k))} = {_value(v)}" for k, v in value.items()) + "}"


def toml(doc: dict[str, Any]) -> str:
    lines = [f"{json.dumps(k)} = {_value(v)}" for k, v in doc.items() if k != "targets"]
    for target in doc["targets"]:
        lines.append("[[targets]]")
        lines.extend(f"{json.dumps(k)} = {_value(v)}" for k, v in target.items())
    return "\n".join(lines) + "\n"


# -- the host app --------------------------------------------------------------------------------
class Host:
    def __init__(self, app: App, base: str) -> None:
        app.write("fuzzjob.py", JOB)
        self.app = app
        self.job: Any = importlib.import_module("fuzzjob")
        self.job.BASE[:] = [base]

    def check(self, text: str) -> None:
        name = "pyproject.toml" if text.startswith(("tool", "[tool")) else "fuzz.toml"
        path = self.app.root / name
        path.write_text(text, encoding="utf-8", errors="surrogateescape")
        sched_accel.uninstall()
        installed = sched_accel.install(str(path))
        assert installed in (True, False)
        INSTALLED[installed] += 1
        try:
            assert self.job.loop(TOKENS) == EXPECTED["loop"]
            assert asyncio.run(self.job.aloop(TOKENS)) == EXPECTED["aloop"]
            assert self.job.fetched(TOKENS) == EXPECTED["fetched"]
        finally:
            sched_accel.uninstall()


@pytest.fixture(scope="module")
def server() -> Any:
    with FaultServer(latency=0) as running:
        yield running


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(text=configs())
def test_any_config_leaves_the_host_running_with_its_own_results(
    app: App, server: FaultServer, monkeypatch: pytest.MonkeyPatch, text: str
) -> None:
    monkeypatch.setenv("ENABLE_SCHEDULER_OPTIMIZATION", "1")
    Host(app, server.url).check(text)


def test_the_grammar_reaches_installed_and_refused_configs() -> None:
    """Run after the fuzz test (file order): both outcomes were exercised, many times."""
    if not INSTALLED:
        pytest.skip("the fuzz test did not run in this session")
    assert INSTALLED[True] >= EXAMPLES // 6 and INSTALLED[False] >= EXAMPLES // 6, INSTALLED


MAIN = """
    import asyncio, sys
    import fuzzjob
    fuzzjob.BASE.append(sys.argv[1])
    tokens = [f"t{i}" for i in range(12)]
    print(fuzzjob.loop(tokens), asyncio.run(fuzzjob.aloop(tokens)), fuzzjob.fetched(tokens))
"""


@settings(
    max_examples=int(os.environ.get("SCHED_ACCEL_FUZZ_HOOK", "12")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(text=configs())
def test_a_sample_through_the_real_hook(app: App, server: FaultServer, text: str) -> None:
    """Configs from the same grammar, each in a fresh interpreter started with the flag on:
    it exits 0 and prints what it prints with the flag off."""
    app.write("fuzzjob.py", JOB)
    app.write("main.py", MAIN)
    path = Path(app.root, "fuzz.toml")
    path.write_text(text, encoding="utf-8", errors="surrogateescape")
    done = app.run("main.py", server.url, env={"ENABLE_SCHEDULER_OPTIMIZATION": "1", "SCHED_ACCEL_CONFIG": str(path)})
    assert done.returncode == 0, (text, done.stderr[-3000:])
    assert done.stdout.strip() == f"{EXPECTED['loop']} {EXPECTED['aloop']} {EXPECTED['fetched']}", (text, done.stderr[-3000:])
