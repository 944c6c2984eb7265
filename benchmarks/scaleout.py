"""Scale-out (issue 13): several processes of one app against one upstream, and one run per tick.

**limit**: 4 processes (real subprocesses, started together), each running the legacy loop
``legacy_jobs.fetch_all`` over 100 items, patched by ``sched_accel.install(config)`` with
concurrency 16 and the host's limit declared::

    [hosts."127.0.0.1"]
    per_second = 20
    burst = 5

against one upstream (``_upstream.py``, its own process) allowing 20 requests/s with a burst
of 5, 50 ms per answer. One row per ``[coordination]`` backend: ``backend = "process"`` (4
independent processes, each pacing itself to 20/s: 80/s offered), ``backend = "machine"``
and ``url = "redis://127.0.0.1:<port>"`` (a real redis-server started here, as
``tests/coord`` does; the row is skipped, saying why, when none can be had). Each row:
aggregate throughput (answers of 200 a second, from the start all 4 share to the last one's
end) as a share of the upstream's 20/s, the requests offered a second, answers of 429
counted by the upstream, items lost; median of 3 runs. The ideal share is
4 * 100 / ((400 - 5) / 20 + 0.05) / 20 = 1.01. Goal for the machine and Redis rows:
share >= 0.95 and <= 5 answers of 429 (the median run), 0 lost (every run). Two more rows,
without a goal, leave the limit undeclared (each process learns it from its refusals), with
the process and the machine backend.

**admit**: what one admission costs on each backend (``coord_admit.py``'s measure: every
admission admitted, so each one reads and writes the host's GCRA state), from one thread
and from 4 processes at once, and the round trips to the server. Goal: one round trip per
admission on Redis (issue 13: one Lua script per admission).

**ticks**: a gunicorn app with 4 workers, each starting APScheduler with a job every second
(seed 004's shape) through the real start-up hook, the flag on: ``single_run`` unset
("before") and ``single_run = true`` ("after"), both apps at once, for 20 ticks after every
worker is up. Goal for "after": exactly 20 runs in those 20 ticks, one in each (not 80).

    .venv/bin/python benchmarks/scaleout.py               # all three parts (about 4 minutes)
    .venv/bin/python benchmarks/scaleout.py limit --repeat 1
    .venv/bin/python benchmarks/scaleout.py admit --n 20000
    .venv/bin/python benchmarks/scaleout.py ticks --seconds 5

Every server listens on 127.0.0.1 (gunicorn too) and stops with the benchmark.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE.parent / "examples"))

import _upstream  # noqa: E402
from _harness import ROOT, machine, state_env, table, write_config  # noqa: E402
from demo_workers import free_port, gunicorn_options  # noqa: E402 - the demo's gunicorn runner
from ratelimit import BURST, CONCURRENCY, HOST_LIMIT, ITEMS, LATENCY, RATE  # noqa: E402 - its scenario, in 4 processes

PROCESSES = 4
BACKENDS = {
    "process": '[coordination]\nbackend = "process"\n',
    "machine": '[coordination]\nbackend = "machine"\n',
    "redis": '[coordination]\nurl = "{url}"\n',
}
GOAL_SHARE, GOAL_429 = 0.95, 5
WORKER_TIMEOUT = 200.0  # seconds: a rate-limited item is retried for 120 s before it is given up


def ideal_share() -> float:
    total = PROCESSES * ITEMS
    return total / ((total - BURST) / RATE + LATENCY) / RATE


def _private_dir(prefix: str) -> str:
    folder = tempfile.mkdtemp(prefix=prefix)  # owner-only, as sched_accel's state folder must be
    os.chmod(folder, 0o700)
    return folder


# -- limit: one process of the app (run as ``scaleout.py --worker CONFIG URL``) ----------------
def worker(config: str, url: str) -> int:
    """Install sched_accel from ``config``, say ``ready``, wait for the start time read from
    stdin, run the legacy loop over 100 items, print what it did as one JSON line."""
    import httpx
    import legacy_jobs
    from _harness import EVENTS

    import sched_accel

    os.environ["ENABLE_SCHEDULER_OPTIMIZATION"] = "1"
    if not sched_accel.install(config) or "legacy_jobs:fetch_all" not in sched_accel.patched_targets():
        print(json.dumps({"error": f"sched_accel did not patch the loop: {sched_accel.patched_targets()}"}), flush=True)
        return 1
    limits = httpx.Limits(max_connections=CONCURRENCY * 2, max_keepalive_connections=CONCURRENCY * 2)
    with httpx.Client(base_url=url, timeout=120, limits=limits) as http:
        print("ready", flush=True)
        start_at = float(sys.stdin.readline())
        time.sleep(max(0.0, start_at - time.time()))
        began, error = time.time(), ""
        try:
            results = legacy_jobs.fetch_all(range(ITEMS), legacy_jobs.Api(http))
        except Exception as exc:  # noqa: BLE001 - the loop gave up: its items are lost, and said
            results, error = [], repr(exc)
        ended = time.time()
    ok = sum(1 for index, value in enumerate(results) if value == {"item": index})
    run = EVENTS.runs[-1] if EVENTS.runs else {}
    print(json.dumps({"began": began, "ended": ended, "ok": ok, "error": error, "run": run}, default=str), flush=True)
    sched_accel.uninstall()
    return 0


@dataclass(slots=True)
class Run:
    """One run of the 4 processes."""

    wall: float  # from the start they share to the last one's end
    ok: int  # answers of 200 the loops got (the items done)
    refused: int  # answers of 429, counted by the upstream
    requests: int  # requests the upstream saw
    lost: int
    waited: float  # mean limit_wait of the 4 run lines
    errors: list[str] = field(default_factory=list)

    @property
    def share(self) -> float:
        return self.ok / self.wall / RATE

    @property
    def offered(self) -> float:
        return self.requests / self.wall


def _start_workers(config: Path, url: str, state: str) -> list[subprocess.Popen[str]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SCHED_ACCEL_", "ENABLE_SCHEDULER"))}
    env.update(state_env(state))
    workers = []
    for index in range(PROCESSES):
        log = open(Path(state, f"worker-{index}.log"), "w")  # noqa: SIM115 - closed with the run's folder
        workers.append(
            subprocess.Popen(
                [sys.executable, __file__, "--worker", str(config), url],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
                env=env,
                cwd=state,
            )
        )
    return workers


def _stop(workers: Sequence[subprocess.Popen[str]]) -> None:
    for process in workers:
        if process.poll() is None:
            process.kill()
            process.wait()


def limit_run(kind: str, redis_url: str | None, declared: bool = True) -> Run:
    """One run of the 4 processes with ``kind``'s [coordination], against a fresh upstream;
    the host's limit declared, or (``declared=False``) left for each process to learn."""
    state = _private_dir(f"scaleout-{kind}-")
    try:
        top = BACKENDS[kind].format(url=redis_url) + (HOST_LIMIT if declared else "")
        config = write_config(Path(state, "sched_accel.toml"), CONCURRENCY, state=state, top=top)
        if redis_url is not None:
            import redis

            with redis.Redis.from_url(redis_url) as client:
                client.flushall()  # nothing from the last run
        args = (
            "--fixed",
            f"{LATENCY}",
            "--per-second",
            f"{RATE:g}",
            "--burst",
            str(BURST),
            "--retry-after",
            "fraction",
        )
        with _upstream.running(*args) as url:
            workers = _start_workers(config, url, state)
            try:
                for process in workers:
                    assert process.stdout is not None
                    said = process.stdout.readline().strip()
                    if said != "ready":
                        log = Path(state, f"worker-{workers.index(process)}.log").read_text()[-3000:]
                        raise RuntimeError(f"a {kind} worker did not start: {said!r}\n{log}")
                start_at = time.time() + 0.2  # the upstream's bucket is full: nothing was sent to it yet
                outs = []
                for process in workers:
                    assert process.stdin is not None
                    process.stdin.write(f"{start_at!r}\n")
                    process.stdin.flush()
                for process in workers:
                    out, _ = process.communicate(timeout=WORKER_TIMEOUT)
                    outs.append(json.loads(out.strip().splitlines()[-1]))
            finally:
                _stop(workers)
            with urllib.request.urlopen(f"{url}/stats") as response:
                counts = json.loads(response.read())
    finally:
        shutil.rmtree(state, ignore_errors=True)
    ok = sum(o.get("ok", 0) for o in outs)
    waits = [float(o["run"].get("limit_wait", 0) or 0) for o in outs if o.get("run")]
    return Run(
        wall=max(o["ended"] for o in outs) - start_at,
        ok=ok,
        refused=int(counts["429"]),
        requests=int(counts["ok"]) + int(counts["429"]),
        lost=PROCESSES * ITEMS - ok,
        waited=statistics.fmean(waits) if waits else 0.0,
        errors=[o["error"] for o in outs if o.get("error")],
    )


