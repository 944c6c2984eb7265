"""Faults of a shared backend under real processes of one app (issue 23, item 6): redis-server
killed and started again mid-run, and a process killed with SIGKILL while it holds a host's
shared places. Each app process is a real python patched through the start-up hook; the
upstream is a real server on 127.0.0.1 (``tests/faultserver.py``) that counts what it saw."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter

import pytest

from ..conftest import ENV_KEYS, App
from ..faultserver import FaultServer, value_of
from .redis_server import RedisServer

pytestmark = pytest.mark.slow

JOBS = """
import httpx

def fetch(http, key):
    return http.get(f"/item/{key}").json()["value"]

def fetch_all(base, keys):
    with httpx.Client(base_url=base, timeout=60) as http:
        return [fetch(http, key) for key in keys]
"""
MAIN = """
import json, sys, time
import jobs

start_at = float(sys.argv[2])
time.sleep(max(0.0, start_at - time.time()))
keys = [f"{sys.argv[3]}-{i}" for i in range(int(sys.argv[4]))]
print(json.dumps(jobs.fetch_all(sys.argv[1], keys)), flush=True)
"""
CONFIG = """
[coordination]
{coordination}

[hosts."127.0.0.1"]
{limit}

[[targets]]
loop = "jobs:fetch_all"
fetch = "jobs:fetch"
items = "keys"
concurrency = 6
"""


def write_app(app: App, coordination: str, limit: str) -> None:
    """The app's loop, its main script and its config (written before any process starts)."""
    app.write("sched_accel.toml", CONFIG.format(coordination=coordination, limit=limit))
    app.write("jobs.py", JOBS)
    app.write("main.py", MAIN)


