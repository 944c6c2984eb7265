"""`make demo`: the legacy app's jobs, sequential and then accelerated, side by side.

It starts the fake upstream on 127.0.0.1 and runs each job of ``examples/legacy_app`` in a
fresh process (through its own APScheduler, or its cron entry point) with
ENABLE_SCHEDULER_OPTIMIZATION unset and then set, so activation goes through the real
start-up hook. It compares what both runs wrote (DB rows, files, return values), prints a
table, and writes a timeline of every request of both runs (``timeline.html``, a
self-contained SVG page). Exit status 1 when a deterministic job's outputs differ.

``items = "learned"`` jobs are run accelerated twice: the first run learns the calls (as a
cron job's first run would), the second is measured. ``DEMO_TIME_SCALE`` (default 1)
multiplies every latency and pause, for the tests.
"""

from __future__ import annotations

import html
import json
import math
import os
import re
import sqlite3
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

from legacy_app.upstream import Upstream  # noqa: E402

#: Tokens the upstream answers 500 for: the job logs and skips them, in both runs.
FAILING_TOKENS = frozenset({"HOT013", "TOKEN042"})
WALLETS = [f"0x{i * 7919:040x}" for i in range(80)]
COLLECT_PAUSE = 0.5


@dataclass(frozen=True, slots=True)
class Job:
    name: str
    command: tuple[str, ...]
    items: int
    concurrency: int
    learned: bool = False
    drops_429: bool = False  # the legacy job drops items answered 429; accelerated, they are retried


JOBS = (
    Job("score_hot", ("-m", "legacy_app.service", "--once", "score_hot"), 35, 8),
    Job("score_cold", ("-m", "legacy_app.service", "--once", "score_cold"), 70, 8),
    Job("predictions", ("-m", "legacy_app.predictions"), 20, 3, learned=True),
    Job("collect", ("-m", "legacy_app.service", "--once", "collect"), 11, 5),
    Job("wallets", ("-m", "legacy_app.service", "--once", "wallets"), len(WALLETS), 20, learned=True, drops_429=True),
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
    }[job.name]
    with sqlite3.connect(data / db) as conn:
        rows = conn.execute(f"SELECT * FROM {table} ORDER BY 1").fetchall()
        if job.name == "wallets":
            left = conn.execute("SELECT COUNT(*) FROM wallet_queue").fetchone()[0]
            return {"rows": rows, "queue_left": left}
    return rows


def scaled_config(work: Path, scale: float) -> Path:
    """The app's config; at another scale than 1, a copy whose host rates are scaled like the upstream's."""
    config = HERE / "legacy_app" / "sched_accel.toml"
    if scale == 1:
        return config
    text = re.sub(
        r"^per_second = ([0-9.]+)$", lambda m: f"per_second = {float(m.group(1)) / scale:g}", config.read_text(), flags=re.M
    )
    scaled = work / f"sched_accel-x{scale:g}.toml"
    scaled.write_text(text)
    return scaled


def run_job(job: Job, upstream: Upstream, flag: bool, work: Path, scale: float) -> Run:
    """Run ``job`` in its own interpreter with a fresh data folder."""
    data = work / f"{job.name}-{'on' if flag else 'off'}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SCHED_ACCEL_", "ENABLE_SCHEDULER"))}
    env.update(
        PYTHONPATH=str(HERE),
        UPSTREAM_URL=upstream.url,
        LEGACY_APP_DATA=str(data),
        COLLECT_PAUSE_SECONDS=str(COLLECT_PAUSE * scale),
        SCHED_ACCEL_CONFIG=str(scaled_config(work, scale)),
        SCHED_ACCEL_CONTROL=str(work / "state" / "control.json"),
    )
    if flag:
        env["ENABLE_SCHEDULER_OPTIMIZATION"] = "1"
    passes = 2 if flag and job.learned else 1  # a learned job's first accelerated run learns
    for _ in range(passes):
        if data.exists():
            for child in data.iterdir():
                child.unlink()
        seed(job, data)
        _get(upstream.url + "/stats/reset")
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, *job.command], env=env, capture_output=True, text=True, timeout=300, cwd=work
        )
        seconds = time.perf_counter() - started
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
    return Run(done.returncode, done.stdout, done.stderr, float(seconds), result, output, stats, timeline)


