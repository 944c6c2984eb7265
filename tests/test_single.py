"""_single.py: a single_run loop runs once per tick across real processes (the machine backend,
a real redis-server); the others skip it and return None; when coordination is impossible the
call runs, with one line saying so."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from apscheduler.executors.base import run_coroutine_job, run_job
from apscheduler.schedulers.background import BackgroundScheduler

import sched_accel
from sched_accel._cli import main
from sched_accel._config import load_config
from sched_accel._coordination import CoordinationSettings
from sched_accel._single import Claims

from .conftest import ENV_KEYS, App, FakeClock
from .coord.redis_server import RedisServer, _free_port, find_redis_server, serving

pytestmark = pytest.mark.slow

UTC = dt.UTC
AT = dt.datetime(2026, 3, 1, 12, 0, 7, tzinfo=UTC)
JOBS = """
    import os

    def refresh():
        with open("runs.txt", "a") as file:
            file.write(f"{os.getpid()}\\n")
        return "ran"

    async def refresh_async():
        return refresh()
"""
CONFIG = """
    [coordination]
    {coordination}

    [[targets]]
    loop = "jobs:refresh"
    single_run = true

    [[targets]]
    loop = "jobs:refresh_async"
    single_run = true
"""
# A child process: APScheduler's own run_job calls the (patched) loop for `count` ticks, all
# children starting at the same instant; what each call returned is printed.
RACE = """
    import datetime as dt, json, sys, time
    from apscheduler.executors.base import run_job
    from apscheduler.schedulers.background import BackgroundScheduler
    import jobs

    start_at, first, count = float(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])
    job = BackgroundScheduler(timezone=dt.timezone.utc).add_job(jobs.refresh, "interval", seconds=1, misfire_grace_time=None)
    times = [dt.datetime.fromtimestamp(first + i, dt.timezone.utc) for i in range(count)]
    while time.time() < start_at:
        time.sleep(0.002)
    print(json.dumps([event.retval for at in times for event in run_job(job, "default", [at], "race")]))
"""


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real redis-server on 127.0.0.1 for this module (each test has its own config path,
    so its own namespace)."""
    yield from serving(str(tmp_path_factory.mktemp("redis")))


def single_app(app: App, monkeypatch: pytest.MonkeyPatch, coordination: str = "") -> App:
    """The jobs module and a config making both its loops single_run; flag on."""
    app.write("jobs.py", JOBS)
    app.config(CONFIG.format(coordination=coordination))
    monkeypatch.setenv("ENABLE_SCHEDULER_OPTIMIZATION", "true")
    monkeypatch.chdir(app.root)
    return app


def scheduled(function: Any, *times: dt.datetime) -> list[Any]:
    """What APScheduler's run_job gets from ``function`` run for each of ``times``."""
    job = BackgroundScheduler(timezone=UTC).add_job(function, "interval", seconds=1, misfire_grace_time=None)
    return [event.retval for at in times for event in run_job(job, "default", [at], "test")]


def events(lines: list[str], name: str) -> list[str]:
    return [line for line in lines if line.startswith(f"sched_accel.{name} ")]


def runs(app: App) -> list[str]:
    path = app.root / "runs.txt"
    return path.read_text().split() if path.exists() else []


def test_one_call_per_tick_runs_and_the_others_return_none(
    app: App, monkeypatch: pytest.MonkeyPatch, capture_events: list[str]
) -> None:
    """The same tick twice: the first call runs, the second is skipped (None, one line); the
    next tick runs again."""
    single_app(app, monkeypatch)
    assert sched_accel.install() is True
    import jobs

    later = AT + dt.timedelta(seconds=1)
    assert scheduled(jobs.refresh, AT, AT, later) == ["ran", None, "ran"]
    assert len(runs(app)) == 2
    [skipped] = events(capture_events, "single_run_skipped")
    tick = int(AT.timestamp())
    assert f"target=jobs:refresh tick={tick} source=apscheduler backend=machine holder_token=1" in skipped
    assert "returns None" in skipped


