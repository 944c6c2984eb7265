"""The state folder full (ENOSPC) or turned read-only in the middle of a run (issue 23, item 6):
the app's results are the plain loop's, before, during and after, and each thing that could
not be saved is said once.

The state folder is a real filesystem of its own, a 64 KiB tmpfs mounted for the test (as root;
skipped where mounting is not permitted), filled to the last page or remounted read-only while
the loop is half-way through its items. The loop runs in this process, patched by
``sched_accel.install()``, against a real upstream on 127.0.0.1 (``tests/faultserver.py``);
its per-item calls are learned (``items = "learned"``, the default), so each run writes its
run file and its learned calls."""

from __future__ import annotations

import errno
import importlib
import json
import re
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import sched_accel

from .conftest import App
from .faultserver import FaultServer, answer

pytestmark = pytest.mark.slow

JOBS = """
    import httpx

    def fetch_all(base, keys):
        with httpx.Client(base_url=base, timeout=30) as http:
            return [http.get(f"/item/{key}").json() for key in keys]
"""
CONFIG = """
    [[targets]]
    loop = "disk_jobs:fetch_all"
    concurrency = 4
"""
KEYS = [f"k{i:02d}" for i in range(24)]
#: What is said when state cannot be written (``_state``): each at most once.
NOT_SAVED = ("runs_not_saved", "learned_not_saved", "state_refused")


def _mount(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["mount", *args], capture_output=True, text=True, timeout=30, check=False)


@pytest.fixture
def small_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A 64 KiB tmpfs (mode 0700, ours) as the state folder: ``$SCHED_ACCEL_CONTROL`` in it."""
    folder = tmp_path / "state"
    folder.mkdir(mode=0o700)
    done = _mount("-t", "tmpfs", "-o", "size=64k,mode=0700", "tmpfs", str(folder))
    if done.returncode != 0:
        pytest.skip(f"a tmpfs cannot be mounted here (`mount -t tmpfs` needs root): {done.stderr.strip()}")
    monkeypatch.setenv("SCHED_ACCEL_CONTROL", str(folder / "control.json"))
    try:
        yield folder
    finally:
        sched_accel.reset()  # let go of what it holds open in the folder
        while subprocess.run(["mountpoint", "-q", str(folder)], timeout=30, check=False).returncode == 0:
            subprocess.run(["umount", "-l", str(folder)], capture_output=True, timeout=30, check=True)


def fill(folder: Path) -> None:
    """Take every free page of the filesystem: ENOSPC for any file that needs one more."""
    with open(folder / "filler", "wb", buffering=0) as file:
        try:
            while True:
                file.write(b"\0" * 4096)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC, exc


def read_only(folder: Path) -> None:
    """Make the folder read-only from now on (EROFS for every file opened to write). Linux will
    not remount the tmpfs itself read-only while a file on it is open for writing (the machine
    backend's store files are), so a read-only bind mount of it is put over it: every open from
    now on goes through that; the store files already open stay as they were."""
    for args in (("--bind", str(folder), str(folder)), ("-o", "remount,bind,ro", str(folder))):
        done = _mount(*args)
        assert done.returncode == 0, done.stderr


FAULTS: dict[str, Callable[[Path], None]] = {"full": fill, "read-only": read_only}


def when_half_served(server: FaultServer, act: Callable[[], None], done: list[int]) -> threading.Thread:
    """A thread that does ``act`` once the upstream has answered half of a run's requests, and
    puts in ``done`` how many it had answered when ``act`` was over."""

    def watch() -> None:
        deadline = time.monotonic() + 30
        while sum(server.ok.values()) < len(KEYS) // 2 and time.monotonic() < deadline:
            time.sleep(0.001)
        act()
        done.append(sum(server.ok.values()))

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def runs_file(folder: Path) -> dict[str, Any]:
    """The app's last saved run (its runs file), as ``sched-accel status`` reads it."""
    [path] = folder.glob("apps/*/runs/*.json")
    return json.loads(path.read_text())  # type: ignore[no-any-return]


def run_line(lines: list[str]) -> dict[str, str]:
    """The fields of the last ``sched_accel.run`` line."""
    line = [line for line in lines if line.startswith("sched_accel.run ")][-1]
    return dict(re.findall(r"(\w+)=(\S+)", line.split(" - ", 1)[0]))


@pytest.mark.parametrize("fault", list(FAULTS))
def test_the_state_folder_full_or_read_only_mid_run_changes_no_result(
    app: App, monkeypatch: pytest.MonkeyPatch, capture_events: list[str], small_state: Path, fault: str
) -> None:
    """A run saves its run and learned calls; the next fills the state folder (or turns it
    read-only) half-way through its items; two more run under the fault. Each returns the plain
    loop's results, the later ones still prefetched (the learned calls kept in memory); what
    could not be saved is said once, and what was saved before is still whole."""
    app.write("disk_jobs.py", JOBS)
    app.config(CONFIG)
    jobs: Any = importlib.import_module("disk_jobs")
    with FaultServer(latency=0.03) as server:
        plain = jobs.fetch_all(server.url, KEYS)
        assert plain == [answer(key) for key in KEYS]
        monkeypatch.setenv("ENABLE_SCHEDULER_OPTIMIZATION", "true")
        assert sched_accel.install() is True
        assert jobs.fetch_all(server.url, KEYS) == plain  # records the calls
        assert jobs.fetch_all(server.url, KEYS) == plain  # prefetches them
        healthy = run_line(capture_events)
        saved = runs_file(small_state)
        assert list(small_state.glob("apps/*/learned/*.json"))
        server.reset_counts()
        at: list[int] = []
        watcher = when_half_served(server, lambda: FAULTS[fault](small_state), at)
        during = jobs.fetch_all(server.url, KEYS)
        watcher.join(5)
        after = [jobs.fetch_all(server.url, KEYS) for _ in range(2)]
    assert at and len(KEYS) // 2 <= at[0] < len(KEYS)  # the fault came mid-run, and the run went on
    assert during == plain and after == [plain, plain]
    assert run_line(capture_events)["prefetched"] == healthy["prefetched"]  # from the calls kept in memory
    said = {name: [line for line in capture_events if line.startswith(f"sched_accel.{name} ")] for name in NOT_SAVED}
    print(f"\n{fault}: " + ", ".join(f"{name} x{len(lines)}" for name, lines in said.items()))
    assert len(said["runs_not_saved"]) == len(said["learned_not_saved"]) == 1 and not said["state_refused"]
    errno_said = "[Errno 28] No space left on device" if fault == "full" else "[Errno 30] Read-only file system"
    assert errno_said in said["runs_not_saved"][0] and errno_said in said["learned_not_saved"][0]
    assert not [
        line for line in capture_events if line.startswith(("sched_accel.internal_error", "sched_accel.fallback"))
    ]
    assert runs_file(small_state) == saved  # the last run saved before the fault, whole
    [learned] = small_state.glob("apps/*/learned/*.json")
    assert len(json.loads(learned.read_text())["calls"]) == len(KEYS)  # whole too
    assert not list(small_state.glob("apps/*/*/.*"))  # no temporary file left behind
