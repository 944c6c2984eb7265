"""What the coordination tests share: a backend made from a picklable spec, and real child
processes that each run one job against the same store and print what they saw."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from sched_accel._coord import Backend, MachineBackend, ProcessBackend, RedisBackend

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Spec:
    """How to make a backend of one kind: a state folder (machine), a URL and prefix (redis)."""

    kind: str
    where: str = ""
    prefix: str = "sched_accel:"

    def build(self, **options: Any) -> Backend:
        if self.kind == "process":
            return ProcessBackend(**options)
        if self.kind == "machine":
            return MachineBackend(self.where, **options)
        return RedisBackend(self.where, prefix=self.prefix, **options)


def _wait_until(start_at: float) -> None:
    while (left := start_at - time.time()) > 0:
        time.sleep(min(left, 0.01))


def _job(backend: Backend, job: str, args: dict[str, Any]) -> Any:
    """One child's work; its result is printed as JSON."""
    if job == "claim_ticks":  # claim each tick in turn, as fast as the store allows
        _wait_until(args["start_at"])
        return {tick: backend.claim(args["key"], tick, ttl=30) for tick in range(args["ticks"])}
    if job == "admit_for":  # take every slot the rate gives, for `seconds`; when each was had
        _wait_until(args["start_at"])
        admitted: list[float] = []
        end = time.monotonic() + args["seconds"]
        while (now := time.monotonic()) < end:
            wait = backend.admit(args["host"], per_second=args["per_second"], burst=args["burst"])
            if wait:
                time.sleep(min(wait, max(0.0, end - now)))
            else:
                admitted.append(time.monotonic())
        return admitted
    if job == "pause":
        backend.pause(args["host"], args["seconds"])
        return None
    if job == "paused_for":
        return backend.paused_for(args["host"])
    if job == "lease":
        return backend.lease(args["host"], limit=args["limit"], ttl=args["ttl"])
    if job == "heartbeat":
        backend.heartbeat(args["id"], ttl=args["ttl"])
        return backend.live_processes()
    raise AssertionError(job)


def child_main() -> None:
    """In a child: ``argv[1]`` is ``{"spec": ..., "job": ..., "args": ...}``."""
    order = json.loads(sys.argv[1])
    backend = Spec(**order["spec"]).build()
    try:
        print(json.dumps(_job(backend, order["job"], order["args"])))
    finally:
        backend.close()


def start_child(spec: Spec, job: str, **args: Any) -> subprocess.Popen[str]:
    """A real python process running ``job`` against ``spec``'s store."""
    order = json.dumps({"spec": asdict(spec), "job": job, "args": args})
    code = "from tests.coord.helpers import child_main; child_main()"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    return subprocess.Popen(
        [sys.executable, "-c", code, order],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def results(children: list[subprocess.Popen[str]], timeout: float = 60) -> list[Any]:
    """What each child printed, in order; a child that failed fails the test with its stderr."""
    found = []
    for child in children:
        out, err = child.communicate(timeout=timeout)
        assert child.returncode == 0, err
        found.append(json.loads(out.strip().splitlines()[-1]))
    return found


def run_child(spec: Spec, job: str, **args: Any) -> Any:
    """Run one child to its end; what it printed."""
    return results([start_child(spec, job, **args)])[0]


def start_at(delay: float = 1.0) -> float:
    """A wall time for children to start at together, once each has imported everything."""
    return time.time() + delay
