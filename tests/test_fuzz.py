"""Fuzzing the config: whatever a config says, the host app runs and gets its own result.

Hypothesis writes configs from a grammar of what the keys may hold and what they must not
(numbers at and past every bound, NaN and infinities, wrong types, deep tables, unknown
keys, targets naming interpreter internals, our own modules or nothing at all, a
``[coordination]`` table and single_run targets) and some that are not TOML at all. Each one
is loaded (``load_config`` returns settings or raises a one-line ConfigError) and installed
in-process, then the app's loops (sync and async, function level and HTTP level) run:
``install()`` returns a bool and never raises, and each loop returns what it returns with the
flag off (or None, when it said ``single_run_skipped``: another claim held its tick). A Redis
password, in a URL or in the environment, appears in no error, log line or ``repr``. A sample
goes through the real start-up hook in subprocesses: each exits 0 with the flag-off output.

``make fuzz`` runs many more examples (``SCHED_ACCEL_FUZZ``).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import json
import logging
import math
import os
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import sched_accel

from .conftest import App
from .faultserver import FaultServer

pytestmark = pytest.mark.slow

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
        "fuzzjob:loop",
        "fuzzjob:aloop",
        "fuzzjob:fetched",
        "fuzzjob:price",
        "fuzzjob:aprice",
        "fuzzjob:nothing",
        "builtins:len",
        "abc:ABCMeta.__call__",
        "builtins:type.__call__",
        "threading:Thread.run",
        "json:dumps",
        "sched_accel:install",
        "httpx:Client.get",
        "collections:OrderedDict.popitem",
        "os:getcwd",
        "nosuch:thing",
        "fuzzjob",
        ":",
        "fuzzjob:",
        "fuzzjob:<locals>.f",
        "../../etc:passwd",
        "fuzzjob.py:loop",
        "",
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
TARGET_KEYS = [
    "loop",
    "fetch",
    "items",
    "args",
    "concurrency",
    "window",
    "timeout",
    "mode",
    "replacement",
    "on_error",
    "per_second",
    "burst",
    "pure",
    "shadow",
    "methods",
    "max_age",
    "skip_sleeps",
    "retry",
    "single_run",
    "tick",
    "bogus",
]
#: ``[hosts."..."] reads``: entries of both forms, and what they must not be.
READS = st.lists(
    st.sampled_from(
        [
            "POST /graphql",
            "post /v1/*",
            "jsonrpc:getBalance",
            "jsonrpc:get*",
            "POST graphql",
            "/x",
            "jsonrpc:",
            "POST /a b",
            "GET /?q",
            "",
        ]
    ),
    max_size=3,
)
TOP_KEYS = [
    "concurrency",
    "breaker_threshold",
    "breaker_cooldown",
    "log",
    "control_file",
    "retry",
    "hosts",
    "coordination",
    "metrics",
    "tool",
    "targets",
    "unknown",
]

# -- [coordination] and single_run -----------------------------------------------------------------
#: Redis's password, in URLs and in the environment: never in an error, a log line or a repr.
SECRET = "Fuzz-Pa55w0rd-in-url"
ENV_SECRET = "Fuzz-Pa55w0rd-in-env"
PASSWORD_ENV = {
    "SCHED_ACCEL_FUZZ_PASSWORD": ENV_SECRET,
    "SCHED_ACCEL_REDIS_PASSWORD": ENV_SECRET,
    "AWS_SECRET_ACCESS_KEY": ENV_SECRET,
}
#: Valid URLs of servers that are not there: nothing listens on 127.0.0.1:1 or at the socket, so
#: a backend made from one is refused at once (no DNS, no wait) and its claims fall back.
VALID_URLS = [
    f"redis://:{SECRET}@127.0.0.1:1/0",
    f"redis://fuzz:{SECRET}@127.0.0.1:1",
    f"rediss://:{SECRET}@127.0.0.1:1/3",
    f"redis://127.0.0.1:1/0?password={SECRET}",
    "redis://127.0.0.1:1/0",  # its password from the environment
    "unix:///nonexistent/sched-accel-fuzz.sock",
]
BAD_URLS = [
    f"http://:{SECRET}@127.0.0.1:1/",  # not a Redis scheme
    f"https://fuzz:{SECRET}@cache.internal/0",
    f"redis://:{SECRET}@127.0.0.1:99999/0",  # port out of range
    f"redis://:{SECRET}@127.0.0.1:port/0",
    f"redis://:{SECRET}@/0",  # no host
    f"redis://:{SECRET}@127.0.0.1:1/db",  # the database is not a number
    f"redis://:{SECRET}@127.0.0.1:1/0#fragment",
    f"redis://:{SECRET} @127.0.0.1:1/0",  # a space, a control character
    f"redis://:{SECRET}\x07@127.0.0.1:1/0",
    f"{SECRET}@127.0.0.1:1",  # no scheme
    f"unix://:{SECRET}@relative.sock",
    "",
    "redis://",
]
URLS = st.one_of(st.sampled_from(VALID_URLS + BAD_URLS), SCALARS)
COORDINATION_VALUES = {
    "backend": st.one_of(
        st.sampled_from(["machine", "process", "redis", "Machine", "sqlite", "", "redis://x"]), SCALARS
    ),
    "url": URLS,
    "password_env": st.one_of(
        st.sampled_from(
            [
                "SCHED_ACCEL_FUZZ_PASSWORD",
                "SCHED_ACCEL_FUZZ_UNSET",
                "AWS_SECRET_ACCESS_KEY",
                "1NOT_A_NAME",
                "WITH-DASH",
                "",
                "X" * 129,
            ]
        ),
        SCALARS,
    ),
    "single_run": st.one_of(st.booleans(), VALUES),
    "namespace": st.one_of(st.sampled_from(["fuzz", "", "x" * 201, "tab\there", "\x00", "ünï codé"]), VALUES),
    "bogus": VALUES,
}
TICKS = st.one_of(
    st.sampled_from([0.01, 0.02, 0.0099, 0, -1, 604_800, 604_801, math.nan, math.inf, True, "60"]), VALUES
)


@st.composite
def coordination_tables(draw: st.DrawFn) -> Any:
    """A ``[coordination]`` table from the wide grammar, or a value of the wrong type."""
    if draw(st.integers(0, 9)) == 0:
        return draw(VALUES)
    keys = draw(st.lists(st.sampled_from(sorted(COORDINATION_VALUES)), max_size=4, unique=True))
    table = {key: draw(COORDINATION_VALUES[key]) for key in keys}
    if "url" not in table and draw(st.booleans()):  # most tables name a server: the password's paths
        table["url"] = draw(st.sampled_from(VALID_URLS + BAD_URLS))
    return table


@st.composite
def valid_coordination(draw: st.DrawFn) -> dict[str, Any]:
    """A ``[coordination]`` table a user may well write: installed, single_run or not."""
    table: dict[str, Any] = {}
    backend = draw(st.sampled_from(["machine", "process", "redis"]))
    if backend == "redis":
        table["url"] = draw(st.sampled_from(VALID_URLS))
        if SECRET not in table["url"] and draw(st.booleans()):
            table["password_env"] = draw(st.sampled_from(["SCHED_ACCEL_FUZZ_PASSWORD", "SCHED_ACCEL_FUZZ_UNSET"]))
    if draw(st.booleans()):
        table["backend"] = backend  # else the default: machine, or redis with a url
    if backend != "process" and draw(st.booleans()):  # single_run needs a backend the processes share
        table["single_run"] = draw(st.booleans())
    if draw(st.booleans()):
        table["namespace"] = draw(st.sampled_from(["fuzz", "fuzz/staging", "ünï codé"]))
    return table


@st.composite
def targets(draw: st.DrawFn) -> dict[str, Any]:
    target: dict[str, Any] = {"loop": draw(NAMES)}
    for key in draw(st.lists(st.sampled_from(TARGET_KEYS), max_size=6, unique=True)):
        if key in ("loop", "fetch", "replacement"):
            target[key] = draw(NAMES)
        elif key == "items":
            target[key] = draw(
                st.sampled_from(["tokens", 0, 5, "learned", "fuzzjob:TOKENS", "returned-by:x:y", "", -1])
            )
        elif key == "methods":
            target[key] = draw(st.lists(st.sampled_from(["GET", "HEAD", "POST", "get", 1]), max_size=3))
        elif key == "single_run":
            target[key] = draw(st.one_of(st.booleans(), VALUES))
        elif key == "tick":
            target[key] = draw(TICKS)
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
    "shadow": st.booleans(),
    "methods": st.sampled_from([["GET"], ["HEAD"], ["GET", "HEAD"]]),
    "max_age": st.sampled_from([1e-6, 60, 86_400]),
    "skip_sleeps": st.booleans(),
}
FETCH = {"fuzzjob:loop": "fuzzjob:price", "fuzzjob:aloop": "fuzzjob:aprice", "fuzzjob:fetched": "http"}


@st.composite
def valid_targets(draw: st.DrawFn, coordination: dict[str, Any] | None = None) -> dict[str, Any]:
    loop = draw(st.sampled_from(sorted(FETCH)))
    target: dict[str, Any] = {"loop": loop}
    if draw(st.booleans()):
        target["fetch"] = FETCH[loop]
        target["items"] = "tokens"  # a per-item function needs its items declared
    for key in draw(st.lists(st.sampled_from(sorted(VALID)), max_size=5, unique=True)):
        target[key] = draw(VALID[key])
    coordination = coordination or {}
    shared = coordination.get("backend") != "process"
    single_run = draw(st.sampled_from([None, True, False] if shared else [None, False]))
    if single_run is not None:
        target["single_run"] = single_run
    if (coordination.get("single_run", False) if single_run is None else single_run) and draw(st.booleans()):
        # Without a tick each call runs (no scheduler here); with one, a call claims its tick,
        # short enough that the next example's call is in a later one.
        target["tick"] = draw(st.sampled_from([0.01, 0.02]))
    return target


@st.composite
def configs(draw: st.DrawFn) -> str:
    """A config's text: half valid (so that loops run accelerated), half from the wider
    grammar, some not TOML at all, some a pyproject.toml's ``[tool]`` gone wrong."""
    kind = draw(st.integers(0, 9))
    if kind < 5:
        top: dict[str, Any] = {"concurrency": draw(VALID["concurrency"])} if draw(st.booleans()) else {}
        coordination = draw(st.none() | valid_coordination())
        if coordination is not None:
            top["coordination"] = coordination
        targets_ = st.lists(valid_targets(coordination), min_size=1, max_size=3, unique_by=lambda t: t["loop"])
        return toml(top | {"targets": draw(targets_)})
    if kind == 5:
        return draw(
            st.sampled_from(
                ["tool = 1\n", 'tool = "x"\n', "[tool]\nsched_accel = 3\n", "[tool.sched_accel]\ntargets = 1\n"]
            )
        )
    if kind == 6:
        return draw(st.text(max_size=200)) + draw(
            st.sampled_from(["", "[[targets]]\nloop = 'x:y", "\x00\xff", "a = [[[["])
        )
    doc: dict[str, Any] = {}
    for key in draw(st.lists(st.sampled_from(TOP_KEYS), max_size=4, unique=True)):
        if key == "targets":
            continue
        if key == "hosts":
            host_key = draw(
                st.sampled_from(["per_second", "burst", "concurrency", "breaker_cooldown", "reads", "nope"])
            )
            doc[key] = {
                draw(st.sampled_from(["127.0.0.1", "api.example.com", "x/y", ""])): {
                    host_key: draw(st.one_of(READS, VALUES) if host_key == "reads" else VALUES)
                }
            }
        elif key == "retry":
            doc[key] = {
                draw(st.sampled_from(["deadline", "attempts", "initial", "maximum", "on", "patterns"])): draw(VALUES)
            }
        elif key == "coordination":
            doc[key] = draw(coordination_tables())
        else:
            doc[key] = draw(VALUES)
    if "coordination" not in doc and draw(st.integers(0, 2)) == 0:
        doc["coordination"] = draw(coordination_tables())
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
@contextlib.contextmanager
def logged() -> Iterator[list[str]]:
    """The lines sched_accel logs meanwhile, through loguru or (``log = "stdlib"``) logging."""
    from loguru import logger

    lines: list[str] = []

    class Lines(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(record.getMessage())

    handler, stdlib = Lines(logging.DEBUG), logging.getLogger("sched_accel")
    level = stdlib.level
    stdlib.addHandler(handler)
    stdlib.setLevel(logging.DEBUG)
    sink = logger.add(lambda message: lines.append(message.record["message"]), level="DEBUG")
    try:
        yield lines
    finally:
        logger.remove(sink)
        stdlib.removeHandler(handler)
        stdlib.setLevel(level)


def assert_no_password(text: str, context: str) -> None:
    for secret in (SECRET, ENV_SECRET):
        assert secret not in text, (context, text)


def skipped(lines: list[str] | str) -> set[str]:
    """The targets that said ``single_run_skipped`` (their call returned None, by design)."""
    lines = lines.splitlines() if isinstance(lines, str) else lines
    marker = "sched_accel.single_run_skipped target="
    return {line.partition(marker)[2].split(" ", 1)[0] for line in lines if marker in line}


#: Each loop's own name, and the target of its per-item call (a target too, in the wide grammar).
CALLS = {"loop": "fuzzjob:price", "aloop": "fuzzjob:aprice", "fetched": None}


def own_result(name: str, result: Any, skips: set[str]) -> bool:
    """The loop's flag-off result; or None, when the loop said its tick was another's; or that
    result with None for each call of a single_run per-item function that was skipped."""
    if result == EXPECTED[name]:
        return True
    if result is None:
        return f"fuzzjob:{name}" in skips
    return (
        CALLS[name] in skips
        and isinstance(result, list)
        and len(result) == len(EXPECTED[name])
        and all(got in (want, None) for got, want in zip(result, EXPECTED[name], strict=True))
    )


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
        with logged() as lines:
            self.load(path)
            sched_accel.uninstall()
            installed = sched_accel.install(str(path))
            assert installed in (True, False)
            INSTALLED[installed] += 1
            try:
                results = {
                    "loop": self.job.loop(TOKENS),
                    "aloop": asyncio.run(self.job.aloop(TOKENS)),
                    "fetched": self.job.fetched(TOKENS),
                }
            finally:
                sched_accel.uninstall()
        for line in lines:
            assert_no_password(line, "a log line")
        skips = skipped(lines)
        for loop, result in results.items():
            assert own_result(loop, result, skips), (loop, result, skips)

    def load(self, path: Path) -> None:
        """Settings (their repr without a password), or a ConfigError of one line without one."""
        try:
            settings = sched_accel.load_config(str(path))
        except sched_accel.ConfigError as exc:
            message = str(exc)
            assert message and "\n" not in message, message
            assert_no_password(message, "the config error")
        else:
            assert_no_password(repr(settings), "the settings' repr")


@pytest.fixture(scope="module")
def server() -> Any:
    with FaultServer(latency=0) as running:
        yield running


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(text=configs())
def test_any_config_leaves_the_host_running_with_its_own_results(
    app: App, server: FaultServer, monkeypatch: pytest.MonkeyPatch, text: str
) -> None:
    """Whatever the config says, the loops return their own results and no password is shown."""
    monkeypatch.setenv("ENABLE_SCHEDULER_OPTIMIZATION", "1")
    for variable, value in PASSWORD_ENV.items():
        monkeypatch.setenv(variable, value)
    Host(app, server.url).check(text)


def test_the_grammar_reaches_installed_and_refused_configs() -> None:
    """Run after the fuzz test (file order): both outcomes were exercised, many times."""
    if not INSTALLED:
        pytest.skip("the fuzz test did not run in this session")
    assert INSTALLED[True] >= EXAMPLES // 6 and INSTALLED[False] >= EXAMPLES // 6, INSTALLED


MAIN = """
    import asyncio, json, logging, sys
    logging.basicConfig(level=logging.DEBUG, stream=sys.stderr)  # log = "stdlib" records too
    import fuzzjob
    fuzzjob.BASE.append(sys.argv[1])
    tokens = [f"t{i}" for i in range(12)]
    print(json.dumps({"loop": fuzzjob.loop(tokens), "aloop": asyncio.run(fuzzjob.aloop(tokens)), "fetched": fuzzjob.fetched(tokens)}))
"""


@settings(
    max_examples=int(os.environ.get("SCHED_ACCEL_FUZZ_HOOK", "12")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(text=configs())
def test_a_sample_through_the_real_hook(app: App, server: FaultServer, text: str) -> None:
    """Configs from the same grammar, each in a fresh interpreter started with the flag on:
    it exits 0 and prints what it prints with the flag off; its output holds no password."""
    app.write("fuzzjob.py", JOB)
    app.write("main.py", MAIN)
    path = Path(app.root, "fuzz.toml")
    path.write_text(text, encoding="utf-8", errors="surrogateescape")
    env = {"ENABLE_SCHEDULER_OPTIMIZATION": "1", "SCHED_ACCEL_CONFIG": str(path), **PASSWORD_ENV}
    done = app.run("main.py", server.url, env=env)
    assert done.returncode == 0, (text, done.stderr[-3000:])
    assert_no_password(done.stdout + done.stderr, "the output")
    results = json.loads(done.stdout)
    for loop, result in results.items():
        assert own_result(loop, result, skipped(done.stderr)), (text, loop, result, done.stderr[-3000:])


@pytest.mark.parametrize(
    "value", [f'["redis://:{SECRET}@127.0.0.1:1/0"]', f'{{ at = "redis://:{SECRET}@127.0.0.1:1/0" }}']
)
def test_a_password_in_a_url_of_the_wrong_type_is_not_shown(app: App, value: str) -> None:
    """url = a list or a table holding a URL: the error names the type, never the password."""
    path = app.write("fuzz.toml", f"[coordination]\nurl = {value}\n")
    with pytest.raises(sched_accel.ConfigError) as raised:
        sched_accel.load_config(str(path))
    assert_no_password(str(raised.value), "the config error")
    assert "coordination.url = <" in str(raised.value)
