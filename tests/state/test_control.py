"""_control.py: the control files written by ``sched-accel on|off`` (the app's, the user's) and
``$SCHED_ACCEL_DISABLED_TARGETS``, read by running apps."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from sched_accel import ControlFileError
from sched_accel._state import (
    ALL,
    DISABLED_ENV,
    ControlFile,
    Controls,
    ControlState,
    _control,
    disabled_targets,
    unsafe,
)
from sched_accel._state._control import parse


@pytest.fixture
def control(tmp_path: Path) -> ControlFile:
    """A control file in a folder that does not exist yet."""
    return ControlFile(str(tmp_path / "state" / "control.json"))


def refused(lines: list[str]) -> list[str]:
    """The control_file_refused lines among the captured ones."""
    return [line for line in lines if line.startswith("sched_accel.control_file_refused")]


def test_missing_file_switches_nothing_off(control: ControlFile) -> None:
    """No control file: every target is on, and nothing is reported."""
    state = control.state()
    assert state.off == frozenset()
    assert state.problem is None
    assert not state.is_off("jobs:update")


def test_write_then_read_round_trip(control: ControlFile) -> None:
    """What write() records, state() reads back: the named targets are off, others on."""
    control.write(frozenset({"jobs:update", "jobs:other"}))
    state = control.state()
    assert state.off == {"jobs:update", "jobs:other"}
    assert state.is_off("jobs:update")
    assert not state.is_off("jobs:third")
    with open(control.path, encoding="utf-8") as file:
        assert json.load(file) == {"version": 1, "off": ["jobs:other", "jobs:update"]}


def test_star_switches_everything_off(control: ControlFile) -> None:
    """``*`` in the off list switches every target off."""
    control.write(frozenset({ALL}))
    state = control.state()
    assert state.is_off("jobs:update")
    assert state.is_off("anything:at_all")


def test_written_file_is_owner_only(control: ControlFile) -> None:
    """The file is written mode 0600 in a folder created 0700, with no temp file left behind."""
    old = os.umask(0o022)
    try:
        control.write(frozenset())
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(control.path).st_mode) == 0o600
    folder = os.path.dirname(control.path)
    assert stat.S_IMODE(os.stat(folder).st_mode) == 0o700
    assert os.listdir(folder) == ["control.json"]


def test_rewrite_replaces_the_file(control: ControlFile) -> None:
    """Writing again replaces the content (switching back on) and keeps the mode."""
    control.write(frozenset({ALL}))
    assert control.state().is_off("jobs:update")
    control.write(frozenset())
    assert not control.state().is_off("jobs:update")
    assert stat.S_IMODE(os.stat(control.path).st_mode) == 0o600


@pytest.mark.parametrize("mode", [0o620, 0o602, 0o666], ids=["group", "other", "everyone"])
def test_writable_by_others_is_refused(control: ControlFile, capture_events: list[str], mode: int) -> None:
    """A group- or other-writable file is refused: everything is off, and it is said once."""
    control.write(frozenset())
    os.chmod(control.path, mode)
    for _ in range(3):
        state = control.state()
        assert state.is_off("jobs:update")
        assert state.problem is not None and "writable by other users" in state.problem
    [line] = refused(capture_events)
    assert f"mode {mode:o}" in line
    assert "chmod 600" in line
    assert control.path in line


def test_refusal_is_logged_again_after_a_change(control: ControlFile, capture_events: list[str]) -> None:
    """A refusal is logged once per change of the file, not once per call, and lifts when fixed."""
    control.write(frozenset())
    os.chmod(control.path, 0o660)
    control.state()
    control.state()
    os.chmod(control.path, 0o662)
    control.state()
    control.state()
    assert len(refused(capture_events)) == 2
    os.chmod(control.path, 0o600)
    assert not control.state().is_off("jobs:update")
    assert len(refused(capture_events)) == 2


def test_write_refuses_an_unsafe_file(control: ControlFile) -> None:
    """write() will not overwrite a file others could write: it says to delete it."""
    control.write(frozenset())
    os.chmod(control.path, 0o666)
    with pytest.raises(ControlFileError, match="writable by other users.*delete it and try again"):
        control.write(frozenset({ALL}))


@pytest.mark.parametrize(
    "body",
    [
        "{not json",
        "",
        '["jobs:update"]',
        '{"version": 2, "off": []}',
        '{"off": ["*"]}',
        '{"version": 1, "off": "jobs:update"}',
        '{"version": 1, "off": [1, 2]}',
    ],
)
def test_malformed_file_is_refused(control: ControlFile, capture_events: list[str], body: str) -> None:
    """A file that is not our JSON switches everything off, said once."""
    os.makedirs(os.path.dirname(control.path))
    with open(control.path, "w", encoding="utf-8") as file:
        file.write(body)
    os.chmod(control.path, 0o600)
    assert control.state().is_off("jobs:update")
    assert control.state().is_off("jobs:update")
    [line] = refused(capture_events)
    assert "cannot be read" in line


def test_a_directory_is_refused(control: ControlFile, capture_events: list[str]) -> None:
    """A directory where the control file should be is not trusted."""
    os.makedirs(control.path)
    state = control.state()
    assert state.is_off("jobs:update")
    assert state.problem == "is not a regular file; delete it"
    assert len(refused(capture_events)) == 1


def test_unstattable_path_is_refused_once(tmp_path: Path, capture_events: list[str]) -> None:
    """A path that cannot even be stat'ed switches everything off, and is said once, not per call."""
    (tmp_path / "state").write_text("a file where the folder should be", encoding="utf-8")
    control = ControlFile(str(tmp_path / "state" / "control.json"))
    for _ in range(3):
        state = control.state()
        assert state.is_off("jobs:update")
        assert state.problem is not None and "cannot be checked" in state.problem
    assert len(refused(capture_events)) == 1