@contextmanager
def redis_server() -> Iterator[tuple[str | None, str]]:
    """(the URL of a redis-server started on 127.0.0.1, its binary), or (None, why there is none)."""
    from tests.coord.redis_server import HOW_TO_GET, RedisServer, find_redis_server

    binary = find_redis_server()
    if binary is None:
        yield None, HOW_TO_GET
        return
    try:
        import redis  # noqa: F401
    except ImportError:
        yield None, "redis-py is missing: .venv/bin/pip install -e '.[redis]'"
        return
    folder = _private_dir("scaleout-redis-")
    server = RedisServer(binary, folder)
    server.start()
    try:
        yield f"redis://127.0.0.1:{server.port}", binary
    finally:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)


def part_limit(repeat: int) -> list[bool]:
    total = PROCESSES * ITEMS
    print(f"\n## {PROCESSES} processes, one upstream: the host's limit across processes")
    print(
        f'{PROCESSES} processes x {ITEMS} items, concurrency {CONCURRENCY} each, [hosts."127.0.0.1"] per_second = '
        f"{RATE:g}, burst = {BURST} declared in each; upstream {RATE:g}/s burst {BURST}, {LATENCY * 1000:g} ms; "
        f"ideal share = {total} / (({total} - {BURST}) / {RATE:g} + {LATENCY:g}) / {RATE:g} = {ideal_share():.2f}; "
        f"median of {repeat}"
    )
    print(
        "$ "
        + shlex.join(
            [os.path.relpath(sys.executable, ROOT), "benchmarks/scaleout.py", "limit", "--repeat", str(repeat)]
        )
    )
    rows, verdicts, skipped = [], [], []
    names = {
        "process": 'backend = "process" (4 independent processes)',
        "machine": 'backend = "machine"',
        "redis": 'url = "redis://127.0.0.1:<port>"',
    }
    cases = [(kind, True) for kind in BACKENDS] + [("process", False), ("machine", False)]
    with redis_server() as (redis_url, redis_binary):
        for kind, declared in cases:
            if kind == "redis" and redis_url is None:
                skipped.append(f"redis: row skipped: {redis_binary}")
                continue
            runs = sorted(
                (limit_run(kind, redis_url if kind == "redis" else None, declared) for _ in range(repeat)),
                key=lambda r: r.share,
            )
            median = runs[len(runs) // 2]
            name = names[kind] + ("" if declared else ", no limit declared (learned)")
            rows.append(
                [
                    name,
                    f"{median.wall:.2f}",
                    f"{median.ok / median.wall:.1f}",
                    f"{median.share:.3f}",
                    f"{median.offered:.1f}",
                    str(median.refused),
                    str(max(r.lost for r in runs)),
                    " ".join(f"{r.share:.2f}/{r.refused}" for r in runs),
                    f"{median.waited:.1f}",
                ]
            )
            errors = sorted({e for r in runs for e in r.errors})
            if errors:
                skipped.append(f"{name}: loops gave up: {'; '.join(errors)[:500]}")
            if kind != "process" and declared:
                ok = median.share >= GOAL_SHARE and median.refused <= GOAL_429 and all(r.lost == 0 for r in runs)
                verdicts.append((name, ok))
    print(
        table(
            [
                "[coordination]",
                "wall s",
                "200s/s",
                "share of 20/s",
                "offered req/s",
                "429s",
                "lost",
                "each run: share/429s",
                "limit_wait s, mean run line",
            ],
            rows,
        )
    )
    for line in skipped:
        print(line)
    for name, ok in verdicts:
        print(
            f"goal: {name}: share >= {GOAL_SHARE} and <= {GOAL_429} answers of 429 (median run), 0 lost (every run): "
            f"{'PASS' if ok else 'FAIL'}"
        )
    return [ok for _, ok in verdicts]


# -- admit: coord_admit's measure, one row per backend -----------------------------------------
def part_admit(n: int) -> list[bool]:
    import coord_admit

    print("\n## The cost of one admission on each backend")
    print(
        f"{n} admissions per thread or process, every one admitted (coord_admit.py's measure; the backend's decision,"
        " without the limiter around it); µs"
    )
    print("$ " + shlex.join([os.path.relpath(sys.executable, ROOT), "benchmarks/scaleout.py", "admit", "--n", str(n)]))
    folder = _private_dir("scaleout-admit-")
    rows, notes, verdicts = [], [], []
    try:
        with redis_server() as (redis_url, redis_binary):
            kinds = {"process": "", "machine": folder}
            if redis_url is not None:
                kinds["redis"] = redis_url
            else:
                notes.append(f"redis: row skipped: {redis_binary}")
            for kind, where in kinds.items():
                backend = coord_admit.build(kind, where)
                backend.admit("warm", per_second=coord_admit.RATE, burst=coord_admit.BURST)
                trips = coord_admit.round_trips(backend, 1000)
                took = sorted(coord_admit.timed(backend, n))
                backend.close()
                together = "-"
                p50_4 = "-"
                if kind != "process":  # nothing shared: 4 processes are 4 single threads
                    took4, rate = coord_admit.in_processes(kind, where, n, PROCESSES)
                    took4.sort()
                    p50_4, together = f"{took4[len(took4) // 2] * 1e6:.1f}", f"{rate:,.0f}"
                rows.append(
                    [
                        kind,
                        f"{statistics.fmean(took) * 1e6:.1f}",
                        f"{took[len(took) // 2] * 1e6:.1f}",
                        f"{took[int(len(took) * 0.99)] * 1e6:.1f}",
                        p50_4,
                        together,
                        f"{trips:g}",
                    ]
                )
                if kind == "redis":
                    verdicts.append(trips == 1)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    print(
        table(
            [
                "backend",
                "mean, 1 thread",
                "p50",
                "p99",
                f"p50, {PROCESSES} processes",
                "admissions/s together",
                "round trips",
            ],
            rows,
        )
    )
    for line in notes:
        print(line)
    for ok in verdicts:
        print(f"goal: redis: 1 round trip per admission: {'PASS' if ok else 'FAIL'}")
    return verdicts


# -- ticks: a gunicorn app whose 4 workers each start APScheduler ------------------------------
WORKERS = 4
JOBS = """
    import os, sqlite3, time

    def refresh():
        conn = sqlite3.connect("runs.db", timeout=30)
        conn.execute("CREATE TABLE IF NOT EXISTS runs (at REAL, pid INTEGER)")
        conn.execute("INSERT INTO runs VALUES (?, ?)", (time.time(), os.getpid()))
        conn.commit()
        conn.close()
        return "ran"
"""
# Each worker imports the app and starts its own scheduler (seed 004); APScheduler's defaults.
APP = """
    import json, os, time

    from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_EXECUTED, EVENT_JOB_MISSED
    from apscheduler.schedulers.background import BackgroundScheduler

    import jobs

    def record(event):
        line = {"pid": os.getpid(), "at": event.scheduled_run_time.timestamp(), "code": event.code,
                "retval": getattr(event, "retval", None), "error": repr(getattr(event, "exception", None) or "")}
        with open("events.jsonl", "a") as file:
            file.write(json.dumps(line) + "\\n")

    scheduler = BackgroundScheduler()
    scheduler.add_job(jobs.refresh, "interval", seconds=1)
    scheduler.add_listener(record, EVENT_JOB_EXECUTED | EVENT_JOB_ERROR | EVENT_JOB_MISSED)
    scheduler.start()
    with open("started.txt", "a") as file:
        file.write(f"{os.getpid()} {time.time()!r}\\n")

    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok\\n"]
"""
TARGET = """
    [[targets]]
    loop = "jobs:refresh"
    single_run = {single_run}
"""


@dataclass(slots=True)
class App:
    """One gunicorn app: its folder, its port, its master."""

    root: Path
    port: int
    process: subprocess.Popen[bytes]


def start_app(root: Path, *, single_run: bool) -> App:
    """gunicorn, 4 workers, serving the app in ``root`` on 127.0.0.1, the flag on."""
    root.mkdir(mode=0o700)
    (root / "jobs.py").write_text(textwrap.dedent(JOBS).lstrip())
    (root / "wsgiapp.py").write_text(textwrap.dedent(APP).lstrip())
    (root / "sched_accel.toml").write_text(textwrap.dedent(TARGET.format(single_run=str(single_run).lower())).lstrip())
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SCHED_ACCEL_", "ENABLE_SCHEDULER", "COVERAGE_"))}
    env.update(
        ENABLE_SCHEDULER_OPTIMIZATION="true",
        SCHED_ACCEL_CONFIG=str(root / "sched_accel.toml"),
        SCHED_ACCEL_CONTROL=str(root / "state" / "control.json"),
    )
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        "--workers",
        str(WORKERS),
        "--bind",
        f"127.0.0.1:{port}",
        *gunicorn_options(),
        "wsgiapp:app",
    ]
    with open(root / "gunicorn.log", "wb") as log:
        process = subprocess.Popen(command, cwd=root, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    return App(root, port, process)


def stop_app(app: App) -> None:
    """SIGTERM to the master (its workers stop with it); SIGKILL after 20 s."""
    app.process.send_signal(signal.SIGTERM)
    try:
        app.process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        app.process.kill()
        app.process.wait()


def _started(app: App) -> list[float]:
    path = app.root / "started.txt"
    return [float(line.split()[1]) for line in path.read_text().splitlines()] if path.exists() else []


def _served(app: App) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{app.port}/", timeout=5) as response:
            return bool(response.status == 200 and response.read() == b"ok\n")
    except OSError:
        return False


@dataclass(slots=True)
class Ticks:
    """What one app did in the measured ticks."""

    runs: int  # calls that ran the job (returned "ran")
    per_tick: list[int]  # runs in each tick
    skipped: int  # calls that returned None (single_run's skip)
    missed: int  # runs APScheduler dropped as misfired
    errors: int
    rows: int  # rows the job wrote in the ticks (the SQLite table's own count of the runs)
    served: bool
    skip_lines: int  # sched_accel.single_run_skipped lines in the app's output


def read_ticks(app: App, first: int, ticks: int, served: bool) -> Ticks:
    import sqlite3

    from apscheduler.events import EVENT_JOB_EXECUTED, EVENT_JOB_MISSED

    window = range(first, first + ticks)
    per_tick: Counter[int] = Counter()
    skipped = missed = errors = 0
    path = app.root / "events.jsonl"
    for line in path.read_text().splitlines() if path.exists() else []:
        event = json.loads(line)
        tick = math.floor(event["at"])
        ran = event["retval"] == "ran"
        if tick not in window:
            continue
        if ran:
            per_tick[tick] += 1
        elif event["code"] == EVENT_JOB_EXECUTED:  # it returned None: the call was skipped
            skipped += 1
        elif event["code"] == EVENT_JOB_MISSED:
            missed += 1
        else:
            errors += 1
    db = app.root / "runs.db"
    rows = 0
    if db.exists():  # the rows written in the ticks (a row's time is its run's start, a few ms after its tick's)
        with sqlite3.connect(db) as conn:
            rows = conn.execute(
                "SELECT COUNT(*) FROM runs WHERE at >= ? AND at < ?", (first, first + ticks)
            ).fetchone()[0]
    log = (app.root / "gunicorn.log").read_text(errors="replace")
    return Ticks(
        sum(per_tick.values()),
        [per_tick[t] for t in window],
        skipped,
        missed,
        errors,
        rows,
        served,
        log.count("sched_accel.single_run_skipped"),
    )


def part_ticks(seconds: int) -> list[bool]:
    print(f"\n## gunicorn, {WORKERS} workers, each starting APScheduler with a job every second")
    print(
        f"both apps at once, the flag on; {seconds} ticks counted once every worker's scheduler is up; a run is a call "
        "of the job that ran it (the job writes a row into SQLite)"
    )
    print(
        "$ "
        + shlex.join(
            [os.path.relpath(sys.executable, ROOT), "benchmarks/scaleout.py", "ticks", "--seconds", str(seconds)]
        )
    )
    try:
        import apscheduler  # noqa: F401
        import gunicorn  # noqa: F401
    except ImportError as exc:
        print(f"ticks: skipped: {exc.name} is missing: .venv/bin/pip install -e '.[test]'")
        return []
    folder = Path(_private_dir("scaleout-ticks-"))
    apps = {
        "before: single_run unset": start_app(folder / "before", single_run=False),
        "after: single_run = true": start_app(folder / "after", single_run=True),
    }
    try:
        deadline = time.time() + 60
        while any(len(_started(app)) < WORKERS for app in apps.values()):
            if time.time() > deadline or any(app.process.poll() is not None for app in apps.values()):
                raise RuntimeError(
                    "the gunicorn apps did not start: "
                    + " / ".join(
                        (app.root / "gunicorn.log").read_text(errors="replace")[-1500:] for app in apps.values()
                    )
                )
            time.sleep(0.05)
        # Each worker's first run is an interval after its scheduler started: every worker has
        # one run in each whole second from the one after the last start on.
        first = math.ceil(max(max(_started(app)) for app in apps.values())) + 1
        time.sleep(max(0.0, first + seconds / 2 - time.time()))
        served = {name: _served(app) for name, app in apps.items()}  # while the schedulers run
        time.sleep(max(0.0, first + seconds + 1.0 - time.time()))  # the last tick's runs are written
    finally:
        for app in apps.values():
            stop_app(app)
    found = {name: read_ticks(app, first, seconds, served[name]) for name, app in apps.items()}
    shutil.rmtree(folder, ignore_errors=True)
    rows = []
    for name, t in found.items():
        spread = f"{min(t.per_tick)}" if min(t.per_tick) == max(t.per_tick) else f"{min(t.per_tick)}-{max(t.per_tick)}"
        rows.append(
            [
                name,
                str(seconds),
                str(t.runs),
                spread,
                str(t.skipped),
                str(t.missed),
                str(t.errors),
                str(t.rows),
                "200" if t.served else "no",
            ]
        )
    print(
        table(
            ["app", "ticks", "runs", "runs per tick", "skipped (None)", "missed", "errors", "rows written", "GET /"],
            rows,
        )
    )
    after = found["after: single_run = true"]
    ok = after.runs == seconds and after.per_tick == [1] * seconds and after.errors == 0 and after.served
    print(
        f"goal: after: exactly {seconds} runs in {seconds} ticks, one in each (not {WORKERS * seconds}), no error, "
        f"the app still serving: {'PASS' if ok else 'FAIL'}"
    )
    return [ok]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("parts", nargs="*", metavar="PART", help="limit, admit, ticks (default: all three)")
    parser.add_argument(
        "--repeat", type=int, default=3, help="limit: runs per backend; the median is shown (default 3)"
    )
    parser.add_argument("--n", type=int, default=5000, help="admit: admissions per thread or process (default 5000)")
    parser.add_argument("--seconds", type=int, default=20, help="ticks: how many ticks are counted (default 20)")
    parser.add_argument("--worker", nargs=2, metavar=("CONFIG", "URL"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return worker(*args.worker)
    if not set(args.parts) <= {"limit", "admit", "ticks"}:
        parser.error(f"PART is limit, admit or ticks, not {' '.join(args.parts)}")
    print(machine())
    started = time.perf_counter()
    verdicts: list[bool] = []
    for part in args.parts or ["limit", "admit", "ticks"]:
        if part == "limit":
            verdicts += part_limit(args.repeat)
        elif part == "admit":
            verdicts += part_admit(args.n)
        else:
            verdicts += part_ticks(args.seconds)
    print(f"\ngoals: {sum(verdicts)} of {len(verdicts)} pass ({time.perf_counter() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