@dataclass
class Compared:
    job: Job
    off: Run
    on: Run
    same: bool
    lost: int  # items the sequential run completed and the accelerated one did not
    note: str = ""


def compare(job: Job, off: Run, on: Run) -> Compared:
    """Identical outputs; for the wallet queue, every legacy row written identically, plus the
    wallets the legacy job dropped on a 429 (retried by sched_accel instead)."""
    if off.returncode or on.returncode:
        return Compared(job, off, on, False, 0, "a run failed")
    if not job.drops_429:
        lost = _count(off.output) - _count(on.output)
        return Compared(job, off, on, off.output == on.output and off.result == on.result, max(lost, 0))
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
    return Compared(job, off, on, same, len(set(legacy) - set(mine)), note)


def _count(output: Any) -> int:
    if output is None:
        return 0
    return len(output)


def run_all(scale: float = 1.0, work: Path | None = None, jobs: tuple[Job, ...] = JOBS) -> list[Compared]:
    """Every job, sequential then accelerated, against one upstream."""
    with tempfile.TemporaryDirectory(prefix="sched-accel-demo-") as tmp:
        where = Path(work or tmp)
        with Upstream(latency=0.2, fail=FAILING_TOKENS, scale=scale) as upstream:
            results = []
            for job in jobs:
                off = run_job(job, upstream, False, where, scale)
                on = run_job(job, upstream, True, where, scale)
                results.append(compare(job, off, on))
    return results


def ideal_speedup(items: int, concurrency: int) -> float:
    return items / math.ceil(items / concurrency)


def table(results: list[Compared]) -> str:
    header = ("job", "items", "sequential s", "accelerated s", "speedup", "ideal speedup", "peak in flight", "429s", "items lost")
    rows = [header]
    for c in results:
        rows.append((
            c.job.name,
            str(c.job.items),
            f"{c.off.seconds:.2f}",
            f"{c.on.seconds:.2f}",
            f"{c.off.seconds / c.on.seconds:.1f}x" if c.on.seconds else "-",
            f"{ideal_speedup(c.job.items, c.job.concurrency):.1f}x",
            f"{c.off.stats['peak_in_flight']} -> {c.on.stats['peak_in_flight']}",
            f"{c.off.stats['status_429']} -> {c.on.stats['status_429']}",
            str(c.lost),
        ))
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows)


# -- the picture ------------------------------------------------------------------------------
COLORS = {200: "#3b7dd8", 429: "#e8871e", 503: "#c0392b", 500: "#7f1d1d", 404: "#888"}


def _panel(run: Run, label: str, order: dict[str, int], span: float, width: int, row_h: float, top: int) -> list[str]:
    parts = [f'<text x="4" y="{top - 4}" font-size="12">{html.escape(label)}</text>']
    if not run.timeline:
        return parts
    t0 = min(r["start"] for r in run.timeline)
    scale_x = (width - 10) / span
    for r in run.timeline:
        key = f"{r['endpoint']}/{r['key']}"
        y = top + order.setdefault(key, len(order)) * row_h
        x = 5 + (r["start"] - t0) * scale_x
        w = max((r["end"] - r["start"]) * scale_x, 1.0)
        color = COLORS.get(r["status"], "#555")
        title = f"{key} {r['status']} {r['start'] - t0:.3f}-{r['end'] - t0:.3f}s"
        parts.append(
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" height="{max(row_h - 0.5, 0.8):.1f}" fill="{color}">'
            f"<title>{html.escape(title)}</title></rect>"
        )
    return parts


