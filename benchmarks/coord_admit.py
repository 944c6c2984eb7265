"""What one admission costs on each coordination backend (issue 13): µs per request and round
trips to a server, from one thread, from 4 processes at once, and from an asyncio task.

Every admission is admitted (1e6/s, burst 1e6), so each one reads and writes the host's
GCRA state: the cost of the decision itself, not of waiting. ``sqlite-wal`` is the design
the machine backend did not take (the same GCRA in one ``BEGIN IMMEDIATE`` transaction of
a WAL database), measured beside it. The redis-server is the tests' (``tests/coord``), on
127.0.0.1, so a round trip is a loopback one: add the network's to it.

    .venv/bin/python benchmarks/coord_admit.py [--n 20000] [--procs 4]
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import multiprocessing
import os
import platform
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sched_accel._coord import Backend, MachineBackend, ProcessBackend, RedisBackend  # noqa: E402 - after sys.path
from sched_accel._coord._base import gcra  # noqa: E402 - after sys.path
from tests.coord.redis_server import HOW_TO_GET, RedisServer, find_redis_server  # noqa: E402 - after sys.path

RATE, BURST = 1e6, 10**6


class SqliteWal:
    """The machine backend's rejected design: GCRA state in SQLite (WAL, synchronous=NORMAL)."""

    kind = "sqlite-wal"

    def __init__(self, folder: str) -> None:
        self.db = sqlite3.connect(os.path.join(folder, "coord.db"), isolation_level=None, timeout=5)
        self.db.execute("pragma journal_mode=wal")
        self.db.execute("pragma synchronous=normal")
        self.db.execute("create table if not exists gcra (host text primary key, tat real not null)")

    def admit(self, host: str, *, per_second: float, burst: int) -> float:
        self.db.execute("begin immediate")
        try:
            row = self.db.execute("select tat from gcra where host = ?", (host,)).fetchone()
            now = time.monotonic()
            wait, tat = gcra(row[0] if row else now, now, per_second, burst)
            if not wait:
                self.db.execute(
                    "insert into gcra values (?, ?) on conflict (host) do update set tat = excluded.tat", (host, tat)
                )
            self.db.execute("commit")
        except BaseException:
            self.db.execute("rollback")
            raise
        return wait

    def close(self) -> None:
        self.db.close()


def build(kind: str, where: str) -> Any:
    """A backend (or the sqlite contender) of ``kind``; ``where`` is its folder or URL."""
    if kind == "process":
        return ProcessBackend()
    if kind == "machine":
        return MachineBackend(where)
    if kind == "sqlite-wal":
        return SqliteWal(where)
    return RedisBackend(where)


def timed(backend: Any, n: int) -> list[float]:
    """Each of ``n`` admissions' own time, seconds."""
    took = []
    admit, clock = backend.admit, time.perf_counter
    for _ in range(n):
        started = clock()
        wait = admit("api.example.com", per_second=RATE, burst=BURST)
        took.append(clock() - started)
        assert wait == 0.0
    return took


def _worker(kind: str, where: str, n: int, start_at: float, out: Any) -> None:
    backend = build(kind, where)
    backend.admit("warm", per_second=RATE, burst=BURST)  # connect, load the script, open the file
    while time.time() < start_at:
        time.sleep(0.001)
    started = time.perf_counter()
    took = timed(backend, n)
    out.put((time.perf_counter() - started, took))
    backend.close()


def in_processes(kind: str, where: str, n: int, procs: int) -> tuple[list[float], float]:
    """Each process's admissions' times, and the admissions a second of all together."""
    spawn = multiprocessing.get_context("spawn")
    out = spawn.Queue()
    start_at = time.time() + 1.5
    workers = [spawn.Process(target=_worker, args=(kind, where, n, start_at, out)) for _ in range(procs)]
    for worker in workers:
        worker.start()
    found = [out.get(timeout=300) for _ in workers]
    for worker in workers:
        worker.join()
    walls = [wall for wall, _ in found]
    return [t for _, took in found for t in took], procs * n / max(walls)