@pytest.mark.parametrize("backend", ["machine", "redis"])
def test_an_async_loop_is_skipped_with_none_too(
    app: App, monkeypatch: pytest.MonkeyPatch, backend: str, request: pytest.FixtureRequest
) -> None:
    """An async loop's skipped call is a coroutine returning None (the executor awaits it);
    Redis is asked from a worker thread, the event loop never held."""
    import asyncio

    single_app(app, monkeypatch, f'url = "{request.getfixturevalue("redis_url")}"' if backend == "redis" else "")
    assert sched_accel.install() is True
    import jobs

    job = BackgroundScheduler(timezone=UTC).add_job(jobs.refresh_async, "interval", seconds=1, misfire_grace_time=None)
    got = [asyncio.run(run_coroutine_job(job, "default", [AT], "test"))[0].retval for _ in range(2)]
    assert got == ["ran", None]


def test_switched_off_or_flag_off_every_call_runs(app: App, monkeypatch: pytest.MonkeyPatch) -> None:
    """`sched-accel off` turns single_run off too (the legacy app's behaviour); with the flag
    off nothing is patched at all."""
    single_app(app, monkeypatch)
    assert sched_accel.install() is True
    import jobs

    control = Path(load_config().app_control)  # this app's, in its folder of the state folder
    assert main(["off", "jobs:refresh"]) == 0 and control.exists()
    assert scheduled(jobs.refresh, AT, AT) == ["ran", "ran"]
    assert main(["on"]) == 0
    assert scheduled(jobs.refresh, AT, AT) == ["ran", None]  # on again: claimed (nothing was, while off)
    sched_accel.uninstall()
    monkeypatch.setenv("ENABLE_SCHEDULER_OPTIMIZATION", "false")
    assert sched_accel.install() is False
    assert scheduled(jobs.refresh, AT, AT) == ["ran", "ran"]


def test_a_call_without_a_tick_runs_and_says_so_once(
    app: App, monkeypatch: pytest.MonkeyPatch, capture_events: list[str]
) -> None:
    """Called from no scheduler and no tick declared: it runs, every time, with one line."""
    single_app(app, monkeypatch)
    assert sched_accel.install() is True
    import jobs

    assert [jobs.refresh(), jobs.refresh()] == ["ran", "ran"]
    [line] = events(capture_events, "single_run_no_tick")
    assert "declare tick" in line


def test_a_declared_tick_claims_by_the_clock(app: App, monkeypatch: pytest.MonkeyPatch) -> None:
    """tick = 3600 and a direct call: the hour's first call runs, the next in that hour is skipped."""
    app.write("jobs.py", JOBS)
    app.config('[[targets]]\nloop = "jobs:refresh"\nsingle_run = true\ntick = 3600\n')
    monkeypatch.setenv("ENABLE_SCHEDULER_OPTIMIZATION", "true")
    monkeypatch.chdir(app.root)
    assert sched_accel.install() is True
    import jobs

    assert [jobs.refresh(), jobs.refresh()] in (["ran", None], ["ran", "ran"])  # "ran" twice: the hour turned


