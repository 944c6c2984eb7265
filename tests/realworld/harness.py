"""Run a program of the corpus sequentially and accelerated, in real processes, and compare.

Each run is a fresh interpreter of this venv started in a fresh working directory (a copy of
the program's folder) through the installed start-up hook: flag off (no
``ENABLE_SCHEDULER_OPTIMIZATION``, no config), then flag on (``=true``, the program's
``sched_accel.toml`` in its working directory). Both share the program's state folder
(``SCHED_ACCEL_CONTROL``), fresh for each measure. Children run without coverage's tracer, as
in production (under a tracer a loop in ``__main__`` is, by design, not patched). With
``REALWORLD_SRC=/path/to/other/src`` the children import that tree's library instead (its
``src`` first on ``PYTHONPATH``, ahead of the editable install's), e.g. the last commit's
(``git archive HEAD src | tar -x -C /tmp/head``) while the working tree is being edited.

What is compared, everything a user could observe: exit code; the exception that ended the
process (the last line of each traceback: type and message; the frames may differ); stdout;
stderr without our ``sched_accel.*`` lines and tracebacks (the app's own log lines, in order);
every file left in the working directory, byte for byte (``sched_accel.toml`` aside); every
table of every SQLite file, row by row in rowid order; and each request's count at the
upstream: no request may reach it more often accelerated than sequentially; requests the
sequential run never made (sent ahead for items the loop never reached) are counted as wasted.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from .corpus import Program
from .upstream import Key, Upstream

__all__ = ["Comparison", "Observed", "measure", "run_program"]

PROGRAMS_DIR = Path(__file__).resolve().parent / "programs"
#: our variables, never inherited from the environment running the harness
OUR_VARIABLES = (
    "ENABLE_SCHEDULER_OPTIMIZATION",
    "SCHED_ACCEL_CONFIG",
    "SCHED_ACCEL_CONCURRENCY",
    "SCHED_ACCEL_CONTROL",
    "SCHED_ACCEL_LOG",
    "SCHED_ACCEL_PROBE",
)
TIMEOUT = 90.0

#: one of our log lines, through loguru's default format or as a bare line
#: Our line, bare, in loguru's format, or in the app's own logging format (its prefix ends
#: with a space, ``:``, ``|`` or ``]`` before the event: ``INFO:sched_accel:sched_accel.run ...``).
OURS = re.compile(r"^(?:.*?[\s:|\]])?(sched_accel\.[a-z_]+(?: .*)?)$")
FIELD = re.compile(r'(\w+)=("[^"]*"|\S+)')
CHAINED = (
    "During handling of the above exception, another exception occurred:",
    "The above exception was the direct cause of the following exception:",
)


@dataclass
class Observed:
    """What one run left behind."""

    returncode: int
    stdout: str
    stderr: list[str]  # the app's own stderr lines: ours and tracebacks taken out
    exceptions: list[str]  # the last line of each traceback, in order
    ours: list[str]  # our sched_accel.* lines
    files: dict[str, bytes]
    tables: dict[str, list[tuple[object, ...]]]
    requests: Counter[Key]
    span: float  # seconds from the first request's arrival to the last answer's end
    wall: float  # seconds of the whole process

    @property
    def total_requests(self) -> int:
        return sum(self.requests.values())


@dataclass
class Comparison:
    """A program's two runs side by side, and what differs."""

    program: Program
    off: Observed
    on: Observed
    differences: list[str] = field(default_factory=list)
    repeated: dict[Key, tuple[int, int]] = field(default_factory=dict)  # key -> (off, on), on > off
    wasted: int = 0

    @property
    def identical(self) -> bool:
        return not self.differences

    @property
    def no_request_repeated(self) -> bool:
        return not self.repeated

    @property
    def speedup(self) -> float:
        return self.off.span / self.on.span if self.on.span > 0 else float("nan")

    @property
    def runs(self) -> list[dict[str, str]]:
        """The fields of each ``sched_accel.run`` line of the accelerated run."""
        found = []
        for line in self.on.ours:
            if line.startswith("sched_accel.run "):
                head = line.split(" - ", 1)[0]
                found.append({k: v.strip('"') for k, v in FIELD.findall(head)})
        return found

    @property
    def level(self) -> str:
        """The level the accelerated run used, from its run line(s), or why there was none."""
        levels: list[str] = []
        for run in self.runs:
            if run.get("mode") == "replace":
                level = "replace"
            else:
                level = run.get("prefetch", "function")
            if run.get("stepped_aside"):
                level += f" (stepped aside: {run['stepped_aside']})"
            if level not in levels:
                levels.append(level)
        if levels:
            return " + ".join(levels)
        events = self.events
        if "sched_accel.patched" in events:
            return "patched, never ran"
        for problem in ("config_invalid", "target_unresolved", "target_not_patched"):
            if f"sched_accel.{problem}" in events:
                return f"unpatched ({problem})"
        return "none"

    @property
    def prefetched(self) -> str:
        """Items served from what was sent ahead, of the items, over the run lines."""
        runs = self.runs
        if not runs:
            return "-"
        served = sum(int(r.get("prefetched", "0")) for r in runs)
        items = sum(int(r["items"]) for r in runs if r.get("items", "-").isdigit())
        return f"{served}/{items}"

    @property
    def events(self) -> Counter[str]:
        return Counter(line.split()[0] for line in self.on.ours)

    @property
    def why_not(self) -> str:
        """The first ``not_accelerated`` (or refusal) line's reason, shortened."""
        for line in self.on.ours:
            name = line.split()[0]
            if name in (
                "sched_accel.items_unresolved",
                "sched_accel.not_accelerated",
                "sched_accel.fetch_not_shadowed",
                "sched_accel.target_unresolved",
                "sched_accel.config_invalid",
                "sched_accel.target_not_patched",
                "sched_accel.internal_error",
            ):
                reason = line.split(" - ", 1)[1] if " - " in line else line
                return f"{name.removeprefix('sched_accel.')}: {reason}"
        return ""

    def summary(self) -> str:
        """Several lines for a failing test or the table's notes."""
        lines = [
            f"{self.program.name}: level={self.level} prefetched={self.prefetched} "
            f"requests {self.off.total_requests} -> {self.on.total_requests} (wasted {self.wasted}) "
            f"seconds {self.off.span:.2f} -> {self.on.span:.2f}"
        ]
        lines += [f"  differs: {d}" for d in self.differences]
        lines += [f"  sent more often: {describe_key(k)}: {a} -> {b}" for k, (a, b) in self.repeated.items()]
        if self.why_not:
            lines.append(f"  {self.why_not}")
        return "\n".join(lines)


