"""_store.py: locked record files: bounded lock waits, fork safety, errors as ours."""

from __future__ import annotations

import fcntl
import multiprocessing
import os
import subprocess
import sys
import threading
import time
from multiprocessing.connection import Connection
from pathlib import Path

import pytest

from sched_accel._coord import MachineBackend, _store
from sched_accel._coord._store import Store, record_name
from sched_accel._exceptions import CoordinationUnavailable

HOLD = """
import fcntl, os, sys
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o600)
fcntl.flock(fd, fcntl.LOCK_EX)
print("locked", flush=True)
sys.stdin.read()
"""


def test_a_lock_held_elsewhere_is_unavailable_quickly(state_dir: Path) -> None:
    """Another process holding a record's lock (stopped in a debugger, say): after lock_timeout
    our error, not a hang; once it lets go, admission works again."""
    backend = MachineBackend(str(state_dir), lock_timeout=0.2)
    assert backend.admit("api", per_second=100, burst=1) == 0.0
    path = os.path.join(backend.folder, record_name("host", "api"))
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, path], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        started = time.monotonic()
        with pytest.raises(CoordinationUnavailable, match="locked by another process for more than 0.2 s"):
            backend.admit("api", per_second=100, burst=1)
        assert 0.19 < time.monotonic() - started < 1.0
    finally:
        holder.communicate("", timeout=10)
    time.sleep(0.02)
    assert backend.admit("api", per_second=100, burst=1) == 0.0
    backend.close()


def test_a_record_busy_in_this_process_is_unavailable_quickly(state_dir: Path) -> None:
    """A thread of ours stuck holding a record: the others give up after lock_timeout too."""
    store = Store(str(state_dir / "store"), lock_timeout=0.1)
    held, done = threading.Event(), threading.Event()

    def hold() -> None:
        with store.record("r"):
            held.set()
            done.wait(5)

    thread = threading.Thread(target=hold)
    thread.start()
    held.wait(5)
    try:
        with pytest.raises(CoordinationUnavailable, match="busy in this process"), store.record("r"):
            pass  # pragma: no cover - never entered
    finally:
        done.set()
        thread.join()
    store.close()


def _in_child(backend: MachineBackend, answer: Connection) -> None:
    try:
        answer.send(("admitted", backend.admit("api", per_second=0.001, burst=1)))
    except CoordinationUnavailable as exc:
        answer.send(("unavailable", str(exc)))


def test_a_forked_child_locks_on_its_own(state_dir: Path) -> None:
    """A child forked while its parent holds a record's lock (a gunicorn worker forked from a
    master that used the store) waits for it: it does not share the parent's lock."""
    backend = MachineBackend(str(state_dir), lock_timeout=0.3)
    backend.admit("warm", per_second=1, burst=1)  # the parent has files open
    fork = multiprocessing.get_context("fork")
    mine, theirs = fork.Pipe()
    with backend._store.record("host", "api"):
        child = fork.Process(target=_in_child, args=(backend, theirs))
        child.start()
        child.join(10)
    kind, said = mine.recv()
    assert kind == "unavailable" and "locked by another process" in said
    child = fork.Process(target=_in_child, args=(backend, theirs))  # nothing held now: it is admitted,
    child.start()
    child.join(10)
    assert mine.recv() == ("admitted", 0.0)
    assert backend.admit("api", per_second=0.001, burst=1) > 100  # and its slot is the parent's too
    backend.close()


def test_store_errors_are_ours(tmp_path: Path, state_dir: Path) -> None:
    """A folder that cannot be made, an OSError mid-change, an oversized record, a closed
    store: each is CoordinationUnavailable, with the path."""
    (tmp_path / "file").write_text("")
    with pytest.raises(CoordinationUnavailable, match="cannot be made"):
        Store(str(tmp_path / "file" / "store"))
    store = Store(str(state_dir / "store"))
    with pytest.raises(CoordinationUnavailable, match="Bad file descriptor"), store.record("r"):
        os.pwrite(-1, b"x", 0)
    with store.record("big") as record:
        record.write(b"x" * (4 * 1024 * 1024 + 1))
    with pytest.raises(CoordinationUnavailable, match="larger than"), store.record("big") as record:
        record.read()
    with store.record("r") as record:
        record.read()
        record.write(b"longer")
    with store.record("r") as record:
        assert record.read() == b"longer"
        record.write(b"short")
        assert record.read() == b"short" and record.read(2) == b"sh"
    held = store.record("r")
    store.close()
    with pytest.raises(CoordinationUnavailable, match="closed"):
        store.record("r")
    with pytest.raises(CoordinationUnavailable, match="closed"), held:
        pass  # pragma: no cover - never entered


def test_record_names_are_hashes() -> None:
    """Any host or key names one file of its kind, inside the folder."""
    assert record_name("host", "a/../b") != record_name("host", "a/../c")
    assert record_name("host", "x") != record_name("lease", "x")
    name = record_name("claim", "\udc80 odd")
    assert name.startswith("claim-") and "/" not in name and len(name) == len("claim-") + 32


def test_odd_failures_are_ours_too(state_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A record that is a folder, a lock call that fails: CoordinationUnavailable with the path."""
    store = Store(str(state_dir / "store"))
    (state_dir / "store" / "folder").mkdir()
    with pytest.raises(CoordinationUnavailable, match="folder: cannot be opened"):
        store.record("folder")

    def failing(fd: int, operation: int) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(fcntl, "flock", failing)
    with pytest.raises(CoordinationUnavailable, match="cannot be locked .Input/output error"), store.record("r"):
        pass  # pragma: no cover - never entered
    store.close()


def test_after_a_fork_the_inherited_files_are_dropped(state_dir: Path) -> None:
    """What the fork hook does in the child, called here: open files forgotten, a fresh lock."""
    store = Store(str(state_dir / "store"))
    with store.record("r") as record:
        record.write(b"kept")
    inherited = store.record("r")
    store._after_fork()
    assert store._records == {} and inherited.fd == -1
    with store.record("r") as record:
        assert record is not inherited and record.read() == b"kept"
    store.close()


def test_open_records_stay_bounded(state_dir: Path) -> None:
    """A store talking to 600 hosts keeps at most 256 files open; an evicted record, still
    held by a caller, reopens (under the trust rule) when used again, and its lock still excludes."""
    store = Store(str(state_dir / "store"))
    first = store.record("host", "host-0")
    with first as record:
        record.write(b"zero")
    for n in range(1, 600):
        with store.record("host", f"host-{n}"):
            pass
    assert len(store._records) <= 256 and first.fd == -1
    with first as record:
        assert record.read() == b"zero"
    again = store.record("host", "host-0")
    assert again is not first
    with first, pytest.raises(CoordinationUnavailable, match="locked by another process"):  # another description
        again.timeout = 0.05
        with again:
            pass  # pragma: no cover - never entered
    del first
    store.close()


def test_without_a_boot_id_the_boot_time_names_the_folder(monkeypatch: pytest.MonkeyPatch) -> None:
    """Where /proc has no boot id, the boot time (to ten seconds) stands for it."""

    def missing(*args: object, **kwargs: object) -> None:
        raise FileNotFoundError(2, "No such file")

    monkeypatch.setattr(_store, "open", missing, raising=False)
    assert _store.boot_id().startswith("boot-")
