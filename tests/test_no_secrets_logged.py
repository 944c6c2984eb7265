"""No secret the app uses reaches a line we log or print (issue 24, item 6).

Real loops against the real local server, with secrets planted where apps keep them: a
password in the base URL, ``?api_key=`` on every request, an ``Authorization: Bearer``
header and a cookie. The scenarios make the lines that quoted them (a request that differs
from the one sent ahead, a first request that carries no item, a request retried until we
give up, a replacement whose exception quotes its URL), in this process through loguru and
through the stdlib route, and in a child python started through the start-up hook; then
``sched-accel check`` and ``status``. Every line, record and ``extra`` field is scanned for
the planted marker, and each line the scenario is about must still be there, redacted.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from sched_accel import _log, log_to_loguru, log_to_stdlib
from sched_accel._events import Event

from .conftest import App
from .faultserver import FaultServer
from .prefetch.test_prefetch_shapes import install

pytestmark = pytest.mark.slow

#: In every planted secret: what no line may contain.
MARKER = "PLANTEDSECRET"
PASSWORD = f"{MARKER}-pw-1"
API_KEY = f"{MARKER}-key-2"
TOKEN = f"{MARKER}-bearer-3"
COOKIE = f"{MARKER}-cookie-4"

JOBS = f"""
    import itertools

    import httpx

    HEADERS = {{"Authorization": "Bearer {TOKEN}", "Cookie": "session={COOKIE}"}}
    KEY = {{"api_key": "{API_KEY}"}}
    SEQUENCE = itertools.count()

    def mismatch(base, tokens):
        # a header that changes on every request: nothing sent ahead can be served
        with httpx.Client(headers=HEADERS, params=KEY) as client:
            return [client.get(f"{{base}}/item/{{t}}", headers={{"X-Sequence": str(next(SEQUENCE))}}).status_code for t in tokens]

    def unrelated(base, tokens):
        # no request carries an item's value: the line quotes the first request
        with httpx.Client(headers=HEADERS, params=KEY) as client:
            return [client.get(f"{{base}}/item/fixed{{i}}").status_code for i, _ in enumerate(tokens)]

    def failing(base, tokens):
        # the items' requests, one of them answered 503 until we give up
        with httpx.Client(headers=HEADERS, params=KEY) as client:
            return [client.get(f"{{base}}/item/{{t}}").status_code for t in tokens]

    def sequential(base, tokens):
        return failing(base, tokens)

    def raising(base, tokens):
        # a replacement whose exception quotes the request's URL
        with httpx.Client(headers=HEADERS, params=KEY) as client:
            for t in tokens:
                client.get(f"{{base}}/item/{{t}}").raise_for_status()
        return []
"""
CONFIG = """
    [retry]
    transient = true
    attempts = 2
    initial = 0.01

    [[targets]]
    loop = "secretjobs:mismatch"
    items = "tokens"
    concurrency = 4

    [[targets]]
    loop = "secretjobs:unrelated"
    items = "tokens"
    concurrency = 4

    [[targets]]
    loop = "secretjobs:failing"
    items = "tokens"
    concurrency = 4

    [[targets]]
    loop = "secretjobs:sequential"
    replacement = "secretjobs:raising"
"""
TOKENS = [f"s{i}" for i in range(8)]
#: The items of the loops that do not fail.
HEALTHY = [f"h{i}" for i in range(8)]
#: The item whose every attempt is answered 503 (the server keys faults by path and query).
FAILING = f"s5?api_key={API_KEY}"


def leaks(text: str) -> list[str]:
    """The lines of ``text`` that hold a planted secret."""
    return [line for line in text.splitlines() if MARKER in line]


def base_url(server: FaultServer) -> str:
    """The server's URL with a user and the planted password in it."""
    return server.url.replace("://", f"://loop-user:{PASSWORD}@", 1)


@pytest.fixture
def server() -> Iterator[FaultServer]:
    """The local upstream: one item fails on every attempt."""
    with FaultServer(latency=0.02, faults={FAILING: ["503"] * 10}) as running:
        yield running


class Records:
    """Every line and record logged in this process: loguru's (line and ``extra``) and the stdlib's."""

    def __init__(self) -> None:
        self.texts: list[str] = []

    def loguru(self, message: Any) -> None:
        self.texts.append(f"{message}{message.record['extra']!r}")

    def emit(self, record: logging.LogRecord) -> None:
        self.texts.append(f"{record.getMessage()}{record.__dict__!r}")

    def lines(self, event: str) -> list[str]:
        """The records of ``sched_accel.<event>``."""
        return [text for text in self.texts if f"sched_accel.{event} " in text]


@pytest.fixture
def records() -> Iterator[Records]:
    """Records of both routes: a loguru sink and a handler on the ``sched_accel`` logger."""
    from loguru import logger

    seen = Records()
    sink = logger.add(seen.loguru, level="DEBUG", format="{message}")
    handler = logging.Handler(logging.DEBUG)
    handler.emit = seen.emit  # type: ignore[method-assign]
    stdlib = logging.getLogger("sched_accel")
    level = stdlib.level
    stdlib.addHandler(handler)
    stdlib.setLevel(logging.DEBUG)
    yield seen
    stdlib.removeHandler(handler)
    stdlib.setLevel(level)
    logger.remove(sink)


@pytest.fixture(params=["loguru", "stdlib"])
def route(request: pytest.FixtureRequest) -> Iterator[str]:
    """Each scenario runs with records through loguru, then through the stdlib logger."""
    if request.param == "stdlib":
        log_to_stdlib()
    yield request.param
    log_to_loguru()


