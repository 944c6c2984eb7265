"""`make demo`: the legacy app's jobs, sequential and then accelerated, side by side.

It starts the fake upstream on 127.0.0.1 and runs each job of ``examples/legacy_app`` in a
fresh process (through its own APScheduler, or its cron entry point) with
ENABLE_SCHEDULER_OPTIMIZATION unset and then set, so activation goes through the real
start-up hook. It compares what both runs wrote (DB rows, files, return values), prints a
table, and writes a timeline of every request of both runs (``timeline.html``, a
self-contained SVG page). Exit status 1 when a deterministic job's outputs differ.

The leaderboard job is seed 004's: the app's web front under gunicorn with 4 workers, each
starting the app's scheduler (:mod:`demo_workers`), run for a few ticks; its row counts the
runs per tick, every worker's with the flag off, one with the flag on and ``single_run``.

``items = "learned"`` jobs are run accelerated twice: the first run learns the calls (as a
cron job's first run would), the second is measured. The first is not measured, so it is
made against a twin of the upstream, the same in every respect but ten times faster (its
limits ten times higher). ``DEMO_TIME_SCALE`` (default 1) multiplies every latency and
pause, for the tests. The 'ideal' column is :mod:`demo_ideal`'s.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from demo_ideal import Bound, Limits, Seen, bounds, limits, lowest, run_fields, seen_in_status  # noqa: E402
from demo_timeline import write_timeline  # noqa: E402
from demo_workers import per_tick, serve  # noqa: E402
from legacy_app.upstream import Upstream  # noqa: E402

#: Tokens the upstream answers 500 for: the job logs and skips them, in both runs.
FAILING_TOKENS = frozenset({"HOT013", "TOKEN042"})
#: The wallet queue: long enough that its throughput is the steady state's, not the last
#: refused wallets' wait (seed 003's queue ran for minutes).
WALLETS = [f"0x{i * 7919:040x}" for i in range(120)]
COLLECT_PAUSE = 0.5
#: How much faster the twin upstream answers a learned job's first, unmeasured, run.
LEARN_SPEEDUP = 10
#: The leaderboard's ticks counted in each run (a second each).
TICKS = 3
CONFIG = HERE / "legacy_app" / "sched_accel.toml"


@dataclass(frozen=True, slots=True)
class Job:
    name: str
    command: tuple[str, ...]
    items: int
    target: str  # its loop, as the accel config names the target (its concurrency and rates are there)
    learned: bool = False
    drops_429: bool = False  # the legacy job drops items answered 429; accelerated, they are retried
    workers: int = 0  # served by gunicorn with this many workers, each running the job every tick


JOBS = (
    Job("score_hot", ("-m", "legacy_app.service", "--once", "score_hot"), 35, "legacy_app.jobs:update_scores"),
    Job("score_cold", ("-m", "legacy_app.service", "--once", "score_cold"), 70, "legacy_app.jobs:update_scores"),
    Job(
        "predictions", ("-m", "legacy_app.predictions"), 20, "legacy_app.predictions:generate_predictions", learned=True
    ),
    Job("collect", ("-m", "legacy_app.service", "--once", "collect"), 11, "legacy_app.collection:collect_prices"),
    Job(
        "wallets",
        ("-m", "legacy_app.service", "--once", "wallets"),
        len(WALLETS),
        "legacy_app.wallets:refresh_wallets",
        learned=True,
        drops_429=True,
    ),
    Job(
        "leaderboard",
        ("-m", "gunicorn", "--workers", "4", "legacy_app.web:app"),
        3,
        "legacy_app.leaderboard:publish_leaderboard",
        workers=4,
    ),
)


@dataclass
class Run:
    """One run of one job: what it returned, wrote and cost, and what the upstream saw."""

    returncode: int
    stdout: str
    stderr: str
    seconds: float
    result: Any
    output: Any
    stats: dict[str, Any]
    timeline: list[dict[str, Any]] = field(default_factory=list)
    status: str = ""  # ``sched-accel status`` right after an accelerated run


def _get(url: str) -> Any:
    with urllib.request.urlopen(url) as response:
        return json.loads(response.read())


def seed(job: Job, data: Path) -> None:
    """What the app finds before the job runs: the wallet queue, pushed by its producer."""
    data.mkdir(parents=True, exist_ok=True)
    if job.name == "wallets":
        from legacy_app.wallets import WalletQueue

        conn = sqlite3.connect(data / "wallets.db")
        WalletQueue(conn).push(WALLETS)
        conn.close()


def read_output(job: Job, data: Path) -> Any:
    """What the job wrote: its table's rows, or its file, and what is left in its queue."""
    if job.name == "collect":
        path = data / "coins.json"
        return json.loads(path.read_text()) if path.exists() else None
    db, table = {
        "score_hot": ("scores.db", "scores"),
        "score_cold": ("scores.db", "scores"),
        "predictions": ("predictions.db", "predictions"),
        "wallets": ("wallets.db", "balances"),
        "leaderboard": ("leaderboard.db", "leaderboard"),
    }[job.name]
    if not (data / db).exists():
        return []
    with sqlite3.connect(data / db) as conn:
        rows = conn.execute(f"SELECT * FROM {table} ORDER BY 1").fetchall()
        if job.name == "wallets":
            left = conn.execute("SELECT COUNT(*) FROM wallet_queue").fetchone()[0]
            return {"rows": rows, "queue_left": left}
    return rows