def describe_key(key: Key) -> str:
    method, path, query, body = key
    text = f"{method} {path}"
    if query:
        text += "?" + "&".join(f"{k}={v}" for k, v in query)
    if body:
        text += f" {body[:80]}"
    return text


def child_environment(api: Upstream, state: Path, on: bool, redis_url: str | None) -> dict[str, str]:
    """This process's environment without our variables or coverage's, plus the run's own."""
    env = {k: v for k, v in os.environ.items() if k not in OUR_VARIABLES and not k.startswith("COVERAGE_")}
    env.update(
        {
            "REALWORLD_API": api.url,
            "SCHED_ACCEL_CONTROL": str(state / "control.json"),
            "PYTHONHASHSEED": "0",
            "PYTHONDONTWRITEBYTECODE": "1",
            "TZ": "UTC",
        }
    )
    if redis_url:
        env["REALWORLD_REDIS_URL"] = redis_url
    other = os.environ.get("REALWORLD_SRC")  # measure another tree's library: its src/ first on the path
    if other:
        env["PYTHONPATH"] = os.pathsep.join(p for p in (other, env.get("PYTHONPATH", "")) if p)
    if on:
        env["ENABLE_SCHEDULER_OPTIMIZATION"] = "true"
    return env


def split_stderr(text: str) -> tuple[list[str], list[str], list[str]]:
    """(our lines, the app's lines, the exception line of each traceback)."""
    ours: list[str] = []
    app: list[str] = []
    exceptions: list[str] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        match = OURS.match(line)
        if match:
            ours.append(match.group(1))
        elif line.startswith("Traceback (most recent call last):"):
            i += 1
            while i < len(lines) and (lines[i].startswith(" ") or not lines[i]):
                i += 1
            if i < len(lines):
                exceptions.append(lines[i])
        elif line not in CHAINED:
            app.append(line)
        i += 1
    return ours, app, exceptions