def test_no_secret_in_the_lines_of_a_loop_in_this_process(
    app: App,
    server: FaultServer,
    monkeypatch: pytest.MonkeyPatch,
    records: Records,
    route: str,
    capfd: pytest.CaptureFixture[str],
) -> None:
    """A mismatch, a first request with no item, a give-up, a replacement's exception: logged, secrets ``***``."""
    app.write("secretjobs.py", JOBS)
    app.config(CONFIG)
    jobs: Any = importlib.import_module("secretjobs")
    install(monkeypatch, [])
    base = base_url(server)
    assert jobs.mismatch(base, HEALTHY) == [200] * len(HEALTHY)
    assert jobs.unrelated(base, HEALTHY) == [200] * len(HEALTHY)
    assert jobs.failing(base, TOKENS)[5] == 503
    assert jobs.sequential(base, TOKENS)[5] == 503  # the replacement raised: the original ran
    out, err = capfd.readouterr()
    assert leaks("\n".join(records.texts) + out + err) == []
    assert any("(in x-sequence)" in line for line in records.lines("not_accelerated"))
    [unrelated] = [line for line in records.lines("not_accelerated") if "first request" in line]
    shown = server.url.replace("://", "://***@", 1)
    assert f"first request: GET {shown}/item/fixed0?api_key=***" in unrelated
    assert records.lines("retry_gave_up")
    [fallback] = records.lines("fallback")
    assert "http://***@127.0.0.1" in fallback and "api_key=***" in fallback
    targets = {line.split()[1] for line in records.lines("run")}
    assert targets == {f"target=secretjobs:{name}" for name in ("mismatch", "unrelated", "failing", "sequential")}


def test_a_field_whose_text_cannot_be_made_is_named_by_its_type(records: Records) -> None:
    """A field whose str() raises is shown by its type; the record, redacted, is still logged."""

    class Unprintable:
        def __str__(self) -> str:
            raise RuntimeError(f"cannot print {PASSWORD}")

    _log.event(Event("odd", ("WARNING",), "a test's"), f"https://u:{PASSWORD}@h/", value=Unprintable(), count=2)
    [line] = records.lines("odd")
    assert MARKER not in line
    assert 'value="<Unprintable: its text could not be made>" count=2 pid=' in line
    assert " - https://***@h/" in line


def test_the_stdlib_extra_holds_the_redacted_values(records: Records) -> None:
    """What a stdlib handler reads from ``extra`` is redacted as the line is; numbers stay numbers."""
    log_to_stdlib()
    try:
        _log.event(
            Event("x", ("WARNING",), "a test's"),
            "",
            url=f"https://u:{PASSWORD}@h/?api_key={API_KEY}",
            count=3,
            target="a:b",
        )
    finally:
        log_to_loguru()
    [text] = records.lines("x")
    assert MARKER not in text
    assert "'url': 'https://***@h/?api_key=***', 'count': 3, 'target': 'a:b'" in text


MAIN = """
    import logging
    import os
    import sys

    if os.environ.get("SCHED_ACCEL_LOG") == "stdlib":  # the app's handler shows the records' extra too
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(levelname)s %(message)s %(sched_accel)r"))
        logging.getLogger("sched_accel").addHandler(handler)
        logging.getLogger("sched_accel").setLevel(logging.DEBUG)

    import secretjobs

    base, healthy, failing = sys.argv[1], sys.argv[2].split(","), sys.argv[3].split(",")
    print(secretjobs.mismatch(base, healthy), secretjobs.unrelated(base, healthy))
    print(secretjobs.failing(base, failing), secretjobs.sequential(base, failing))
"""
#: A module whose import fails with a message that quotes its URL, as apps' do: `check` shows it.
BROKEN = f"""
    raise RuntimeError("cannot reach https://svc:{PASSWORD}@api.example.com/v1?api_key={API_KEY}")
"""
BROKEN_TARGET = """
    [[targets]]
    loop = "brokenjob:run"
"""


@pytest.mark.usefixtures("unmeasured_children")
@pytest.mark.parametrize("route", ["loguru", "stdlib"])
def test_no_secret_in_a_child_python_nor_in_check_and_status(app: App, server: FaultServer, route: str) -> None:
    """A child python patched at start-up, then ``sched-accel check`` and ``status``: no secret in their output."""
    app.write("secretjobs.py", JOBS)
    app.write("brokenjob.py", BROKEN)
    app.write("main.py", MAIN)
    config = app.config(CONFIG + BROKEN_TARGET)
    env = {"ENABLE_SCHEDULER_OPTIMIZATION": "true", "SCHED_ACCEL_CONFIG": str(config), "SCHED_ACCEL_LOG": route}
    child = app.run("main.py", base_url(server), ",".join(HEALTHY), ",".join(TOKENS), env=env)
    assert child.returncode == 0, child.stderr
    cli_env = {"SCHED_ACCEL_CONFIG": str(config)}
    check = app.run("-m", "sched_accel", "check", env=cli_env)
    status = app.run("-m", "sched_accel", "status", env=cli_env)
    everything = "\n".join(p.stdout + p.stderr for p in (child, check, status))
    assert leaks(everything) == []
    assert "sched_accel.not_accelerated" in child.stderr and "api_key=***" in child.stderr
    assert "sched_accel.retry_gave_up" in child.stderr and "sched_accel.fallback" in child.stderr
    assert "cannot reach https://***@api.example.com/v1?api_key=***" in check.stdout + check.stderr
    for name in ("mismatch", "unrelated", "failing"):
        assert f"secretjobs:{name}: on (prefetch" in status.stdout