def start_app(app: App, server: FaultServer, name: str, items: int, start_at: float) -> subprocess.Popen[str]:
    """One real process of the app (the flag on, patched by the start-up hook) fetching
    ``items`` keys named ``<name>-<i>`` from ``server``, from wall time ``start_at`` on."""
    env = {k: v for k, v in os.environ.items() if k not in ENV_KEYS}
    env.update(
        SCHED_ACCEL_CONFIG=str(app.root / "sched_accel.toml"),
        ENABLE_SCHEDULER_OPTIMIZATION="true",
        SCHED_ACCEL_CONTROL=str(app.root / "state" / "control.json"),
        SCHED_ACCEL_REDIS_KEY_SECRET="the app's own secret",
    )
    return subprocess.Popen(
        [sys.executable, "main.py", server.url, str(start_at), name, str(items)],
        cwd=app.root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finished(child: subprocess.Popen[str], timeout: float = 60) -> tuple[list[int], str]:
    """What a child printed (its results) and logged; it must have exited 0, patched."""
    out, err = child.communicate(timeout=timeout)
    assert child.returncode == 0, err
    assert "sched_accel.patched target=jobs:fetch_all" in err, err
    return json.loads(out.strip().splitlines()[-1]), err


def said(err: str, name: str) -> list[str]:
    """The lines of event ``name`` in a child's stderr."""
    return [line for line in err.splitlines() if f"sched_accel.{name} " in line]


def run_fields(err: str) -> dict[str, str]:
    """The fields of the child's one ``sched_accel.run`` line."""
    [line] = said(err, "run")
    return dict(re.findall(r"(\w+)=(\S+)", line.split("sched_accel.run ", 1)[1].split(" - ", 1)[0]))


def per_second(arrived: list[float]) -> list[int]:
    """The requests that arrived in each whole second from the first one (the last, partial, second left out)."""
    first = arrived[0]
    counts = Counter(int(t - first) for t in arrived)
    return [counts[second] for second in range(int(arrived[-1] - first))]


# -- redis-server killed and started again on its port mid-run --------------------------------
RATE = 20  # the host's declared rate, and the upstream's own (429 above it, burst 2)
PROCESSES = 4
ITEMS = 50  # each: 4 x 50 = 200 requests, 10 s at 20/s
#: Seconds after the processes' start that redis-server is killed (each has counted the others
#: by then: a process is counted within 2 s of its first request, within 0.25 s when they start
#: together), and until a new one answers on its port: just under the 5 s after which each
#: process asks a failed backend again (``_shared.RETRY_AFTER``), so all find it at their first
#: ask. (A new server answering in the few ms between two processes' asks leaves the later
#: ones pacing alone 5 s more beside those back on Redis: see the README's "Faults tried".)
DOWN_AT, DOWN_FOR = 3.5, 4.8


def stamp(line: str) -> float:
    """The wall time of a child's loguru line (``2026-12-07 15:05:50.698 | ...``; loguru 0.8 adds
    the zone, ``2026-12-07 15:05:50.698 +00:00 | ...``: the children's clock is the same one)."""
    day, clock = line.split(" | ", 1)[0].split()[:2]
    return time.mktime(time.strptime(f"{day} {clock[:8]}", "%Y-%m-%d %H:%M:%S")) + float(clock[8:])


def test_redis_killed_and_started_again_mid_run_loses_nothing_and_holds_the_rate(
    app: App, own_redis: RedisServer
) -> None:
    """4 processes share the host's declared 20/s through Redis; 3.5 s after they start
    redis-server is killed (SIGKILL: its data gone) and a new one answers on its port 4.8 s
    later. Every item has the plain loop's answer; each process says ``coordination_down``
    once and ``coordination_back`` once; the upstream saw the declared rate within 10 % over
    the run and over the outage, and the 429s it sent are the ones the run lines count."""
    write_app(app, f'url = "{own_redis.url}"', f"per_second = {RATE}\nburst = 2")
    with FaultServer(per_second=RATE, burst=2, latency=0.02) as server:
        start_at = time.time() + 2.5
        children = [start_app(app, server, f"p{n}", ITEMS, start_at) for n in range(PROCESSES)]
        time.sleep(max(0.0, start_at + DOWN_AT - time.time()))
        assert own_redis.process is not None
        own_redis.process.kill()  # a crash, an OOM kill: no goodbye to its clients, its data gone
        own_redis.process.wait(5)
        killed = time.monotonic()
        time.sleep(max(0.0, killed + DOWN_FOR - time.monotonic()))
        own_redis.start()  # the same port, empty
        back = time.monotonic()
        done = [finished(child) for child in children]
    for n, (results, _) in enumerate(done):
        assert results == [value_of(f"p{n}-{i}") for i in range(ITEMS)]
    alone = []
    for _, err in done:
        downs, ups = said(err, "coordination_down"), said(err, "coordination_back")
        # Once each at most. Under a loaded machine a process may end its items before the new
        # server answers (no `back`), or make none while the old one is gone (no `down`).
        assert len(downs) <= 1 and len(ups) <= len(downs), err
        for down in downs:
            assert "live=4" in down, down  # it had counted the 4 (it paced at 20/4 a second alone)
        if downs and ups:
            alone.append(stamp(ups[0]) - stamp(downs[0]))
    assert len(alone) >= PROCESSES // 2, "most processes saw Redis go and come back"
    arrived = sorted(server.arrived)
    seconds = per_second(arrived)
    overall = (len(arrived) - 1) / (arrived[-1] - arrived[0])
    outage = sum(1 for t in arrived if killed <= t < back) / (back - killed)
    fields = [run_fields(err) for _, err in done]
    print(
        f"\nredis down {back - killed:.2f} s, each process alone {min(alone):.2f}-{max(alone):.2f} s; the upstream "
        f"saw {overall:.2f}/s over the run, {outage:.2f}/s while Redis was down, {min(seconds)}-{max(seconds)} "
        f"in each whole second; 429s {server.status[429]} (run lines {[int(f['http_429']) for f in fields]})"
    )
    assert sum(int(f["http_429"]) for f in fields) == server.status[429]
    assert sum(int(f["requests"]) for f in fields) == len(arrived)
    assert all(f["lost"] == "0" and f["failed"] == "0" for f in fields)
    assert all(alone_for < 5.5 for alone_for in alone)
    assert abs(overall - RATE) <= 0.1 * RATE
    assert abs(outage - RATE) <= 0.1 * RATE
    # A whole second may hold one more request per process: each starts pacing alone with at
    # most one token in hand (at a random point of its interval, so that they do not send in step).
    assert max(seconds) <= RATE + PROCESSES


# -- a process killed with SIGKILL while it holds a host's shared places -------------------------
PLACES = 2  # the host's declared concurrency, shared by every process of the app
HELD = 20.0  # seconds the upstream takes to answer the killed process's requests


@pytest.mark.parametrize("backend", ["machine", "redis"])
def test_places_held_by_a_killed_process_come_back_within_the_lease(
    app: App, backend: str, request: pytest.FixtureRequest
) -> None:
    """A process holds both of the host's 2 shared places (its requests hang), two others wait
    for one; it is killed with SIGKILL, so nothing gives its places back and nothing renews
    them. The others get them within the lease (10 s, ``_shared.LEASE_TTL``), not before the
    kill, and every item of theirs has the plain loop's answer."""
    from sched_accel._policy._shared import LEASE_TTL, RENEW

    if backend == "redis":
        server_: RedisServer = request.getfixturevalue("own_redis")
        coordination = f'url = "{server_.url}"'
    else:
        coordination = 'backend = "machine"'
    write_app(app, coordination, f"concurrency = {PLACES}")
    with FaultServer(latency=0.05) as server:
        server.latencies.update({f"holder-{i}": HELD for i in range(4)})
        start_at = time.time() + 1.5
        holder = start_app(app, server, "holder", 4, start_at)
        others = [start_app(app, server, name, 4, start_at + 0.5) for name in ("b", "c")]
        try:
            deadline = time.monotonic() + 15
            while sum(server.requests[f"holder-{i}"] for i in range(4)) < PLACES:
                assert time.monotonic() < deadline, "the holder never took the host's places"
                time.sleep(0.01)
            time.sleep(max(0.0, start_at + 2.5 - time.time()))  # the others have been waiting for a place
            early = {key[0] for _, key in server.log if key[0] in "bc"}
            holder.send_signal(signal.SIGKILL)  # nothing of ours runs: no release, no renewal
            killed = time.monotonic()
            holder.communicate(timeout=5)
            done = [finished(child) for child in others]
        finally:  # a failed assert must not leave the app's processes running into the next test
            for child in (holder, *others):
                if child.poll() is None:
                    child.kill()
                    child.communicate()
    for name, (results, err) in zip("bc", done, strict=True):
        assert results == [value_of(f"{name}-{i}") for i in range(4)]
        # Before the kill, a place is had only from the backend's share: none while the holder
        # holds both, unless the backend did not answer this process in time (a loaded machine's
        # Redis): then it paces on a local share of the places, as designed, and says so.
        assert name not in early or said(err, "coordination_down"), err
    if early:
        pytest.skip(f"the backend did not answer {sorted(early)} in time before the kill (said coordination_down)")
    theirs = [t for (_, key), t in zip(server.log, server.arrived, strict=False) if key[0] in "bc"]
    first, both = theirs[0] - killed, theirs[PLACES - 1] - killed
    print(
        f"\n{backend}: the killed process's places came back {first:.2f} s after the kill (both {both:.2f} s; "
        f"lease {LEASE_TTL:g} s, renewed every {RENEW:g} s)"
    )
    assert LEASE_TTL - RENEW - 0.5 <= first <= both <= LEASE_TTL + 0.5
    assert server.peak <= PLACES + PLACES  # the killed one's requests still hang at the upstream