def test_read_is_cached_by_stat(control: ControlFile, monkeypatch: pytest.MonkeyPatch) -> None:
    """The file is parsed again only when its stat changes, not on every call."""
    parsed: list[str] = []

    def counting_parse(text: str) -> ControlState:
        parsed.append(text)
        return parse(text)

    monkeypatch.setattr(_control, "parse", counting_parse)
    control.write(frozenset({"jobs:update"}))
    first = control.state()
    assert control.state() is first
    assert control.state() is first
    assert len(parsed) == 1
    control.write(frozenset({"jobs:other", "jobs:third"}))
    second = control.state()
    assert second.off == {"jobs:other", "jobs:third"}
    assert control.state() is second
    assert len(parsed) == 2


def test_deleting_the_file_switches_back_on(control: ControlFile) -> None:
    """Removing the file is the same as `sched-accel on` for every target."""
    control.write(frozenset({ALL}))
    assert control.state().is_off("jobs:update")
    os.unlink(control.path)
    assert not control.state().is_off("jobs:update")


def fake_stat(mode: int, uid: int) -> os.stat_result:
    """A stat result with just a mode and an owner."""
    return os.stat_result((mode, 1, 1, 1, uid, 0, 10, 0, 0, 0))


def test_unsafe_trusts_an_owner_only_regular_file() -> None:
    """A regular file owned by this user and writable only by it is trusted."""
    assert unsafe(fake_stat(stat.S_IFREG | 0o644, os.getuid())) is None


def test_unsafe_refuses_a_file_owned_by_someone_else() -> None:
    """A file owned by another user is refused, naming both uids."""
    other = os.getuid() + 1
    problem = unsafe(fake_stat(stat.S_IFREG | 0o600, other))
    assert problem is not None
    assert f"owned by uid {other}" in problem
    assert f"uid {os.getuid()}" in problem


def test_unsafe_refuses_special_files() -> None:
    """A FIFO is not a regular file."""
    assert unsafe(fake_stat(stat.S_IFIFO | 0o600, os.getuid())) == "is not a regular file; delete it"
    assert unsafe(fake_stat(stat.S_IFLNK | 0o777, os.getuid())) == (
        "is a symbolic link, which is never followed; replace it with the file itself, or delete it"
    )


# -- the trust rule, applied to the control file ---------------------------------------------
def test_a_symlinked_control_file_is_refused_and_switches_everything_off(
    control: ControlFile, tmp_path: Path, capture_events: list[str]
) -> None:
    """A control file that is a symlink (even to a valid file of ours) is never followed: every target is off."""
    real = ControlFile(str(tmp_path / "real" / "control.json"))
    real.write(frozenset())
    os.makedirs(os.path.dirname(control.path), mode=0o700)
    os.symlink(real.path, control.path)
    state = control.state()
    assert state.is_off("jobs:update")
    assert state.problem is not None and "symbolic link" in state.problem
    [line] = refused(capture_events)
    assert "every target runs unaccelerated" in line and control.path in line


