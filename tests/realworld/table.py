"""Run the whole corpus, flag off then on, and print the README's table.

    .venv/bin/python -m tests.realworld.table            # every program
    .venv/bin/python -m tests.realworld.table url_health rss_dedupe

Seconds are the loop's span at the upstream (first request's arrival to last answer), so that
interpreter start-up and a Celery worker's boot do not hide the loop; the process's wall time
is in the notes. The speedup is off / on. Below the table, one note per program that is not
identical, sent a request more often, or was not accelerated, with the first difference and
our own line saying why.
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .corpus import PROGRAMS, Program, by_name
from .harness import Comparison, measure
from .upstream import Upstream

HEADER = (
    "shape",
    "program modelled on",
    "level used",
    "prefetched",
    "identical",
    "requests off/on",
    "seconds off/on",
    "speedup",
)


@contextmanager
def redis_url() -> Iterator[str | None]:
    """A real redis-server for the Celery program, or None when none can be had here."""
    from tests.coord.redis_server import RedisServer, find_redis_server

    binary = find_redis_server()
    if binary is None:
        yield None
        return
    server = RedisServer(binary)
    server.start()
    try:
        yield server.url
    finally:
        server.stop()


def row(c: Comparison) -> tuple[str, ...]:
    identical = "yes" if c.identical else "no"
    if c.repeated:
        identical += f", {sum(b - a for a, b in c.repeated.values())} request(s) sent more often"
    requests = f"{c.off.total_requests} / {c.on.total_requests}"
    if c.wasted:
        requests += f" ({c.wasted} wasted)"
    return (
        f"`{c.program.name}`: {c.program.shape}",
        c.program.modelled_on,
        c.level,
        c.prefetched,
        identical,
        requests,
        f"{c.off.span:.2f} / {c.on.span:.2f}",
        f"{c.speedup:.2f}x",
    )


def render(comparisons: list[Comparison]) -> str:
    lines = ["| " + " | ".join(HEADER) + " |", "|" + " --- |" * len(HEADER)]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row(c)) + " |" for c in comparisons]
    notes = [c for c in comparisons if not c.identical or c.repeated or c.why_not or not c.runs]
    if notes:
        lines += ["", "Notes:"]
        for c in notes:
            lines.append(f"- {c.summary()} (wall {c.off.wall:.2f} s -> {c.on.wall:.2f} s)")
    identical = sum(c.identical and c.no_request_repeated for c in comparisons)
    faster = sum(c.identical and c.no_request_repeated and c.speedup >= 1.5 for c in comparisons)
    lines += [
        "",
        f"{identical} of {len(comparisons)} identical with no request sent more often; "
        f"{faster} of them at least 1.5x faster.",
    ]
    return "\n".join(lines)


def run(programs: list[Program]) -> list[Comparison]:
    comparisons = []
    with Upstream() as api, redis_url() as redis, tempfile.TemporaryDirectory(prefix="realworld-") as tmp:
        for program in programs:
            if program.needs_redis and redis is None:
                print(f"skipped {program.name}: no redis-server here", file=sys.stderr)
                continue
            started = time.monotonic()
            comparisons.append(measure(program, api, Path(tmp) / program.name, redis))
            print(f"{program.name}: {time.monotonic() - started:.1f} s", file=sys.stderr)
    return comparisons


def main(argv: list[str]) -> int:
    programs = [by_name(name) for name in argv] if argv else list(PROGRAMS)
    started = time.monotonic()
    comparisons = run(programs)
    print(render(comparisons))
    print(f"\ncorpus run in {time.monotonic() - started:.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
