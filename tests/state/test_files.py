"""_files.py: the one writer (atomic, 0600, folders 0700 whatever the umask, trusted folders only)."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from sched_accel._state import Refused, write_private
from sched_accel._state._files import create_private, make_folders


@pytest.fixture
def umask_000() -> Iterator[None]:
    """The process umask is 000 during the test (restored after)."""
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.usefixtures("umask_000")
def test_folders_are_created_0700_under_umask_000(tmp_path: Path) -> None:
    """Every folder made on the way (not only the last one, as os.makedirs does) is 0700, and the file 0600."""
    path = tmp_path / "home" / ".local" / "state" / "sched_accel" / "control.json"
    write_private(str(path), "{}")
    for folder in (tmp_path / "home", tmp_path / "home" / ".local", path.parent.parent, path.parent):
        assert mode(folder) == 0o700, folder
    assert mode(path) == 0o600
    assert os.listdir(path.parent) == ["control.json"]  # no temp file left


def test_folders_are_0700_under_a_umask_that_takes_the_owner_s_rights(tmp_path: Path) -> None:
    """Under umask 277 a folder made 0700 would be 0500: it is chmod-ed back, and writable."""
    old = os.umask(0o277)
    try:
        make_folders(str(tmp_path / "a" / "b"))
    finally:
        os.umask(old)
    assert mode(tmp_path / "a") == mode(tmp_path / "a" / "b") == 0o700


def test_existing_folders_are_left_as_they_are(tmp_path: Path) -> None:
    """Folders that exist are not ours to chmod: only the missing ones are made."""
    (tmp_path / "kept").mkdir(mode=0o755)
    (tmp_path / "kept").chmod(0o755)
    make_folders(str(tmp_path / "kept" / "new"))
    assert mode(tmp_path / "kept") == 0o755
    assert mode(tmp_path / "kept" / "new") == 0o700


def test_nothing_is_written_into_a_folder_others_can_write(tmp_path: Path) -> None:
    """write_private refuses (an OSError) rather than write where others could swap the file."""
    folder = tmp_path / "open"
    folder.mkdir()
    folder.chmod(0o777)
    with pytest.raises(Refused, match="writable by other users"):
        write_private(str(folder / "a.json"), "{}")
    assert os.listdir(folder) == []
    folder.chmod(0o700)


def test_write_replaces_a_symlink_never_its_target(tmp_path: Path) -> None:
    """os.replace puts the new file where the symlink was; what it pointed at is untouched."""
    target = tmp_path / "target.txt"
    target.write_text("keep")
    (tmp_path / "state").mkdir(mode=0o700)
    link = tmp_path / "state" / "a.json"
    link.symlink_to(target)
    write_private(str(link), "new")
    assert not link.is_symlink() and link.read_text() == "new"
    assert target.read_text() == "keep"


def test_create_private_never_overwrites(tmp_path: Path) -> None:
    """The first creation wins; a second one leaves the content and no temp file."""
    path = tmp_path / "state" / "secret"
    assert create_private(str(path), b"first")
    assert not create_private(str(path), b"second")
    assert path.read_bytes() == b"first"
    assert mode(path) == 0o600
    assert os.listdir(path.parent) == ["secret"]


def test_a_home_that_does_not_exist_is_never_created(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """HOME names a missing folder (a service user's, a container's): nothing is made there,
    the write fails saying why (the caller says it once and goes on); an existing HOME gets
    its ``.local/state`` as the XDG rules say."""
    monkeypatch.delenv("SCHED_ACCEL_CONTROL")
    monkeypatch.delenv("XDG_STATE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "nohome"))
    with pytest.raises(FileNotFoundError, match="nohome does not exist, and sched_accel never creates it"):
        write_private(str(tmp_path / "nohome" / ".local" / "state" / "sched_accel" / "control.json"), "{}")
    assert not (tmp_path / "nohome").exists()
    (tmp_path / "nohome").mkdir()
    write_private(str(tmp_path / "nohome" / ".local" / "state" / "sched_accel" / "control.json"), "{}")


def test_nothing_above_a_named_state_folder_is_created(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """SCHED_ACCEL_CONTROL=/a/b/control.json: the state folder b may be made, never a."""
    monkeypatch.setenv("SCHED_ACCEL_CONTROL", str(tmp_path / "a" / "b" / "control.json"))
    with pytest.raises(FileNotFoundError):
        make_folders(str(tmp_path / "a" / "b" / "apps" / "x"))
    assert not (tmp_path / "a").exists()
    (tmp_path / "a").mkdir()
    make_folders(str(tmp_path / "a" / "b" / "apps" / "x"))
    assert mode(tmp_path / "a" / "b") == 0o700
    monkeypatch.delenv("SCHED_ACCEL_CONTROL")
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "x" / "state"))
    with pytest.raises(FileNotFoundError):
        make_folders(str(tmp_path / "x" / "state" / "sched_accel"))
    (tmp_path / "x").mkdir()
    make_folders(str(tmp_path / "x" / "state" / "sched_accel"))  # XDG_STATE_HOME itself may be made
