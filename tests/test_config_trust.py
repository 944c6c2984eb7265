"""The config's trust rule, against real parts: two real users made for the test, real
interpreters started as one of them, world-writable and sticky folders, symlinks, a FIFO.

A config is read only when it is a regular file (never through a symlink, never waited on),
owned by the user who runs the app or by root, writable by nobody else, in folders only they
can change; in a root-owned sticky folder (``/tmp``) only the user's own file. Anything else
is refused in one line naming the file, its owner and mode and what to do, and the app runs
unpatched.
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import stat
import subprocess
import sys
import sysconfig
import tempfile
import textwrap
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from sched_accel import ConfigError, load_config

from .conftest import ENV_KEYS

#: Their child pythons must run as in production, without a tracer (see conftest).
pytestmark = pytest.mark.usefixtures("unmeasured_children")

FLAG = "ENABLE_SCHEDULER_OPTIMIZATION"
JOBS = "def update(tokens):\n    print('sequential', tokens)\n    return [t * 2 for t in tokens]\n"
ACCEL = "def update(tokens):\n    print('accelerated', tokens)\n    return [t * 2 for t in tokens]\n"
CONFIG = """
[[targets]]
loop = "jobs:update"
replacement = "accel:update"

[[targets]]
loop = "jobs2:update"
replacement = "accel:update"
"""
MAIN = "import jobs, jobs2\n\nprint(jobs.update([1]))\nprint(jobs2.update([2]))\n"
SEQUENTIAL = "sequential [1]\n[2]\nsequential [2]\n[4]\n"
ACCELERATED = "accelerated [1]\n[2]\naccelerated [2]\n[4]\n"
_EVENT = re.compile(r"\bsched_accel\.([a-z_]+)")


@dataclass(frozen=True, slots=True)
class User:
    """A real user of this machine, made for the test."""

    name: str
    uid: int
    gid: int


def _useradd(name: str) -> User:
    """``useradd`` (retried: other processes may hold the passwd lock for a moment)."""
    for attempt in range(20):
        done = subprocess.run(["useradd", "-M", "-N", "-s", "/usr/sbin/nologin", name], capture_output=True, text=True)
        if done.returncode == 0:
            entry = pwd.getpwnam(name)
            return User(name, entry.pw_uid, entry.pw_gid)
        if attempt == 19 or "lock" not in done.stderr:
            raise RuntimeError(f"useradd {name} failed: {done.stderr.strip()}")
        time.sleep(0.25)
    raise AssertionError("unreachable")


def _userdel(user: User) -> None:
    for _ in range(20):
        if subprocess.run(["userdel", user.name], capture_output=True).returncode in (0, 6):  # 6: no such user
            return
        time.sleep(0.25)


@pytest.fixture(scope="module")
def users() -> Iterator[tuple[User, User]]:
    """Two real users, A and B (neither root), removed after the module's tests."""
    if os.geteuid() != 0:
        pytest.skip("making users and giving files away needs root")
    if shutil.which("useradd") is None or shutil.which("userdel") is None:
        pytest.skip("no useradd/userdel on this machine to make a second user")
    tag = uuid.uuid4().hex[:8]
    made: list[User] = []
    try:
        made.append(_useradd(f"sa-a-{tag}"))
        made.append(_useradd(f"sa-b-{tag}"))
        yield made[0], made[1]
    finally:
        for user in made:
            _userdel(user)


@pytest.fixture(scope="module")
def shared_root() -> Iterator[Path]:
    """A root-owned 0755 folder in /tmp that other users can reach (pytest's tmp_path is 0700)."""
    root = Path(tempfile.mkdtemp(prefix="sched-accel-trust-", dir="/tmp"))
    root.chmod(0o755)
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def python_for_others(users: tuple[User, User], shared_root: Path) -> str:
    """A python that another user may run, with this venv's packages and start-up hook: this
    one, or a venv made from the system's python of the same version (pointing at ours)."""
    if _runs_as(sys.executable, users[1]):
        return sys.executable
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    base = shutil.which(version, path="/usr/local/bin:/usr/bin:/bin")
    if base is None:
        pytest.skip(f"this python ({sys.executable}) cannot be run by another user, and there is no system {version}")
    venv = shared_root / "venv"
    subprocess.run([base, "-m", "venv", "--without-pip", str(venv)], check=True, capture_output=True)
    where = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    purelib = Path(subprocess.check_output([str(venv / "bin" / "python"), "-c", where], text=True).strip())
    ours = sysconfig.get_paths()["purelib"]
    (purelib / "zz_sched_accel_tests.pth").write_text(f"import site; site.addsitedir({ours!r})\n")
    for path in (venv, *venv.rglob("*")):  # whatever the umask (a symlink's target is not ours to change)
        if not path.is_symlink():
            path.chmod(path.stat().st_mode | stat.S_IRGRP | stat.S_IROTH | (0o055 if path.is_dir() else 0))
    if not _runs_as(str(venv / "bin" / "python"), users[1]):
        pytest.skip(f"neither this python nor a venv of {base} can be run by another user")
    return str(venv / "bin" / "python")