def test_a_bug_of_ours_lets_the_call_run(app: App, monkeypatch: pytest.MonkeyPatch, capture_events: list[str]) -> None:
    """Whatever fails in claiming, the loop runs (at least once beats never), one line said."""
    single_app(app, monkeypatch)

    def broken(self: Claims, key: str, tick: int, **options: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(Claims, "claim", broken)
    assert sched_accel.install() is True
    import jobs

    assert scheduled(jobs.refresh, AT, AT) == ["ran", "ran"]
    [line] = events(capture_events, "internal_error")
    assert "claiming a tick of jobs:refresh" in line and "RuntimeError: boom" in line


def test_redis_down_falls_back_to_the_machine_backend(
    app: App, monkeypatch: pytest.MonkeyPatch, capture_events: list[str]
) -> None:
    """Nothing listens at the URL: claims go to the machine backend (still one run per tick on
    this machine), said in one line."""
    single_app(app, monkeypatch, f'url = "redis://:hunter2@127.0.0.1:{_free_port()}/0"')
    assert sched_accel.install() is True
    import jobs

    assert scheduled(jobs.refresh, AT, AT) == ["ran", None]
    [line] = events(capture_events, "single_run_fallback")
    assert "redis at redis://***@127.0.0.1" in line and "hunter2" not in "".join(capture_events)
    assert "backend=machine" in events(capture_events, "single_run_skipped")[0]


def test_claims_go_back_to_the_backend_once_it_answers(
    tmp_path: Path, redis_url: str, capture_events: list[str]
) -> None:
    """A server that stops: its claims go to the machine backend, it is asked again only after
    retry_after; started again: one line, and its claims again."""
    binary = find_redis_server()
    assert binary is not None  # redis_url had one
    server = RedisServer(binary, str(tmp_path / "redis"))
    os.makedirs(server.folder)
    server.start()
    server.stop()  # its port is known, and nothing listens there now
    clock = FakeClock()
    claims = Claims(CoordinationSettings(url=server.url), str(tmp_path / "state"), clock=clock, retry_after=5)
    try:
        first = claims.claim("k", 1, ttl=60)
        assert first.backend is not None and first.backend.kind == "machine" and first.token == 1
        assert claims.claim("k", 1, ttl=60).token is None  # the machine backend's claim holds
        server.start()
        assert claims.claim("k", 2, ttl=60).backend.kind == "machine"  # type: ignore[union-attr]  # not asked yet
        clock.advance(5)
        back = claims.claim("k", 3, ttl=60)
        assert back.backend is not None and back.backend.kind == "redis" and back.token == 1
        assert len(events(capture_events, "single_run_fallback")) == 1
        assert len(events(capture_events, "single_run_recovered")) == 1
    finally:
        claims.close()
        server.stop()


def test_no_backend_at_all_runs_every_call(tmp_path: Path, capture_events: list[str]) -> None:
    """The machine backend refused too (a group-writable state folder): uncoordinated, the call
    runs, one line."""
    state = tmp_path / "state"
    state.mkdir()
    state.chmod(0o770)
    claims = Claims(CoordinationSettings(), str(state))
    assert [claims.claim("k", 1, ttl=60).runs for _ in range(2)] == [True, True]
    assert len(events(capture_events, "single_run_uncoordinated")) == 1


@pytest.mark.parametrize(
    ("held", "px"),
    [
        pytest.param("now", None, id="no expiry"),
        pytest.param("now", 86_400_000, id="a day"),
        pytest.param(str(2**53 - 1), 30_000, id="a tick far ahead"),
    ],
)
def test_a_claim_forged_by_another_redis_client_silences_no_tick(
    app: App, monkeypatch: pytest.MonkeyPatch, redis_url: str, held: str, px: int | None
) -> None:
    """Another client of the Redis server, which listed the app's keys, holds the job's claim:
    of the current tick with no expiry or a day's, or of a tick far ahead within the claim's
    ttl (each silenced the job: 0 runs). None is a claim the app's processes make, so each tick
    still runs once, as without the peer, and the peer's claim is replaced by ours."""
    import time

    import redis

    from sched_accel._config import load_config
    from sched_accel._coord import RedisBackend, make_backend
    from sched_accel._coord._names import KEY_SECRET_ENV
    from sched_accel._single import claim_key

    monkeypatch.setenv(KEY_SECRET_ENV, "the app's own secret")
    single_app(app, monkeypatch, f'url = "{redis_url}"')
    assert sched_accel.install() is True
    import jobs

    assert scheduled(jobs.refresh, AT) == ["ran"]
    settings = load_config(app.root / "sched_accel.toml")
    names = make_backend(settings.coordination, None)
    assert isinstance(names, RedisBackend)
    tick_key = names._key(f"claim:{claim_key(settings, settings.targets[0])}", "tick")
    names.close()
    peer = redis.Redis.from_url(redis_url)
    try:
        assert peer.get(tick_key) == str(int(AT.timestamp())).encode()  # the key the app wrote
        peer.set(tick_key, str(int(time.time())) if held == "now" else held, px=px)
        later = AT + dt.timedelta(seconds=1)
        assert scheduled(jobs.refresh, later, later, later + dt.timedelta(seconds=1)) == ["ran", None, "ran"]
        assert peer.get(tick_key) == str(int(later.timestamp()) + 1).encode() and 0 < peer.pttl(tick_key) <= 60_000
    finally:
        peer.close()
    assert len(runs(app)) == 3


def test_the_latest_tick_a_claim_may_hold_starts_within_its_ttl() -> None:
    """At wall time t, a claim in force holds a tick that starts by t + its ttl (three ticks, at
    least a minute), never one before the caller's own; within the range a tick may have."""
    from sched_accel._single import claim_latest
    from sched_accel._ticks import Tick

    assert claim_latest(Tick(100, 1.0, "clock"), 100.5) == 160
    assert claim_latest(Tick(10, 60.0, "clock"), 600.0) == 13
    assert claim_latest(Tick(10**6, 1.0, "apscheduler"), 0.0) == 10**6  # its own tick ahead of the clock
    assert claim_latest(Tick(0, 0.01, "clock"), 1e14) == 2**53 - 1


def race(app: App, children: int, ticks: int, env: dict[str, str]) -> list[list[Any]]:
    """``children`` real processes, started with the real start-up hook, call the loop for the
    same ``ticks`` scheduled times at the same instant; what each call returned, per child."""
    import time

    app.write("race.py", RACE)
    full = {k: v for k, v in os.environ.items() if k not in ENV_KEYS}
    full.update(
        SCHED_ACCEL_CONTROL=str(app.root / "state" / "control.json"), ENABLE_SCHEDULER_OPTIMIZATION="true", **env
    )
    start_at = str(time.time() + 2.0)
    started = [
        subprocess.Popen(
            [sys.executable, "race.py", start_at, str(AT.timestamp()), str(ticks)],
            cwd=app.root,
            env=full,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(children)
    ]
    seen = []
    for child in started:
        out, err = child.communicate(timeout=60)
        assert child.returncode == 0, err
        assert "sched_accel.patched target=jobs:refresh" in err
        seen.append(json.loads(out.strip().splitlines()[-1]))
    return seen


@pytest.mark.parametrize("backend", ["machine", "redis"])
def test_exactly_one_run_per_tick_across_real_processes(app: App, backend: str, request: pytest.FixtureRequest) -> None:
    """Four processes call the loop for the same five ticks: each tick runs exactly once, in one
    of them; every other call returned None."""
    coordination = f'url = "{request.getfixturevalue("redis_url")}"' if backend == "redis" else 'backend = "machine"'
    config = app.write("sched_accel.toml", CONFIG.format(coordination=coordination))
    app.write("jobs.py", JOBS)
    seen = race(app, children=4, ticks=5, env={"SCHED_ACCEL_CONFIG": str(config)})
    per_tick = [[got[tick] for got in seen] for tick in range(5)]
    assert all(calls.count("ran") == 1 and calls.count(None) == 3 for calls in per_tick), per_tick
    assert len(runs(app)) == 5


# -- the wall clock stepped back between ticks (issue 23, item 6) --------------------------------
CLOCK_JOBS = """
    import os, time

    def refresh():
        with open("runs.txt", "a") as file:
            file.write(f"{os.getpid()} {time.time()}\\n")
        return "ran"
"""
# A child process whose wall clock the test sets: `time.time` is replaced before anything of
# sched_accel is imported (the start-up hook imports it with the target's module), so the tick
# (`_ticks.tick_of`'s clock) and the claim's latest tick (`_single`) read it. At each step,
# all children at the same real instant, the clock is set to that step's wall time and the
# loop called, as cron or a `while True: refresh(); sleep(60)` loop would.
CLOCK_STEPS = """
    import json, sys, time

    real = time.time
    offset = 0.0

    def wall():
        return real() + offset

    time.time = wall
    import sched_accel._coord._machine as machine

    # The machine backend's clock (monotonic, which never steps) runs as fast as the schedule's
    # compressed time: a tick of it each `step` real seconds, so a claim's ttl lasts its 3 ticks.
    real_monotonic, scale = time.monotonic, float(sys.argv[4])
    machine.MachineBackend.__init__.__kwdefaults__["clock"] = lambda: real_monotonic() * scale
    import jobs
    import sched_accel._ticks

    assert sched_accel._ticks.tick_of.__kwdefaults__["clock"] is wall, "the tick is not read from the injected clock"
    start_at, step, walls = float(sys.argv[1]), float(sys.argv[2]), json.loads(sys.argv[3])
    got = []
    for k, at in enumerate(walls):
        while real() < start_at + k * step:
            time.sleep(0.002)
        offset = at - real()
        got.append(jobs.refresh())
    print(json.dumps(got))
"""
STEP = 0.4  # real seconds between two calls: a tick of the schedule, compressed
HOUR = 3600


@pytest.mark.parametrize(
    ("backend", "tick"),
    [("machine", 60), ("redis", 60), pytest.param("machine", HOUR, id="machine-hourly")],
)
def test_the_wall_clock_stepped_back_an_hour_runs_no_tick_twice_and_skips_none(
    app: App, backend: str, tick: int, request: pytest.FixtureRequest
) -> None:
    """A single_run loop whose tick is read from the wall clock (``tick = 60``) is called by 3
    real processes once a tick; between the 3rd and the 4th the wall clock steps back an hour.
    Each call runs in exactly one process, before the step and after it: the minutes after it
    are numbered an hour back and run again (their claims of an hour ago are long over, and
    the claim of the minute before the step is of a tick later than any a process could claim
    now, so it is replaced): none runs twice, none is skipped by all.

    An hourly tick (``tick = 3600``) stepped back an hour lives its last hour again, and its
    call runs once more, in one process: the claim of that hour (3 ticks, still in force) was
    made, read on the stepped clock, in the hour before it (the backend's clock, which does not
    step, says an hour passed since; the wall clock says none), so it is not this window's.

    Real clock changes are not possible here: each child's ``time.time`` is replaced before
    sched_accel is imported (so ``_ticks.tick_of`` and ``_single`` read it), and a tick of the
    schedule passes in 0.4 s of real time; the machine backend's monotonic clock is made to run
    as fast (Redis's cannot: its hourly case is `tests/coord/test_backends.py`'s, with the
    caller's clock given)."""
    import time

    coordination = f'url = "{request.getfixturevalue("redis_url")}"' if backend == "redis" else 'backend = "machine"'
    config = app.write(
        "sched_accel.toml",
        f'[coordination]\n{coordination}\n\n[[targets]]\nloop = "jobs:refresh"\nsingle_run = true\ntick = {tick}\n',
    )
    app.write("jobs.py", CLOCK_JOBS)
    app.write("steps.py", CLOCK_STEPS)
    base = time.time() // tick * tick + tick / 2  # the middle of this tick
    walls = [base + tick * k for k in range(3)] + [base + tick * k - HOUR for k in range(3, 6)]
    full = {k: v for k, v in os.environ.items() if k not in ENV_KEYS}
    full.update(
        SCHED_ACCEL_CONTROL=str(app.root / "state" / "control.json"),
        ENABLE_SCHEDULER_OPTIMIZATION="true",
        SCHED_ACCEL_CONFIG=str(config),
    )
    start_at = str(time.time() + 2.0)
    scale = tick / STEP if backend == "machine" else 1.0
    children = [
        subprocess.Popen(
            [sys.executable, "steps.py", start_at, str(STEP), json.dumps(walls), str(scale)],
            cwd=app.root,
            env=full,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    seen = []
    for child in children:
        out, err = child.communicate(timeout=60)
        assert child.returncode == 0, err
        assert "sched_accel.patched target=jobs:refresh" in err, err
        seen.append(json.loads(out.strip().splitlines()[-1]))
    per_call = [sorted([got[k] for got in seen], key=str) for k in range(len(walls))]
    ran = [int(float(line.split()[1]) // tick) for line in (app.root / "runs.txt").read_text().splitlines()]
    ticks = [int(at // tick) for at in walls]
    assert per_call == [[None, None, "ran"]] * len(walls), per_call
    assert ran == ticks  # each tick once, in order: 3 before the step, 3 (an hour back) after it
    assert (ticks[3] == ticks[2]) is (tick == HOUR)  # hourly: the 3rd hour lived again, and run again