def round_trips(backend: Any, n: int) -> float:
    """Requests sent to the server per admission (redis-py's sends, counted)."""
    if not isinstance(backend, RedisBackend):
        return 0.0
    from redis.connection import AbstractConnection

    sent = 0
    send = AbstractConnection.send_packed_command

    def counted(self: AbstractConnection, command: Any, check_health: bool = True) -> None:
        nonlocal sent
        sent += 1
        send(self, command, check_health)  # type: ignore[no-untyped-call]

    AbstractConnection.send_packed_command = counted  # type: ignore[method-assign]
    try:
        timed(backend, n)
    finally:
        AbstractConnection.send_packed_command = send  # type: ignore[method-assign]
    return sent / n


def row(name: str, took: list[float], trips: str, extra: str = "") -> str:
    took = sorted(took)
    mean, p50 = statistics.fmean(took) * 1e6, took[len(took) // 2] * 1e6
    p99, worst = took[int(len(took) * 0.99)] * 1e6, took[-1] * 1e6
    return f"{name:<36} {mean:8.1f} {p50:8.1f} {p99:8.1f} {worst:10.0f}  {trips:>11}  {extra}"


async def _async_rows(kinds: dict[str, str], n: int, trips: dict[str, str]) -> list[str]:
    """From one asyncio task: a backend's sync admit through a worker thread, and redis-py's
    own asyncio client running the same script (the API the backends do not use)."""
    rows = []
    for kind, where in kinds.items():
        backend: Backend = build(kind, where)
        await anyio.to_thread.run_sync(functools.partial(backend.admit, "warm", per_second=RATE, burst=BURST))
        admit = functools.partial(backend.admit, "api.example.com", per_second=RATE, burst=BURST)
        took = []
        for _ in range(n):
            started = time.perf_counter()
            await anyio.to_thread.run_sync(admit)
            took.append(time.perf_counter() - started)
        rows.append(row(f"{kind}, asyncio via to_thread", took, trips[kind]))
        backend.close()
    if "redis" in kinds:
        import redis.asyncio

        from sched_accel._coord import _scripts

        client = redis.asyncio.Redis.from_url(kinds["redis"], socket_timeout=0.5)
        script = client.register_script(_scripts.ADMIT)
        keys, args = ["sched_accel:{api.example.com}:tat", "sched_accel:{api.example.com}:pause"], [1.0, BURST]
        await script(keys=keys, args=args)
        took = []
        for _ in range(n):
            started = time.perf_counter()
            await script(keys=keys, args=args)
            took.append(time.perf_counter() - started)
        rows.append(row("redis, redis.asyncio (not used)", took, "1"))
        await client.aclose()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20000, help="admissions per thread or process")
    parser.add_argument("--procs", type=int, default=4)
    options = parser.parse_args()
    folder = tempfile.mkdtemp(prefix="coord-admit-")
    os.chmod(folder, 0o700)
    kinds = {"process": "", "machine": folder, "sqlite-wal": folder}
    binary = find_redis_server()
    server = RedisServer(binary, os.path.join(folder, "redis")) if binary else None
    if server is not None:
        os.makedirs(server.folder)
        server.start()
        kinds["redis"] = server.url
    print(
        f"machine: nproc={os.cpu_count()}, {platform.system()} {platform.release()}, "
        f"CPython {platform.python_version()}; redis-server: {binary or HOW_TO_GET}"
    )
    print(f"{options.n} admissions per thread or process, every one admitted; times in µs")
    print(f"{'backend, how':<36} {'mean':>8} {'p50':>8} {'p99':>8} {'max':>10}  {'round trips':>11}")
    trips: dict[str, str] = {}
    try:
        for kind, where in kinds.items():
            backend = build(kind, where)
            backend.admit("warm", per_second=RATE, burst=BURST)
            trips[kind] = f"{round_trips(backend, 1000):g}"
            print(row(f"{kind}, 1 thread", timed(backend, options.n), trips[kind]), flush=True)
            backend.close()
        for kind, where in kinds.items():
            if kind == "process":
                continue  # nothing shared: 4 processes are 4 single threads
            took, rate = in_processes(kind, where, options.n, options.procs)
            print(
                row(f"{kind}, {options.procs} processes", took, trips[kind], f"{rate:,.0f} admissions/s together"),
                flush=True,
            )
        for line in asyncio.run(
            _async_rows({k: w for k, w in kinds.items() if k != "sqlite-wal"}, options.n // 4, trips)
        ):
            print(line, flush=True)
    finally:
        if server is not None:
            server.stop()


if __name__ == "__main__":
    main()