def _runs_as(python: str, user: User) -> bool:
    """Whether ``user`` can run ``python`` and import sched_accel with it."""
    try:
        done = subprocess.run(
            [python, "-c", "import sched_accel"], user=user.uid, group=user.gid, capture_output=True, cwd="/"
        )
    except OSError:  # not even executable by that user
        return False
    return done.returncode == 0


def owned(path: Path, user: User | None, mode: int) -> Path:
    """``path`` given to ``user`` (None: root) with ``mode``."""
    os.chown(path, user.uid if user else 0, user.gid if user else 0, follow_symlinks=False)
    if not path.is_symlink():
        path.chmod(mode)
    return path


@dataclass
class Victim:
    """User B's app: its folder, home and python; runs as B, logs to stderr."""

    user: User
    root: Path
    python: str

    def run(
        self, *args: str, env: dict[str, str] | None = None, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        """Run the app's python as user B in the app folder, with our variables from ``env`` only."""
        full = {k: v for k, v in os.environ.items() if k not in ENV_KEYS}
        full.update(
            HOME=str(self.root.parent / "home"), SCHED_ACCEL_CONTROL=str(self.root.parent / "home" / "control.json")
        )
        full.update(env or {})
        return subprocess.run(
            [self.python, *args],
            cwd=self.root,
            env=full,
            capture_output=True,
            text=True,
            timeout=timeout,
            user=self.user.uid,
            group=self.user.gid,
            extra_groups=[],
        )


@pytest.fixture
def victim(users: tuple[User, User], shared_root: Path, python_for_others: str) -> Iterator[Victim]:
    """B's app (jobs, jobs2, accel and main.py, all B's, in B's 0755 folder), no config yet."""
    base = Path(tempfile.mkdtemp(dir=shared_root))
    base.chmod(0o755)
    b = users[1]
    owned(folder(base / "home"), b, 0o700)
    app = owned(folder(base / "app"), b, 0o755)
    for name, text in (("jobs.py", JOBS), ("jobs2.py", JOBS), ("accel.py", ACCEL), ("main.py", MAIN)):
        owned(_write(app / name, text), b, 0o644)
    yield Victim(b, app, python_for_others)
    shutil.rmtree(base, ignore_errors=True)


def _write(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text))
    return path


def folder(path: Path) -> Path:
    """A new folder (given away and chmod-ed by :func:`owned`)."""
    path.mkdir()
    return path


def events(stderr: str) -> list[str]:
    """The event name of each stderr line (a line that is not one of ours is kept whole)."""
    return [m.group(1) if (m := _EVENT.search(line)) else line for line in stderr.splitlines()]


def refused_once(out: subprocess.CompletedProcess[str]) -> str:
    """The one line an app that ran unpatched because its config was refused printed."""
    assert out.returncode == 0, out.stderr
    assert out.stdout == SEQUENTIAL, out.stderr
    assert events(out.stderr) == ["config_invalid"], out.stderr
    line = out.stderr.strip()
    assert "is not trusted as a config" in line or "not a regular file" in line, line
    assert line.endswith("; the app runs unpatched"), line
    return line


# -- who owns the file ---------------------------------------------------------------------------
@pytest.mark.slow
def test_a_root_owned_config_is_accepted_for_a_service_user(victim: Victim) -> None:
    """B's app with a config root keeps in a root-owned folder (as /etc/app): read, B's loops patched."""
    etc = owned(folder(victim.root.parent / "etc"), None, 0o755)
    config = owned(_write(etc / "sched_accel.toml", CONFIG), None, 0o644)
    out = victim.run("main.py", env={FLAG: "1", "SCHED_ACCEL_CONFIG": str(config)})
    assert out.returncode == 0, out.stderr
    assert out.stdout == ACCELERATED, out.stderr
    assert events(out.stderr) == ["patched", "active", "patched", "run", "run"], out.stderr