def scaled_config(work: Path, scale: float) -> Path:
    """The app's config; at another scale than 1, a copy whose rates are scaled like the upstream's."""
    if scale == 1:
        return CONFIG
    text = re.sub(
        r"^per_second = ([0-9.]+)$",
        lambda m: f"per_second = {float(m.group(1)) / scale:g}",
        CONFIG.read_text(),
        flags=re.M,
    )
    scaled = work / f"sched_accel-x{scale:g}.toml"
    scaled.write_text(text)
    return scaled


def job_env(job: Job, upstream: Upstream, flag: bool, work: Path, scale: float) -> dict[str, str]:
    """The job's environment: the app's settings, sched_accel's config and state, the flag."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SCHED_ACCEL_", "ENABLE_SCHEDULER"))}
    env.update(
        PYTHONPATH=str(HERE),
        UPSTREAM_URL=upstream.url,
        LEGACY_APP_DATA=str(work / f"{job.name}-{'on' if flag else 'off'}"),
        COLLECT_PAUSE_SECONDS=str(COLLECT_PAUSE * scale),
        SCHED_ACCEL_CONFIG=str(scaled_config(work, scale)),
        SCHED_ACCEL_CONTROL=str(work / "state" / "control.json"),
    )
    if flag:
        env["ENABLE_SCHEDULER_OPTIMIZATION"] = "1"
    return env


def status_of(env: dict[str, str], work: Path) -> str:
    """``sched-accel status`` as the job's environment sees it."""
    return subprocess.run(
        [sys.executable, "-m", "sched_accel", "status"], env=env, capture_output=True, text=True, timeout=60, cwd=work
    ).stdout


def run_served(job: Job, upstream: Upstream, flag: bool, work: Path, scale: float) -> Run:
    """Serve the web front with ``job.workers`` gunicorn workers for :data:`TICKS` ticks; the
    run's seconds are the median run's in those ticks, its output the (token, score) each wrote."""
    env = job_env(job, upstream, flag, work, scale)
    data = Path(env["LEGACY_APP_DATA"])
    if data.exists():
        for child in data.iterdir():
            child.unlink()
    data.mkdir(parents=True, exist_ok=True)
    _get(upstream.url + "/stats/reset")
    served = serve(env, work, workers=job.workers, ticks=TICKS, tail=0.6 * scale + 0.4)
    rows = read_output(job, data)  # (id, published, worker, token, score, seconds)
    first, counts = per_tick([row[1] for row in rows], served.ready, TICKS)
    inside = [row for row in rows if first <= row[1] < first + TICKS]
    timeline = _get(upstream.url + "/timeline")["requests"]
    # The requests are counted in ticks of their own, placed between their start times' phases.
    since, requests = per_tick([r["start"] for r in timeline], served.ready, TICKS)
    stats = _get(upstream.url + "/stats")
    stats["peak_in_flight"] = peak([(r["start"], r["end"]) for r in timeline if since <= r["start"] < since + TICKS])
    result = {
        "per_tick": counts,
        "workers": served.workers,
        "served": served.served,
        "requests_per_tick": sum(requests) / TICKS,
        "skipped": served.log.count("sched_accel.single_run_skipped"),
    }
    returncode = served.returncode or (0 if served.workers == job.workers else 1)
    return Run(
        returncode,
        "",
        served.log,
        statistics.median(row[5] for row in inside) if inside else 0.0,
        result,
        [(row[3], row[4]) for row in inside],
        stats,
        timeline,
        status_of(env, work) if flag else "",
    )


