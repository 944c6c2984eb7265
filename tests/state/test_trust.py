"""_trust.py: the one rule for reading state on disk (no symlinks, own regular files, own folders)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from sched_accel._state import Refused, read_trusted
from sched_accel._state._trust import check_folders

AS_ROOT = pytest.mark.skipif(os.geteuid() != 0, reason="giving a file away needs root")
NOBODY = 65534


@pytest.fixture
def state(tmp_path: Path) -> Iterator[Path]:
    """An owner-only state folder (whatever tmp_path's parents are, HOME is above it)."""
    folder = tmp_path / "state"
    folder.mkdir(mode=0o700)
    yield folder
    for path in (tmp_path, *tmp_path.rglob("*")):  # let pytest clean up what a test locked
        if path.is_dir() and not path.is_symlink():
            path.chmod(0o700)


def own_file(path: Path, body: str = "{}") -> Path:
    """A file only its owner can write."""
    path.write_text(body)
    path.chmod(0o600)
    return path


def why(path: Path) -> str:
    """The reason read_trusted refuses ``path`` (failing when it does not)."""
    with pytest.raises(Refused) as refused:
        read_trusted(str(path))
    assert refused.value.path == str(path)
    return str(refused.value)


def test_an_own_file_in_an_own_folder_is_read(state: Path) -> None:
    """The ordinary case: a 0600 file of ours in a 0700 folder of ours is read, a 0644 one too."""
    assert read_trusted(str(own_file(state / "a.json", "hi"))) == b"hi"
    (state / "a.json").chmod(0o644)
    assert read_trusted(str(state / "a.json")) == b"hi"


def test_a_missing_file_in_trusted_folders_is_none(state: Path) -> None:
    """No file, folders fine: None (the caller's "nothing recorded"), missing folders too."""
    assert read_trusted(str(state / "none.json")) is None
    assert read_trusted(str(state / "not" / "made" / "none.json")) is None


def test_a_symlink_is_refused_even_to_an_own_file(state: Path) -> None:
    """O_NOFOLLOW: a symlink is never followed, whatever it points at."""
    real = own_file(state / "real.json")
    (state / "link.json").symlink_to(real)
    assert "is a symbolic link, which is never followed" in why(state / "link.json")


def test_a_dangling_symlink_is_refused_not_missing(state: Path) -> None:
    """A symlink to nothing is refused, never taken for a missing file."""
    (state / "link.json").symlink_to(state / "nowhere.json")
    assert "symbolic link" in why(state / "link.json")


def test_special_files_are_refused_without_blocking(state: Path) -> None:
    """A FIFO (opening it would block) and a folder are not regular files."""
    os.mkfifo(state / "fifo.json", 0o600)
    (state / "dir.json").mkdir(mode=0o700)
    assert "is not a regular file; delete it" in why(state / "fifo.json")
    assert "is not a regular file" in why(state / "dir.json")


@pytest.mark.parametrize("mode", [0o620, 0o602, 0o666])
def test_a_file_others_can_write_is_refused(state: Path, mode: int) -> None:
    """Group- or other-writable: refused, with the mode and the chmod to run."""
    path = own_file(state / "a.json")
    path.chmod(mode)
    assert f"is writable by other users (mode {mode:o}); chmod 600 it" in why(path)


@AS_ROOT
def test_a_file_of_another_user_is_refused(state: Path) -> None:
    """A file owned by uid 65534 is refused, naming both uids."""
    path = own_file(state / "a.json")
    os.chown(path, NOBODY, NOBODY)
    assert f"is owned by uid {NOBODY}, not by this process's user (uid 0)" in why(path)


@pytest.mark.parametrize("mode", [0o770, 0o707, 0o1777])
def test_the_file_s_folder_must_be_writable_by_its_owner_only(state: Path, mode: int) -> None:
    """The file's own folder may not be writable by others, not even with the sticky bit."""
    path = own_file(state / "a.json")
    state.chmod(mode)
    text = why(path)
    assert f"is under {state}, a folder writable by other users (mode {mode:o}); chmod go-w {state}" in text


def test_a_folder_above_others_can_write_is_refused(state: Path) -> None:
    """A folder higher up, writable by others, lets them swap the whole state folder: refused."""
    path = own_file(state / "a.json")
    state.parent.chmod(0o777)
    assert f"is under {state.parent}, a folder writable by other users" in why(path)


def test_a_sticky_folder_above_is_accepted(state: Path) -> None:
    """Above the file's folder, a sticky world-writable one (as /tmp) is fine: others cannot rename what is ours."""
    path = own_file(state / "a.json")
    state.parent.chmod(0o1777)
    assert read_trusted(str(path)) == b"{}"


def test_a_missing_file_is_judged_by_its_folders(state: Path) -> None:
    """Nothing to open, but others could create or delete it there: refused all the same."""
    state.chmod(0o777)
    assert "a folder writable by other users" in why(state / "none.json")
    assert "a folder writable by other users" in why(state / "not" / "made" / "none.json")


def test_folders_above_home_are_not_checked(state: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The walk stops at $HOME (checked itself): what is above it, like /home, is not the user's to fix."""
    home = state.parent / "home"
    inside = home / "state"
    inside.mkdir(parents=True, mode=0o700)
    home.chmod(0o700)
    path = own_file(inside / "a.json")
    monkeypatch.setenv("HOME", str(home))
    state.parent.chmod(0o777)  # above home: not checked
    assert read_trusted(str(path)) == b"{}"
    home.chmod(0o777)  # home itself: checked
    assert f"is under {home}, a folder writable by other users" in why(path)


def test_a_symlinked_folder_is_judged_where_it_leads(state: Path, tmp_path: Path) -> None:
    """A state folder reached through a symlinked folder: the folders it resolves to are checked too."""
    shared = tmp_path / "shared"
    (shared / "real").mkdir(parents=True, mode=0o700)
    own_file(shared / "real" / "a.json")
    (state / "via").symlink_to(shared / "real", target_is_directory=True)
    assert read_trusted(str(state / "via" / "a.json")) == b"{}"
    shared.chmod(0o777)
    assert f"is under {shared}, a folder writable by other users" in why(state / "via" / "a.json")


@AS_ROOT
def test_a_folder_of_another_user_is_refused(state: Path) -> None:
    """The file's folder must be the user's own; a folder above may be the user's or root's, nobody else's."""
    path = own_file(state / "a.json")
    os.chown(state, NOBODY, NOBODY)
    text = why(path)
    assert f"is under {state}, a folder owned by uid {NOBODY}, not by uid 0" in text
    assert "a folder of your own" in text
    os.chown(state, 0, 0)
    os.chown(state.parent, NOBODY, NOBODY)
    assert f"a folder owned by uid {NOBODY}, not by uid 0 or root" in why(path)


def test_a_file_where_a_folder_should_be_cannot_be_checked(state: Path) -> None:
    """A regular file in the middle of the path: refused, never silently "missing"."""
    own_file(state / "blocker")
    with pytest.raises(Refused, match="cannot be checked"):
        check_folders(str(state / "blocker" / "a.json"))


def test_a_file_over_the_limit_is_refused(state: Path) -> None:
    """A state file larger than the caller's limit is not read into memory."""
    path = own_file(state / "big.json", "x" * 100)
    assert read_trusted(str(path), limit=100) == b"x" * 100
    with pytest.raises(Refused, match="larger than 99 bytes"):
        read_trusted(str(path), limit=99)