def test_a_config_of_another_user_is_refused_in_one_line(victim: Victim, users: tuple[User, User]) -> None:
    """A config user A owns, in B's own folder: refused once (two target modules), naming owner and mode."""
    a, b = users
    config = owned(_write(victim.root / "sched_accel.toml", CONFIG), a, 0o644)
    line = refused_once(victim.run("main.py", env={FLAG: "1"}))
    assert f"{config} (owner uid {a.uid} ({a.name}), mode 644) is not trusted as a config" in line
    assert f"it is owned by uid {a.uid}, not by this process's user (uid {b.uid}) or root" in line
    assert "chown it to yourself (or root), or point $SCHED_ACCEL_CONFIG at a config of your own" in line


def test_the_user_s_own_config_is_accepted(victim: Victim, users: tuple[User, User]) -> None:
    """The same config, B's own (0600): read and acted on."""
    owned(_write(victim.root / "sched_accel.toml", CONFIG), users[1], 0o600)
    out = victim.run("main.py", env={FLAG: "1"})
    assert out.stdout == ACCELERATED, out.stderr
    assert events(out.stderr) == ["patched", "active", "patched", "run", "run"], out.stderr


@pytest.mark.parametrize("mode", [0o666, 0o664, 0o646])
def test_a_config_others_can_write_is_refused(victim: Victim, users: tuple[User, User], mode: int) -> None:
    """B's own config that group or others may write: refused, with the mode and the chmod to run."""
    owned(_write(victim.root / "sched_accel.toml", CONFIG), users[1], mode)
    line = refused_once(victim.run("main.py", env={FLAG: "1"}))
    assert (
        f"mode {mode:o}) is not trusted as a config: it is writable by other users (mode {mode:o}); chmod go-w it"
        in line
    )


# -- symlinks ------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["sched_accel.toml", "pyproject.toml"])
def test_a_symlink_to_another_user_s_config_is_refused(victim: Victim, users: tuple[User, User], name: str) -> None:
    """A config found in the working folder that is a symlink to A's file is never followed: one line."""
    a = users[0]
    theirs = owned(folder(victim.root.parent / "theirs"), a, 0o755)
    text = CONFIG.replace("[[targets]]", "[[tool.sched_accel.targets]]") if name == "pyproject.toml" else CONFIG
    target = owned(_write(theirs / name, text), a, 0o644)
    link = victim.root / name
    link.symlink_to(target)
    owned(link, victim.user, 0o644)
    line = refused_once(victim.run("main.py", env={FLAG: "1"}))
    assert f"{link} (owner uid {victim.user.uid} ({victim.user.name}), mode 777) is not trusted as a config" in line
    assert "it is a symbolic link, which is never followed" in line


def test_a_symlinked_pyproject_without_our_table_is_no_config(victim: Victim, users: tuple[User, User]) -> None:
    """A symlinked pyproject.toml that never mentions tool.sched_accel is not a config: no config
    found, said in the one no_config line, and nothing read as one."""
    target = owned(_write(victim.root.parent / "pyproject.toml", "[tool.black]\nline-length = 100\n"), users[0], 0o644)
    (victim.root / "pyproject.toml").symlink_to(target)
    out = victim.run("main.py", env={FLAG: "1"})
    assert out.stdout == SEQUENTIAL
    assert events(out.stderr) == ["no_config"], out.stderr


# -- the folders ---------------------------------------------------------------------------------
@pytest.mark.parametrize("owner", ["A", "B"])
def test_a_config_in_a_sticky_world_writable_folder_root_does_not_own_is_refused(
    victim: Victim, users: tuple[User, User], owner: str
) -> None:
    """B's own config directly in a 1777 folder owned by A, or by B: refused (anybody can put one there)."""
    a, b = users
    drop = owned(folder(victim.root.parent / "drop"), a if owner == "A" else b, 0o1777)
    config = owned(_write(drop / "sched_accel.toml", CONFIG), b, 0o644)
    line = refused_once(victim.run("main.py", env={FLAG: "1", "SCHED_ACCEL_CONFIG": str(config)}))
    if owner == "A":
        assert f"it is under {drop}, a folder owned by uid {a.uid}, not by uid {b.uid} or root" in line
    else:
        assert f"it is under {drop}, a folder writable by other users (mode 1777); chmod go-w {drop}" in line


@pytest.mark.parametrize(("owner", "accepted"), [("B", True), ("A", False), ("root", False)])
def test_in_a_root_owned_sticky_folder_only_the_user_s_own_config_is_read(
    victim: Victim, users: tuple[User, User], owner: str, accepted: bool
) -> None:
    """In a root-owned 1777 folder (as /tmp) B's own config is read; A's, or even root's, is refused."""
    a, b = users
    tmp = owned(folder(victim.root.parent / "tmp"), None, 0o1777)
    config = owned(_write(tmp / "sched_accel.toml", CONFIG), {"A": a, "B": b, "root": None}[owner], 0o644)
    out = victim.run("main.py", env={FLAG: "1", "SCHED_ACCEL_CONFIG": str(config)})
    if accepted:
        assert out.stdout == ACCELERATED, out.stderr
        return
    line = refused_once(out)
    assert f"not by this process's user (uid {b.uid}) in a folder anybody can write to" in line