def dump_sqlite(path: Path) -> dict[str, list[tuple[object, ...]]]:
    """Every table's rows, in rowid order (a table's natural order)."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        names = [row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table' ORDER BY name")]
        return {name: [tuple(row) for row in conn.execute(f'SELECT * FROM "{name}"')] for name in names}
    finally:
        conn.close()


def collect_files(work: Path) -> tuple[dict[str, bytes], dict[str, list[tuple[object, ...]]], list[str]]:
    """Every file the program left (SQLite as its tables), and our lines found in its text
    files (an app that logs to a file has our lines there, in its format): taken out of them."""
    files: dict[str, bytes] = {}
    tables: dict[str, list[tuple[object, ...]]] = {}
    ours: list[str] = []
    for path in sorted(work.rglob("*")):
        relative = path.relative_to(work).as_posix()
        if not path.is_file() or "__pycache__" in relative.split("/") or relative == "sched_accel.toml":
            continue
        if relative.endswith(("-journal", "-wal", "-shm")):
            continue
        data = path.read_bytes()
        if data.startswith(b"SQLite format 3\x00"):
            for table, rows in dump_sqlite(path).items():
                tables[f"{relative}:{table}"] = rows
            continue
        if b"sched_accel." in data:
            kept = []
            for line in data.decode("utf-8", "surrogateescape").splitlines(keepends=True):
                match = OURS.match(line.rstrip("\r\n"))
                if match:
                    ours.append(match.group(1))
                else:
                    kept.append(line)
            data = "".join(kept).encode("utf-8", "surrogateescape")
        files[relative] = data
    return files, tables, ours


def run_program(
    program: Program, api: Upstream, template: Path, work: Path, state: Path, *, on: bool, redis_url: str | None = None
) -> Observed:
    """One run of ``program`` in ``work`` (a copy of ``template``), flag on or off."""
    shutil.copytree(template, work)
    if not on:
        (work / "sched_accel.toml").unlink(missing_ok=True)
    env = child_environment(api, state, on, redis_url)
    api.reset()
    started = time.monotonic()
    process = subprocess.Popen(
        [sys.executable, *program.command],
        cwd=work,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = process.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        stdout, stderr = process.communicate()
        stderr += f"\nharness: killed after {TIMEOUT:.0f} s"
    wall = time.monotonic() - started
    requests, span = api.snapshot()
    stdout = stdout.replace(str(work), "<work>")
    ours, app, exceptions = split_stderr(stderr.replace(str(work), "<work>"))
    files, tables, logged = collect_files(work)
    return Observed(process.returncode, stdout, app, exceptions, ours + logged, files, tables, requests, span, wall)


def first_difference(
    name: str, off: list[str] | list[tuple[object, ...]], on: list[str] | list[tuple[object, ...]]
) -> str | None:
    for index, (a, b) in enumerate(zip(off, on, strict=False)):
        if a != b:
            return f"{name}, item {index + 1}: {a!r} (off) != {b!r} (on)"
    if len(off) != len(on):
        longer, which = (off, "off") if len(off) > len(on) else (on, "on")
        return f"{name}: {len(off)} (off) != {len(on)} (on) entries; first extra ({which}): {longer[min(len(off), len(on))]!r}"
    return None


def compare(program: Program, off: Observed, on: Observed) -> Comparison:
    """Everything observable of the two runs, and the requests' counts."""
    result = Comparison(program, off, on)
    found: list[str | None] = []
    if off.returncode != on.returncode:
        found.append(f"exit code {off.returncode} (off) != {on.returncode} (on)")
    found.append(first_difference("exception", off.exceptions, on.exceptions))
    found.append(first_difference("stdout line", off.stdout.splitlines(), on.stdout.splitlines()))
    found.append(first_difference("stderr line", off.stderr, on.stderr))
    for name in sorted(set(off.files) | set(on.files)):
        a, b = off.files.get(name), on.files.get(name)
        if a is None or b is None:
            found.append(f"file {name} only in the {'on' if a is None else 'off'} run")
        elif a != b:
            found.append(
                first_difference(
                    f"file {name} line",
                    a.decode(errors="replace").splitlines(),
                    b.decode(errors="replace").splitlines(),
                )
                or f"file {name} bytes differ"
            )
    for name in sorted(set(off.tables) | set(on.tables)):
        found.append(first_difference(f"table {name} row", off.tables.get(name, []), on.tables.get(name, [])))
    missing = [k for k in off.requests if k not in on.requests]
    if missing:
        found.append(f"{len(missing)} request(s) of the sequential run never made, e.g. {describe_key(missing[0])}")
    result.differences = [d for d in found if d]
    result.repeated = {k: (off.requests.get(k, 0), n) for k, n in on.requests.items() if 0 < off.requests.get(k, 0) < n}
    result.wasted = sum(n for k, n in on.requests.items() if k not in off.requests)
    return result


def prepare(program: Program, api: Upstream, root: Path, state: Path) -> Path:
    """The program's folder copied into ``root/template`` with its config (the variant's, as
    ``sched_accel.toml``), and its setup commands run there."""
    template = root / "template"
    shutil.copytree(PROGRAMS_DIR / program.folder, template)
    config = template / "sched_accel.toml"
    config.write_bytes((template / program.config).read_bytes())
    for variant in template.glob("sched_accel.*.toml"):  # the other variants' configs
        variant.unlink()
    env = child_environment(api, state, False, None)
    for command in program.setup:
        done = subprocess.run(
            [sys.executable, *command], cwd=template, env=env, capture_output=True, text=True, timeout=TIMEOUT
        )
        if done.returncode:
            raise RuntimeError(f"{program.name}: setup {' '.join(command)} failed:\n{done.stderr}")
    return template


def measure(program: Program, api: Upstream, root: Path, redis_url: str | None = None) -> Comparison:
    """The program run sequentially, then accelerated (after a first accelerated run that
    records its requests, for a program whose config relies on ``items = "learned"``)."""
    root.mkdir(parents=True, exist_ok=True)
    state = root / "state"
    state.mkdir(mode=0o700)
    template = prepare(program, api, root, state)
    off = run_program(program, api, template, root / "off", state, on=False, redis_url=redis_url)
    if program.learned:  # in the folder of the measured run: the same config path, so the same app's state
        run_program(program, api, template, root / "on", state, on=True, redis_url=redis_url)
        shutil.rmtree(root / "on")
    on = run_program(program, api, template, root / "on", state, on=True, redis_url=redis_url)
    return compare(program, off, on)