def peak(spans: list[tuple[float, float]]) -> int:
    """The most of these (start, end) spans open at once."""
    edges = sorted([(start, 1) for start, _ in spans] + [(end, -1) for _, end in spans])
    most = now = 0
    for _, step in edges:
        now += step
        most = max(most, now)
    return most


def run_job(job: Job, upstream: Upstream, flag: bool, work: Path, scale: float, twin: Upstream | None = None) -> Run:
    """Run ``job`` in its own interpreter with a fresh data folder; a learned job's accelerated
    run is preceded by a first run that learns its calls (against ``twin``, faster, if given)."""
    if job.workers:
        return run_served(job, upstream, flag, work, scale)
    env = job_env(job, upstream, flag, work, scale)
    data = Path(env["LEGACY_APP_DATA"])
    learning = (
        [] if not (flag and job.learned) else [env if twin is None else job_env(job, twin, flag, work, twin.scale)]
    )
    for pass_env in [*learning, env]:
        if data.exists():
            for child in data.iterdir():
                child.unlink()
        seed(job, data)
        _get(upstream.url + "/stats/reset")
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, *job.command], env=pass_env, capture_output=True, text=True, timeout=300, cwd=work
        )
        seconds = time.perf_counter() - started
    status = status_of(env, work) if flag else ""
    stats = _get(upstream.url + "/stats")
    timeline = _get(upstream.url + "/timeline")["requests"]
    last = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""
    if last.startswith("{"):
        printed = json.loads(last)
        result, seconds = printed.get("result", printed.get("error")), printed.get("seconds", seconds)
    else:  # the cron entry point prints "written=N seconds=S"
        fields = dict(part.split("=", 1) for part in last.split() if "=" in part)
        result, seconds = fields.get("written"), float(fields.get("seconds", seconds))
    output = read_output(job, data) if done.returncode == 0 else None
    return Run(done.returncode, done.stdout, done.stderr, float(seconds), result, output, stats, timeline, status)


@dataclass
class Compared:
    job: Job
    limits: Limits  # what the accel config declares for the job's target
    off: Run
    on: Run
    same: bool
    lost: int  # items the sequential run completed and the accelerated one did not
    note: str = ""

    def done(self, run: Run) -> int:
        """Items the run completed: every item, but for the wallet queue the wallets written
        (the legacy job drops those answered 429; they come back with the next push)."""
        if self.job.drops_429:
            return run.result.get("refreshed", 0) if isinstance(run.result, dict) else 0
        return self.job.items

    def throughput(self, run: Run) -> float:
        """Items completed per second of the job's own run."""
        return self.done(run) / run.seconds if run.seconds else 0.0

    @property
    def speedup(self) -> float:
        off = self.throughput(self.off)
        return self.throughput(self.on) / off if off else 0.0

    @property
    def ideal(self) -> Bound:
        """The lower of the concurrency bound and the rate bounds (:mod:`demo_ideal`)."""
        return lowest(self.bounds)

    @property
    def bounds(self) -> list[Bound]:
        """The concurrency bound, then each rate's the accelerated run was held to."""
        fields = run_fields(self.on.stderr)
        attempts = _int(fields.get("items")) + _int(fields.get("retries"))
        return bounds(
            items=self.job.items,
            concurrency=self.limits.concurrency,
            sequential_rate=self.throughput(self.off),
            accelerated_done=self.done(self.on),
            attempts=attempts,
            declared=self.limits,
            seen=seen_in_status(self.on.status, self.job.target) if self.on.status else Seen(),
        )


def _int(value: str | None) -> int:
    return int(value) if value is not None and value.isdigit() else 0