def write_timeline(results: list[Compared], path: Path) -> Path:
    """One SVG per job: every request of the sequential run above, of the accelerated run below,
    on the same time axis (one row per request key, in the order the sequential run made them)."""
    width = 960
    sections = []
    for c in results:
        runs = [r for r in (c.off, c.on) if r.timeline]
        if not runs:
            continue
        span = max(max(x["end"] for x in r.timeline) - min(x["start"] for x in r.timeline) for r in runs) or 1.0
        order: dict[str, int] = {}
        for r in sorted(c.off.timeline, key=lambda r: r["start"]):
            order.setdefault(f"{r['endpoint']}/{r['key']}", len(order))
        keys = len({f"{r['endpoint']}/{r['key']}" for run in runs for r in run.timeline} | set(order))
        row_h = max(min(240 / max(keys, 1), 6.0), 1.5)
        panel_h = int(keys * row_h) + 24
        body = _panel(c.off, f"sequential: {c.off.seconds:.2f} s", order, span, width, row_h, 20)
        body += _panel(c.on, f"accelerated: {c.on.seconds:.2f} s", order, span, width, row_h, 20 + panel_h)
        ticks = max(span / 10, 0.01)
        tick = 10 ** math.floor(math.log10(ticks))
        tick = next(t * tick for t in (1, 2, 5, 10) if t * tick >= ticks)
        axis_y = 20 + 2 * panel_h
        for i in range(int(span / tick) + 1):
            x = 5 + i * tick * (width - 10) / span
            body.append(f'<line x1="{x:.1f}" y1="10" x2="{x:.1f}" y2="{axis_y}" stroke="#ddd" stroke-width="0.5"/>')
            body.append(f'<text x="{x:.1f}" y="{axis_y + 12}" font-size="10" text-anchor="middle">{i * tick:g}s</text>')
        svg = (
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{axis_y + 20}" font-family="sans-serif">'
            + "".join(body) + "</svg>"
        )
        sections.append(
            f"<h2>{html.escape(c.job.name)}: {c.job.items} items, concurrency {c.job.concurrency}</h2>\n{svg}"
        )
    legend = " ".join(
        f'<span style="background:{color};color:white;padding:1px 6px">{status}</span>' for status, color in COLORS.items()
    )
    path.write_text(
        "<!doctype html><meta charset='utf-8'><title>sched_accel demo: request timeline</title>"
        "<body style='font-family:sans-serif'><h1>Every upstream request, sequential and accelerated</h1>"
        f"<p>One row per request (endpoint/key), one bar from its start to its end at the upstream. {legend}</p>"
        + "\n".join(sections) + "</body>",
        encoding="utf-8",
    )
    return path


def main() -> int:
    scale = float(os.environ.get("DEMO_TIME_SCALE", "1"))
    print("sched_accel demo: examples/legacy_app, each job sequential (flag off) then accelerated (flag on)\n")
    out_dir = HERE.parent / ".demo"
    out_dir.mkdir(exist_ok=True)
    results = run_all(scale)
    failed = [c for c in results if c.off.returncode or c.on.returncode]
    for c in failed:
        for name, run in (("sequential", c.off), ("accelerated", c.on)):
            if run.returncode:
                print(f"{c.job.name}: the {name} run failed (exit {run.returncode}):\n{run.stderr[-3000:]}")
    print(table(results))
    print(
        "\nseconds: the job's own run, as the app reports it; ideal speedup: items / ceil(items / concurrency);"
        "\npeak in flight and 429s: counted at the upstream, sequential -> accelerated;"
        "\nitems lost: items the sequential run completed and the accelerated run did not."
    )
    for c in results:
        if c.note:
            print(f"\n{c.job.name}: {c.note}")
    collect = next((c for c in results if c.job.name == "collect"), None)
    if collect is not None:
        print(
            f"\ncollect: the loop's pacing sleeps are skipped; 3 coins go at once (source A's limit) and"
            f" source B's requests are paced to its declared 2 requests/s ([hosts.\"localhost\"] in the config):"
            f" source B answered 429 {collect.on.stats['status_429']} times accelerated,"
            f" {collect.off.stats['status_429']} times sequential."
        )
    picture = write_timeline(results, out_dir / "timeline.html")
    print(f"\ntimeline of every request, both runs: {picture}")
    print("\nthe accelerated runs' summary lines:")
    for c in results:
        for line in c.on.stderr.splitlines():
            if "sched_accel.run " in line:
                print("  " + line[line.index("sched_accel.run ") :])
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