def test_a_config_under_a_folder_others_can_write_is_refused(victim: Victim, users: tuple[User, User]) -> None:
    """B's own config in B's folder, under a folder anybody can write (not sticky): refused."""
    owned(_write(victim.root / "sched_accel.toml", CONFIG), users[1], 0o644)
    victim.root.parent.chmod(0o777)
    line = refused_once(victim.run("main.py", env={FLAG: "1"}))
    assert f"it is under {victim.root.parent}, a folder writable by other users (mode 777)" in line


# -- a FIFO --------------------------------------------------------------------------------------
@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="POSIX FIFOs")
def test_a_fifo_named_pyproject_toml_never_hangs_the_start_and_is_refused_once(tmp_path: Path) -> None:
    """Flag on, a FIFO named pyproject.toml where the app starts: no hang, one line, the app unpatched."""
    app = tmp_path / "app"
    app.mkdir()
    for name, text in (("jobs.py", JOBS), ("jobs2.py", JOBS), ("accel.py", ACCEL), ("main.py", MAIN)):
        _write(app / name, text)
    os.mkfifo(app / "pyproject.toml", 0o644)
    env = {k: v for k, v in os.environ.items() if k not in ENV_KEYS}
    env.update({FLAG: "1", "SCHED_ACCEL_CONTROL": str(tmp_path / "state" / "control.json")})
    for args in (["main.py"], ["-c", "import jobs"]):
        out = subprocess.run([sys.executable, *args], cwd=app, env=env, capture_output=True, text=True, timeout=30)
        assert out.returncode == 0, out.stderr
        assert events(out.stderr) == ["config_invalid"], out.stderr
        me, mode = pwd.getpwuid(os.getuid()).pw_name, stat.S_IMODE(os.stat(app / "pyproject.toml").st_mode)
        fifo = f"{app / 'pyproject.toml'} (owner uid {os.getuid()} ({me}), mode {mode:o}) is a FIFO, not a regular file"
        assert f"{fifo}; point $SCHED_ACCEL_CONFIG at the TOML file itself; the app runs unpatched" in out.stderr
    del env[FLAG]
    status = subprocess.run(
        [sys.executable, "-m", "sched_accel", "status"], cwd=app, env=env, capture_output=True, text=True, timeout=30
    )
    assert status.returncode == 1 and "is a FIFO, not a regular file" in status.stderr


# -- check, status and doctor say it too -----------------------------------------------------------
@pytest.mark.slow
def test_check_status_and_doctor_report_a_refused_config(victim: Victim, users: tuple[User, User]) -> None:
    """A's config read by B: check exits 2 (nothing imported), status 1, doctor FAIL, each naming why."""
    a = users[0]
    owned(_write(victim.root / "sched_accel.toml", CONFIG), a, 0o644)
    (victim.root / "jobs.py").write_text("open('imported', 'w').close()\n" + JOBS)
    check = victim.run("-m", "sched_accel", "check")
    assert check.returncode == 2, check.stdout + check.stderr
    assert check.stderr.startswith("sched-accel: ") and f"owned by uid {a.uid}" in check.stderr
    assert not (victim.root / "imported").exists()
    status = victim.run("-m", "sched_accel", "status")
    assert status.returncode == 1 and "is not trusted as a config" in status.stderr
    doctor = victim.run("-m", "sched_accel", "doctor")
    assert doctor.returncode == 1
    assert any(
        line.startswith("[FAIL] config: ") and "is not trusted as a config" in line
        for line in doctor.stdout.splitlines()
    )


# -- in-process: the loader's message ------------------------------------------------------------
def test_the_refusal_names_the_owner_by_uid_when_it_has_no_name(tmp_path: Path) -> None:
    """A config owned by a uid no user has: the line says the uid alone, and the mode."""
    if os.geteuid() != 0:
        pytest.skip("giving a file away needs root")
    uid = next(u for u in range(60000, 65000) if not _has_user(u))
    path = _write(tmp_path / "sched_accel.toml", CONFIG)
    os.chown(path, uid, uid)
    path.chmod(0o640)
    with pytest.raises(ConfigError) as refused:
        load_config(path)
    assert str(refused.value).startswith(
        f"{path} (owner uid {uid}, mode 640) is not trusted as a config: it is owned by uid {uid}"
    )


def _has_user(uid: int) -> bool:
    try:
        pwd.getpwuid(uid)
    except KeyError:
        return False
    return True