def compare(job: Job, declared: Limits, off: Run, on: Run) -> Compared:
    """Identical outputs; for the wallet queue, every legacy row written identically, plus the
    wallets the legacy job dropped on a 429 (retried by sched_accel instead)."""
    if off.returncode or on.returncode:
        return Compared(job, declared, off, on, False, 0, "a run failed")
    if job.workers:
        return compare_ticks(job, declared, off, on)
    if not job.drops_429:
        lost = _count(off.output) - _count(on.output)
        return Compared(job, declared, off, on, off.output == on.output and off.result == on.result, max(lost, 0))
    legacy = dict((row[0], row) for row in off.output["rows"])
    mine = dict((row[0], row) for row in on.output["rows"])
    agree = all(mine.get(address) == row for address, row in legacy.items())
    same = agree and off.output["queue_left"] == on.output["queue_left"] == 0
    dropped = off.result.get("dropped", 0) if isinstance(off.result, dict) else 0
    still = on.result.get("dropped", 0) if isinstance(on.result, dict) else 0
    note = (
        f"the legacy job itself drops {dropped} of {job.items} wallets (answered 429); accelerated, "
        f"sched_accel retries them after their Retry-After: {len(mine) - len(legacy)} more wallets written, "
        f"{still} dropped, every legacy row identical"
    )
    return Compared(job, declared, off, on, same, len(set(legacy) - set(mine)), note)


def runs_per_tick(run: Run) -> str:
    """``4``, or ``3-5`` when the ticks counted differ."""
    counts = run.result["per_tick"]
    return f"{min(counts)}" if min(counts) == max(counts) else f"{min(counts)}-{max(counts)}"


def compare_ticks(job: Job, declared: Limits, off: Run, on: Run) -> Compared:
    """The leaderboard: with the flag on, exactly one run in each tick, every row the same as
    the legacy rows (one leader, deterministic), the web front serving in both runs; lost:
    ticks no worker ran."""
    rows = [*off.output, *on.output]
    agree = bool(off.output) and bool(on.output) and all(row == off.output[0] for row in rows)
    once = on.result["per_tick"] == [1] * TICKS
    same = agree and once and off.result["served"] and on.result["served"]
    leader = f"{off.output[0][0]}, {off.output[0][1]}" if off.output else "none"
    note = (
        f"gunicorn, {job.workers} workers, each starting the app's scheduler (legacy_app.web), {TICKS} ticks of 1 s "
        f"counted: sequential, every worker ran every tick ({runs_per_tick(off)} runs per tick, "
        f"{off.result['requests_per_tick']:g} requests per tick at the upstream); with the flag on and single_run = true, "
        f"{runs_per_tick(on)} ({on.result['requests_per_tick']:g} requests per tick), the other workers' calls "
        f"returning None to their schedulers ({on.result['skipped']} sched_accel.single_run_skipped lines); "
        f"{'every row the same' if agree else 'ROWS DIFFER'} (leader {leader}); GET /leaderboard answered "
        f"{'200 in both runs' if off.result['served'] and on.result['served'] else 'NOT in both runs'}"
    )
    return Compared(job, declared, off, on, same, sum(1 for n in on.result["per_tick"] if n == 0), note)


def _count(output: Any) -> int:
    if output is None:
        return 0
    return len(output)


def missing(job: Job) -> str | None:
    """Why ``job`` cannot run here, or None."""
    if job.workers and importlib.util.find_spec("gunicorn") is None:
        return "gunicorn is missing (it comes with the test extra: .venv/bin/pip install -e '.[test]')"
    return None


def run_all(scale: float = 1.0, work: Path | None = None, jobs: tuple[Job, ...] = JOBS) -> list[Compared]:
    """Every job that can run here (:func:`missing`), sequential then accelerated, against one
    upstream (and its faster twin for the learning runs)."""
    with tempfile.TemporaryDirectory(prefix="sched-accel-demo-") as tmp:
        where = Path(work or tmp)
        twin = Upstream(latency=0.2, fail=FAILING_TOKENS, scale=scale / LEARN_SPEEDUP)
        with Upstream(latency=0.2, fail=FAILING_TOKENS, scale=scale) as upstream, twin:
            results = []
            for job in (job for job in jobs if missing(job) is None):
                off = run_job(job, upstream, False, where, scale)
                on = run_job(job, upstream, True, where, scale, twin)
                results.append(compare(job, limits(scaled_config(where, scale), job.target), off, on))
    return results