def test_a_dangling_symlink_is_refused_never_on(
    control: ControlFile, tmp_path: Path, capture_events: list[str]
) -> None:
    """A symlink to nothing is not "no control file": it is refused, every target is off."""
    os.makedirs(os.path.dirname(control.path), mode=0o700)
    os.symlink(str(tmp_path / "nowhere.json"), control.path)
    state = control.state()
    assert state.is_off("jobs:update")
    assert state.problem is not None and "symbolic link" in state.problem
    assert len(refused(capture_events)) == 1


def test_write_does_not_follow_or_replace_a_symlink(control: ControlFile, tmp_path: Path) -> None:
    """`sched-accel off` over a symlink refuses, and the file it points at is untouched."""
    target = tmp_path / "elsewhere.json"
    target.write_text("keep")
    os.makedirs(os.path.dirname(control.path), mode=0o700)
    os.symlink(str(target), control.path)
    with pytest.raises(ControlFileError, match="symbolic link.*delete it and try again"):
        control.write(frozenset({ALL}))
    assert target.read_text() == "keep"


@pytest.mark.parametrize("mode", [0o770, 0o707, 0o777], ids=["group", "other", "everyone"])
def test_a_folder_others_can_write_is_refused(control: ControlFile, capture_events: list[str], mode: int) -> None:
    """The file is fine but its folder is writable by others (who could delete `off`): every target is off."""
    control.write(frozenset())
    folder = os.path.dirname(control.path)
    os.chmod(folder, mode)
    state = control.state()
    assert state.is_off("jobs:update")
    [line] = refused(capture_events)
    assert f"{folder}, a folder writable by other users (mode {mode:o})" in line
    assert f"chmod go-w {folder}" in line


def test_a_deleted_off_in_a_folder_others_can_write_stays_off(control: ControlFile) -> None:
    """Were the folder writable by others, deleting `off` would undo it: so a missing file there is refused too."""
    control.write(frozenset({ALL}))
    os.chmod(os.path.dirname(control.path), 0o777)
    os.unlink(control.path)
    assert control.state().is_off("jobs:update")
    os.chmod(os.path.dirname(control.path), 0o700)
    assert not control.state().is_off("jobs:update")  # deleted by its owner: back on


def test_write_refuses_a_folder_others_can_write(control: ControlFile) -> None:
    """The control file is not written into a folder others could change; the error says what to do."""
    os.makedirs(os.path.dirname(control.path), mode=0o700)
    os.chmod(os.path.dirname(control.path), 0o777)
    with pytest.raises(ControlFileError, match="writable by other users.*chmod go-w"):
        control.write(frozenset({ALL}))


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a file away needs root")
def test_a_control_file_of_another_user_is_refused(control: ControlFile, capture_events: list[str]) -> None:
    """A control file owned by someone else (uid 65534) is refused, every target off."""
    control.write(frozenset())
    os.chown(control.path, 65534, 65534)
    state = control.state()
    assert state.is_off("jobs:update")
    [line] = refused(capture_events)
    assert "owned by uid 65534" in line


def test_a_path_with_a_nul_is_refused_not_raised(capture_events: list[str]) -> None:
    """A control_file path no system call accepts switches everything off instead of raising."""
    state = ControlFile("/tmp/a\x00b/control.json").state()
    assert state.is_off("jobs:update") and state.problem is not None and "cannot be checked" in state.problem
    assert len(refused(capture_events)) == 1


# -- Controls: the app's file, the user's, the environment ------------------------------------
@pytest.fixture
def controls(tmp_path: Path) -> Controls:
    """The controls of one app: its own file in apps/, the user-wide one beside apps/."""
    state = tmp_path / "state"
    return Controls(ControlFile(str(state / "apps" / "a" / "control.json")), ControlFile(str(state / "control.json")))


