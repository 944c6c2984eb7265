"""What every benchmark shares: the patched set-up, the clocks, the table, the machine line."""

from __future__ import annotations

import atexit
import logging
import os
import platform
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sched_accel
from sched_accel._prefetch import _probe

ROOT = Path(__file__).resolve().parent.parent

CONFIG = """\
concurrency = {concurrency}
log = "stdlib"
{top}

[[targets]]
loop = "legacy_jobs:fetch_all"
fetch = "{fetch_sync}"
items = "items"
{window}{shadow}
[[targets]]
loop = "legacy_jobs:afetch_all"
fetch = "{fetch_async}"
items = "items"
{window}{shadow}

[[targets]]
loop = "legacy_jobs:trivial_loop"
fetch = "legacy_jobs:trivial"
items = "items"

[[targets]]
loop = "legacy_jobs:atrivial_loop"
fetch = "legacy_jobs:atrivial"
items = "items"
"""

#: How the step-aside rule is disabled, to show the engine's own cost.
VARIANTS: dict[str, dict[str, float]] = {
    "default": {},
    # The probe of the first call never concludes that calls are cheap: always prefetch.
    "no-probe": {"PROBE_SECONDS": 0.0},
}


class RunEvents(logging.Handler):
    """Keeps the ``sched_accel.run`` records, to show what each patched run did."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.runs: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        if getattr(record, "sched_accel_event", None) == "sched_accel.run":
            self.runs.append(dict(getattr(record, "sched_accel", {})))


EVENTS = RunEvents()
_logger = logging.getLogger("sched_accel")
_logger.addHandler(EVENTS)
_logger.setLevel(logging.INFO)
_logger.propagate = False

for _key in [k for k in os.environ if k.startswith("SCHED_ACCEL_")]:
    del os.environ[_key]  # a concurrency override from the shell must not skew the figures
_STATE = tempfile.mkdtemp(prefix="sched_accel-bench-")  # owner-only, as sched_accel requires
atexit.register(shutil.rmtree, _STATE, ignore_errors=True)
os.environ["SCHED_ACCEL_CONTROL"] = str(Path(_STATE, "control.json"))  # the state folder: each app's in apps/


@contextmanager
def installed(text: str, name: str) -> Iterator[None]:
    """sched_accel installed for the block with the config ``text`` (written as ``name`` in the
    benchmarks' state folder), the way the start-up hook does it; uninstalled after."""
    config = Path(_STATE, name)
    config.write_text(text)
    os.environ["ENABLE_SCHEDULER_OPTIMIZATION"] = "1"
    try:
        if not sched_accel.install(str(config)):
            raise RuntimeError(f"sched_accel did not install the config {config}")
        yield
    finally:
        sched_accel.uninstall()
        del os.environ["ENABLE_SCHEDULER_OPTIMIZATION"]


@contextmanager
def patched(
    concurrency: int,
    variant: str = "default",
    window: int | None = None,
    top: str = "",
    *,
    http: bool = False,
    shadow: bool = False,
    keep_learned: bool = False,
) -> Iterator[None]:
    """sched_accel installed, the way the start-up hook does it, for the block (``window``:
    the read-ahead window of the HTTP targets, default sched_accel's own; ``top``: more
    top-level config, such as a ``[hosts."..."]`` table; ``http``: HTTP-level prefetch of
    the loops' requests instead of running their per-item method ahead; ``shadow``: the
    per-item method run ahead as a shadow (``shadow = true``; else ``pure = true``: its return
    value served, as function level always did); ``keep_learned``: the
    rates hosts told the last run are kept, as for the next run of a cron job)."""
    if not keep_learned:  # each run starts as a first run, unless it is the second of a cron job
        for kept in Path(_STATE).glob("apps/*/hosts.json"):  # each app's own (state per app)
            kept.unlink()
    text = CONFIG.format(
        concurrency=concurrency,
        fetch_sync="http" if http else "legacy_jobs:Api.get_item",
        fetch_async="http" if http else "legacy_jobs:AsyncApi.get_item",
        window="" if window is None else f"window = {window}\n",
        # A per-item method is shadowed by default; the rows named "function level" serve its return value.
        shadow="" if http else "shadow = true\n" if shadow else "pure = true\n",
        top=top,
    )
    saved = {name: getattr(_probe, name) for name in VARIANTS[variant]}
    try:
        for name, value in VARIANTS[variant].items():
            setattr(_probe, name, value)
        with installed(text, f"sched_accel-{concurrency}-{window}-{http}-{shadow}.toml"):
            if len(sched_accel.patched_targets()) != 4:
                raise RuntimeError(f"sched_accel did not patch the benchmark loops: {sched_accel.patched_targets()}")
            yield
    finally:
        for name, value in saved.items():
            setattr(_probe, name, value)


def last_run_note() -> str:
    """What the last patched run reported: calls prefetched, missed, and a step-aside."""
    if not EVENTS.runs:
        return ""
    run = EVENTS.runs[-1]
    EVENTS.runs.clear()
    note = f"prefetched {run.get('prefetched')}/{run.get('items')}" + (
        " requests" if run.get("prefetch") == "http" else ""
    )
    if run.get("missed"):
        note += f", missed {run['missed']}"
    if run.get("stepped_aside"):
        note += ", stepped aside"
    if run.get("outcome") != "ok":
        note += f", outcome {run.get('outcome')}"
    return note


@dataclass(slots=True)
class Measure:
    """Wall and process CPU seconds of one timed block."""

    wall: float = 0.0
    cpu: float = 0.0
    note: str = ""


@contextmanager
def clocks() -> Iterator[Measure]:
    """Time the block: wall (perf_counter) and CPU of every thread of this process."""
    measure = Measure()
    cpu, wall = time.process_time(), time.perf_counter()
    try:
        yield measure
    finally:
        measure.wall = time.perf_counter() - wall
        measure.cpu = time.process_time() - cpu


@dataclass(slots=True)
class Samples:
    """Repeated measures of one contender; the median is what the tables show."""

    walls: list[float] = field(default_factory=list)
    cpus: list[float] = field(default_factory=list)
    note: str = ""

    def add(self, measure: Measure) -> None:
        self.walls.append(measure.wall)
        self.cpus.append(measure.cpu)
        self.note = measure.note or self.note

    @property
    def wall(self) -> float:
        return statistics.median(self.walls)

    @property
    def cpu(self) -> float:
        return statistics.median(self.cpus)


def command(*args: str) -> str:
    """The command line that produces a table, as a user would type it from the repo root."""
    python = os.path.relpath(sys.executable, ROOT) if sys.executable.startswith(str(ROOT)) else sys.executable
    return "$ " + shlex.join([python, "benchmarks/prefetch.py", *args])


def machine() -> str:
    """nproc, CPU, Python and library versions: what the figures depend on."""
    from importlib.metadata import PackageNotFoundError, version

    def installed(name: str) -> str:
        try:
            return version(name)
        except PackageNotFoundError:
            return "missing"

    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as file:
            model = next((line.split(":", 1)[1].strip() for line in file if line.startswith("model name")), model)
    except OSError:
        pass
    try:
        described = subprocess.run(
            ["git", "describe", "--always", "--dirty"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
        commit = f" at {described}"
    except (OSError, subprocess.CalledProcessError):
        commit = ""
    return (
        f"machine: nproc={cpus} ({model}), {platform.system()} {platform.release()}, "
        f"{platform.python_implementation()} {platform.python_version()}; "
        + ", ".join(f"{name} {installed(name)}" for name in ("sched-accel", "httpx", "anyio", "wrapt", "aiometer"))
        + f"; work tree{commit}"
    )


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A plain text table: first column left-aligned, the others right-aligned."""
    widths = [max(len(str(row[i])) for row in [headers, *rows]) for i in range(len(headers))]

    def line(cells: Sequence[str]) -> str:
        parts = [str(cells[0]).ljust(widths[0])]
        parts += [str(cell).rjust(width) for cell, width in zip(cells[1:], widths[1:], strict=False)]
        return "  ".join(parts).rstrip()

    rule = "  ".join("-" * width for width in widths)
    return "\n".join([line(headers), rule, *(line(row) for row in rows)])


def goal(text: str, ok: bool) -> str:
    """One goal line, PASS or FAIL."""
    return f"goal: {text}: {'PASS' if ok else 'FAIL'}"


def state_env(state: str | os.PathLike[str]) -> dict[str, str]:
    """The environment that makes ``state`` a process's state folder."""
    return {"SCHED_ACCEL_CONTROL": str(Path(state, "control.json"))}


def write_config(
    path: str | os.PathLike[str], concurrency: int, *, state: str | os.PathLike[str], top: str = "", http: bool = False
) -> Path:
    """The benchmark loops' config (as :func:`patched` writes it) at ``path``; ``state`` is the
    state folder its processes are to be given (``$SCHED_ACCEL_CONTROL``, :func:`state_env`):
    processes given the same one share it, as an app's workers do (``scaleout.py``)."""
    config = Path(path)
    config.write_text(
        CONFIG.format(
            concurrency=concurrency,
            fetch_sync="http" if http else "legacy_jobs:Api.get_item",
            fetch_async="http" if http else "legacy_jobs:AsyncApi.get_item",
            window="",
            top=top,
        )
    )
    return config