def table(results: list[Compared]) -> str:
    header = (
        "job",
        "items",
        "seconds",
        "items/s",
        "ideal items/s",
        "speedup",
        "ideal",
        "bound",
        "peak in flight",
        "429s",
        "items lost",
        "runs per tick",
    )
    rows = [header]
    for c in results:
        bound, before = c.ideal, c.throughput(c.off)
        rows.append(
            (
                c.job.name,
                str(c.job.items),
                f"{c.off.seconds:.2f} -> {c.on.seconds:.2f}",
                f"{before:.1f} -> {c.throughput(c.on):.1f}",
                f"{before * bound.speedup:.1f}",
                f"{c.speedup:.1f}x",
                f"{bound.speedup:.1f}x",
                bound.why,
                f"{c.off.stats['peak_in_flight']} -> {c.on.stats['peak_in_flight']}",
                f"{c.off.stats['status_429']} -> {c.on.stats['status_429']}",
                str(c.lost),
                f"{runs_per_tick(c.off)} -> {runs_per_tick(c.on)}" if c.job.workers else "",
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows)


FOOTNOTE = """
seconds: the job's own run, as the app reports it, sequential -> accelerated; items/s: items completed per second
(wallets: wallets written; the legacy job drops those answered 429); speedup: the ratio of the two.
ideal: the lower of two bounds, named in 'bound' (ideal items/s: the sequential items/s times it).
  concurrency: items / ceil(items / concurrency), concurrency slots each as fast as the sequential loop;
  rate: the accelerated run's requests (refused ones too: they spend the upstream's tokens) start no faster than
  the upstream's rate, declared in the config (the target's per_second, over its attempts; [hosts] per_second)
  or else told or learned by sched_accel (sched-accel status), so the run takes at least (requests - burst) / rate.
peak in flight and 429s: counted at the upstream, sequential -> accelerated;
items lost: items the sequential run completed and the accelerated run did not.
leaderboard (seed 004): the web front under gunicorn, each worker running the job every second; items are one
run's tokens, seconds the median run's; peak in flight: every worker's requests, in the ticks counted; runs per
tick: runs of the job in each tick (sequential: every worker's; flag on, single_run = true: one); items lost: ticks
nobody ran."""


def notes(c: Compared) -> list[str]:
    """What the table does not say about a job: how its outputs compare, and what bounds it."""
    said = [c.note] if c.note else []
    if c.job.name == "collect":
        said.append(
            "the loop's pacing sleeps are skipped; 3 coins go at once (source A's limit) and source B's requests"
            ' are paced to its declared 2 requests/s ([hosts."localhost"] in the config): source B answered 429'
            f" {c.on.stats['status_429']} times accelerated, {c.off.stats['status_429']} times sequential"
        )
    if (bound := c.ideal).rate_bound:
        said.append(
            f"rate-bound ({bound.why}): {bound.detail}, so at most {c.throughput(c.off) * bound.speedup:.1f}"
            f" items/s; accelerated, {c.throughput(c.on):.1f}"
        )
    return said


def main() -> int:
    scale = float(os.environ.get("DEMO_TIME_SCALE", "1"))
    print("sched_accel demo: examples/legacy_app, each job sequential (flag off) then accelerated (flag on)\n")
    out_dir = HERE.parent / ".demo"
    out_dir.mkdir(exist_ok=True)
    for job in JOBS:
        if (why := missing(job)) is not None:
            print(f"{job.name}: skipped: {why}")
    results = run_all(scale)
    failed = [c for c in results if c.off.returncode or c.on.returncode]
    for c in failed:
        for name, run in (("sequential", c.off), ("accelerated", c.on)):
            if run.returncode:
                print(f"{c.job.name}: the {name} run failed (exit {run.returncode}):\n{run.stderr[-3000:]}")
    print(table(results))
    print(FOOTNOTE)
    for c in results:
        for note in notes(c):
            print(f"\n{c.job.name}: {note}")
    picture = write_timeline(results, out_dir / "timeline.html")
    print(f"\ntimeline of every request, both runs: {picture}")
    print("\nthe accelerated runs' summary lines:")
    for c in results:
        lines = [
            line[line.index("sched_accel.run ") :] for line in c.on.stderr.splitlines() if "sched_accel.run " in line
        ]
        if c.job.workers and len(lines) > 1:  # one per tick: the last, and how many there were
            lines = [f"{lines[-1]}  (the last of {len(lines)}, one per tick)"]
        for line in lines:
            print("  " + line)
    differ = [c.job.name for c in results if not c.same]
    if differ:
        print(f"\nFAIL: outputs differ between the sequential and the accelerated run for: {', '.join(differ)}")
        return 1
    print(
        "\nsame outputs (rows, files, return values) in both runs for every job; wallets: every legacy row, "
        "plus the wallets the legacy job dropped on a 429"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
