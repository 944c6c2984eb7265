"""_machine.py: the machine backend's records, on a fake clock, and the trust rule for its store."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from sched_accel._coord import MachineBackend
from sched_accel._coord._machine import store_folder
from sched_accel._coord._store import boot_id, record_name
from sched_accel._exceptions import CoordinationUnavailable

from ..conftest import FakeClock

AS_ROOT = pytest.mark.skipif(os.geteuid() != 0, reason="giving a file away needs root")
NOBODY = 65534


def test_exact_waits_on_a_fake_clock(state_dir: Path, clock: FakeClock) -> None:
    """The same GCRA figures as in memory: 4/s burst 2, then 0.25 s, 0.15 s after 0.1 s."""
    backend = MachineBackend(str(state_dir), clock=clock)
    assert [backend.admit("api", per_second=4, burst=2) for _ in range(2)] == [0.0, 0.0]
    assert backend.admit("api", per_second=4, burst=2) == pytest.approx(0.25)
    clock.advance(0.1)
    assert backend.admit("api", per_second=4, burst=2) == pytest.approx(0.15)
    backend.learn_rate("api", 3)
    backend.pause("api", 1)
    assert backend.admit("api", per_second=4, burst=2) == pytest.approx(1.0)  # the pause, kept with the rate
    assert backend.learned_rate("api") == 3
    clock.advance(86_401)
    assert backend.learned_rate("api") is None
    backend.close()


def test_the_store_is_owner_only_and_per_boot(state_dir: Path) -> None:
    """Records live in <state>/coord/<boot id>/, folders 0700 and files 0600, named by a hash."""
    backend = MachineBackend(str(state_dir))
    backend.admit("../../etc/passwd", per_second=1, burst=1)
    backend.close()
    folder = Path(store_folder(str(state_dir)))
    assert folder == state_dir / "coord" / boot_id() and backend.folder == str(folder)
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700 and stat.S_IMODE(folder.parent.stat().st_mode) == 0o700
    record = folder / record_name("host", "../../etc/passwd")
    assert [p.name for p in folder.iterdir()] == [record.name]
    assert stat.S_IMODE(record.stat().st_mode) == 0o600


def test_a_group_writable_state_folder_is_refused(state_dir: Path, capture_events: list[str]) -> None:
    """Someone else could swap the records: refused, loudly, with what to do."""
    state_dir.chmod(0o770)
    with pytest.raises(CoordinationUnavailable, match=r"writable by other users.*chmod go-w"):
        MachineBackend(str(state_dir))
    assert any(line.startswith("sched_accel.state_refused") for line in capture_events)


def test_a_store_reached_through_a_symlink_into_an_open_folder_is_refused(tmp_path: Path, state_dir: Path) -> None:
    """The link lies in an own folder but leads to a world-writable one: judged where it leads."""
    open_folder = tmp_path / "open"
    open_folder.mkdir()
    open_folder.chmod(0o777)
    (state_dir / "coord").symlink_to(open_folder)
    with pytest.raises(CoordinationUnavailable, match="writable by other users"):
        MachineBackend(str(state_dir))


def test_a_record_that_is_a_symlink_is_refused(state_dir: Path) -> None:
    """O_NOFOLLOW: a record replaced by a link, even to a file of ours, is never followed."""
    folder = Path(store_folder(str(state_dir)))
    folder.mkdir(parents=True, mode=0o700)
    target = state_dir / "elsewhere"
    target.write_bytes(b"")
    (folder / record_name("host", "api")).symlink_to(target)
    backend = MachineBackend(str(state_dir))
    with pytest.raises(CoordinationUnavailable, match="symbolic link"):
        backend.admit("api", per_second=1, burst=1)
    assert backend.admit("other", per_second=1, burst=1) == 0.0
    backend.close()


def test_a_record_writable_by_others_is_refused(state_dir: Path) -> None:
    """A 0666 record (left by hand) is refused with what to do."""
    folder = Path(store_folder(str(state_dir)))
    folder.mkdir(parents=True, mode=0o700)
    record = folder / record_name("lease", "api")
    record.write_bytes(b"")
    record.chmod(0o666)
    backend = MachineBackend(str(state_dir))
    with pytest.raises(CoordinationUnavailable, match="chmod 600"):
        backend.lease("api", limit=1, ttl=1)
    backend.close()


@AS_ROOT
def test_a_record_of_another_user_is_refused(state_dir: Path) -> None:
    """A record owned by someone else is refused, whatever its mode."""
    folder = Path(store_folder(str(state_dir)))
    folder.mkdir(parents=True, mode=0o700)
    record = folder / record_name("claim", "job")
    record.write_bytes(b"")
    record.chmod(0o600)
    os.chown(record, NOBODY, NOBODY)
    backend = MachineBackend(str(state_dir))
    with pytest.raises(CoordinationUnavailable, match="owned by uid 65534"):
        backend.claim("job", 1, ttl=1)
    backend.close()


def test_a_torn_record_is_read_as_far_as_it_is_whole(state_dir: Path, clock: FakeClock) -> None:
    """A process killed mid-write leaves a torn tail: the whole slots count, the tail is dropped."""
    backend = MachineBackend(str(state_dir), clock=clock)
    assert backend.lease("api", limit=3, ttl=10) is not None
    record = Path(backend.folder) / record_name("lease", "api")
    record.write_bytes(record.read_bytes() + b"\x01\x02\x03")
    assert backend.lease("api", limit=2, ttl=10) is not None
    assert backend.lease("api", limit=2, ttl=10) is None
    (Path(backend.folder) / record_name("host", "api")).write_bytes(b"\x00" * 5)  # too short: a new host
    assert backend.admit("api", per_second=1, burst=1) == 0.0
    backend.close()


def test_a_lock_timeout_must_be_positive(state_dir: Path) -> None:
    """The lock wait bound is checked up front, by name."""
    with pytest.raises(ValueError, match="lock_timeout"):
        MachineBackend(str(state_dir), lock_timeout=0)


def test_records_far_ahead_are_bounded_as_on_redis(state_dir: Path, clock: FakeClock) -> None:
    """Only the owner can write the records (the trust rule); what they hold is still bounded as
    on Redis: a pause a day ahead cut to ``longest`` (and kept cut), an arrival time a day ahead
    cut to one interval, places and a claim ending far ahead not in force."""
    from sched_accel._coord._machine import _CLAIM, _HOST, _SLOT

    backend = MachineBackend(str(state_dir), clock=clock)
    folder = Path(backend.folder)
    assert backend.admit("api", per_second=4, burst=1) == 0.0  # the records exist
    host = folder / record_name("host", "api")
    host.write_bytes(_HOST.pack(0.0, clock.now + 86_400, 0.0, 0.0))
    assert backend.paused_for("api", longest=2) == pytest.approx(2)
    clock.advance(1)
    assert backend.admit("api", per_second=4, burst=1, longest=2) == pytest.approx(1)  # kept cut: 1 s left
    clock.advance(1)
    assert backend.admit("api", per_second=4, burst=1) == 0.0
    host.write_bytes(_HOST.pack(clock.now + 86_400, 0.0, 0.0, 0.0))
    assert backend.admit("api", per_second=4, burst=1) == pytest.approx(0.25)  # the arrival time: one interval
    clock.advance(0.25)
    assert backend.admit("api", per_second=4, burst=1) == 0.0
    forged = b"".join(_SLOT.pack(until, bytes(16)) for until in (float("inf"), clock.now + 86_400, float("nan")))
    (folder / record_name("lease", "api")).write_bytes(forged)
    assert backend.lease("api", limit=1, ttl=10) is not None
    (folder / record_name("claim", "job")).write_bytes(_CLAIM.pack(5, 2**53 - 1, clock.now + 86_400))
    assert backend.claim("job", 7, ttl=60) == 6  # ends a day ahead: not in force
    (folder / record_name("claim", "job")).write_bytes(_CLAIM.pack(6, 2**53 - 1, clock.now + 30))
    assert backend.claim("job", 8, ttl=60, latest=100) == 7  # a tick past the latest: not in force
    assert backend.claim("job", 8, ttl=60, latest=100) is None
    backend.close()