def test_either_control_file_switches_a_target_off_and_says_which(controls: Controls) -> None:
    """The app's file and the user-wide one both count; switched_by names the file that did it."""
    assert controls.app is not None
    assert not controls.state().is_off("jobs:update")
    controls.app.write(frozenset({"jobs:update"}))
    state = controls.state()
    assert state.is_off("jobs:update") and not state.is_off("jobs:other")
    assert state.switched_by("jobs:update") == controls.app.path
    controls.user.write(frozenset({ALL}))
    state = controls.state()
    assert state.is_off("jobs:other") and state.switched_by("jobs:other") == controls.user.path
    assert state.switched_by("jobs:update") == controls.app.path  # the app's own file first
    controls.app.write(frozenset())
    controls.user.write(frozenset())
    assert controls.state().off == frozenset()


def test_another_apps_file_switches_nothing_here(tmp_path: Path, controls: Controls) -> None:
    """`sched-accel off` for app B writes B's file: app A's controls do not read it."""
    other = ControlFile(str(tmp_path / "state" / "apps" / "b" / "control.json"))
    other.write(frozenset({ALL}))
    assert not controls.state().is_off("jobs:update")


def test_the_combined_state_is_the_same_object_until_a_file_changes(controls: Controls) -> None:
    """Unchanged files give the same state object (the switch re-arms a breaker only on a change)."""
    first = controls.state()
    assert controls.state() is first
    controls.user.write(frozenset())
    second = controls.state()
    assert second is not first and controls.state() is second


def test_a_refused_file_of_either_switches_everything_off(controls: Controls, capture_events: list[str]) -> None:
    """A refused app file switches every target off, and the problem names it."""
    assert controls.app is not None
    controls.app.write(frozenset())
    os.chmod(controls.app.path, 0o666)
    state = controls.state()
    assert state.is_off("jobs:update") and state.problem is not None and controls.app.path in state.problem
    assert state.switched_by("jobs:update") == "a refused control file"
    assert len(refused(capture_events)) == 1


@pytest.mark.parametrize(
    ("raw", "names"),
    [
        ("", set()),
        ("a.b:job", {"a.b:job"}),
        ("a.b:job,c.d:other", {"a.b:job", "c.d:other"}),
        (" a.b:job , ,c.d:other ,", {"a.b:job", "c.d:other"}),
        ("*", {ALL}),
    ],
)
def test_disabled_targets_are_comma_separated_names(raw: str, names: set[str]) -> None:
    """$SCHED_ACCEL_DISABLED_TARGETS: names separated by commas, spaces and empty entries ignored."""
    assert disabled_targets(raw) == names


def test_the_environment_switches_targets_off_whatever_the_files_say(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Controls.open reads $SCHED_ACCEL_DISABLED_TARGETS once: those targets are off, by it; a `sched-accel on` does not undo it."""
    monkeypatch.setenv(DISABLED_ENV, "jobs:update")
    controls = Controls.open(str(tmp_path / "a.json"), str(tmp_path / "control.json"))
    monkeypatch.delenv(DISABLED_ENV)
    assert controls.app is not None
    controls.app.write(frozenset())
    state = controls.state()
    assert state.is_off("jobs:update") and not state.is_off("jobs:other")
    assert state.switched_by("jobs:update") == DISABLED_ENV


def test_a_running_apps_controls_say_each_target_off_once(controls: Controls, capture_events: list[str]) -> None:
    """announce: one switched_off line per target, the first time it is found off; again after a change."""
    assert controls.app is not None
    announcing = Controls(controls.app, controls.user, frozenset({"jobs:env"}), announce=True)
    controls.app.write(frozenset({"jobs:update"}))
    for _ in range(3):
        state = announcing.state()
        assert state.is_off("jobs:update") and state.is_off("jobs:env") and not state.is_off("jobs:other")
    said = [line for line in capture_events if line.startswith("sched_accel.switched_off ")]
    assert len(said) == 2
    assert any("target=jobs:env" in line and f"by={DISABLED_ENV}" in line for line in said)
    assert any("target=jobs:update" in line and controls.app.path in line for line in said)
    controls.user.write(frozenset())  # a change: said again at the next call
    announcing.state().is_off("jobs:update")
    assert len([line for line in capture_events if line.startswith("sched_accel.switched_off ")]) == 3
    controls.state().is_off("jobs:update")  # status's controls never say it
    assert len([line for line in capture_events if line.startswith("sched_accel.switched_off ")]) == 3
