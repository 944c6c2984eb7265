"""Host rates shared by the app's processes (``_shared``): one budget across real processes on
the machine backend, a shared pause, and the backend down (never a crash, never unlimited)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from sched_accel._coord import MachineBackend, ProcessBackend
from sched_accel._exceptions import CoordinationUnavailable
from sched_accel._policy import HostLimit, HostLimiter, run_sync
from sched_accel._policy._shared import SharedRates

ROOT = Path(__file__).resolve().parents[2]


def limiter(shared: SharedRates, per_second: float = 10.0, burst: int = 2) -> HostLimiter:
    found = HostLimiter("api.test", HostLimit(concurrency=None, per_second=per_second, burst=burst))
    found.shared = shared
    return found


def test_two_limiters_draw_on_one_budget() -> None:
    """Two processes' limiters (here: two in one, on one backend) share 10/s with a burst of 2."""
    backend = ProcessBackend()
    one, two = (limiter(SharedRates(lambda: backend, "process", "app")) for _ in range(2))
    assert one.shares and two.shares
    started = time.monotonic()
    for _ in range(3):
        run_sync(one.token(1))
        run_sync(two.token(1))
    assert time.monotonic() - started >= (6 - 2) / 10 * 0.9


def test_a_pause_taken_by_one_holds_the_other() -> None:
    backend = ProcessBackend()
    one, two = (limiter(SharedRates(lambda: backend, "process", "app")) for _ in range(2))
    assert one.pause_for(0.3)  # without a refused request: always taken
    started = time.monotonic()
    run_sync(two.token(1))
    assert time.monotonic() - started >= 0.25


def test_the_backend_down_paces_alone_at_a_share_and_says_so(capture_events: list[str]) -> None:
    def down() -> ProcessBackend:
        raise CoordinationUnavailable("redis at redis://***@127.0.0.1:1/0: connection refused")

    shared = SharedRates(down, "redis at redis://***@127.0.0.1:1/0", "app")
    shared.live = 4  # four processes were seen alive
    found = limiter(shared, per_second=20.0, burst=1)
    started = time.monotonic()
    for _ in range(3):
        run_sync(found.token(1))
    assert time.monotonic() - started >= 2 / 5 * 0.9  # 20/s shared by 4: 5/s here
    lines = [line for line in capture_events if line.startswith("sched_accel.coordination_down ")]
    assert len(lines) == 1 and "127.0.0.1:1" in lines[0] and "connection refused" in lines[0]


def test_hosts_without_a_rate_are_not_shared() -> None:
    found = HostLimiter("api.test", HostLimit(concurrency=4, per_second=None))
    found.shared = SharedRates(ProcessBackend, "process", "app")
    assert not found.shares


CHILD = textwrap.dedent(
    """
    import json, sys, time
    from sched_accel._coord import MachineBackend
    from sched_accel._policy import HostLimit, HostLimiter, run_sync
    from sched_accel._policy._shared import SharedRates

    state, start = sys.argv[1], float(sys.argv[2])
    shared = SharedRates(lambda: MachineBackend(state), "machine", "app")
    limiter = HostLimiter("api.test", HostLimit(concurrency=None, per_second=20.0, burst=2))
    limiter.shared = shared
    while time.time() < start:
        time.sleep(0.005)
    times = []
    for _ in range(10):
        run_sync(limiter.token(1))
        times.append(time.time())
    print(json.dumps(times))
    """
)


def test_processes_on_the_machine_backend_share_the_rate(tmp_path: Path) -> None:
    """Three real processes, 10 requests each, against one 20/s budget with a burst of 2:
    together no faster than the rate (where each alone would be)."""
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    MachineBackend(str(state)).close()
    start = time.time() + 1.0
    children = [
        subprocess.Popen([sys.executable, "-c", CHILD, str(state), str(start)], stdout=subprocess.PIPE, text=True,
                         cwd=ROOT)
        for _ in range(3)
    ]
    times = sorted(t for child in children for t in json.loads(child.communicate(timeout=30)[0]))
    assert all(child.returncode == 0 for child in children)
    assert len(times) == 30
    assert times[-1] - times[0] >= (30 - 2) / 20 * 0.9


@pytest.mark.parametrize("kind", ["process", "machine"])
def test_which_settings_share(tmp_path: Path, kind: str) -> None:
    from sched_accel._coordination import CoordinationSettings
    from sched_accel._settings import Settings
    from sched_accel._single import shared_rates

    settings = Settings(path=None, control_file=str(tmp_path / "control.json"),
                        coordination=CoordinationSettings(backend=kind))  # type: ignore[arg-type]
    assert (shared_rates(settings) is None) == (kind == "process")
