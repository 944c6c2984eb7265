"""`sched-accel check` never runs code it was not asked to trust: a module whose file, or a
folder above it, fails the config's trust rule is read from its source, never imported, unless
``--trust-folder`` says so. Every module here writes a marker file when it is imported."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from .conftest import ENV_KEYS
from .test_cli import parts, table
from .test_config_trust import User, owned, users  # noqa: F401 - the fixture, made here too

SCHED_ACCEL = Path(sys.executable).parent / "sched-accel"
HINT = "run `sched-accel check --trust-folder` to import it"


def module(path: Path, marker: Path, body: str) -> Path:
    """A module that writes ``marker`` when it is imported, then defines ``body``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"open({str(marker)!r}, 'w').close()\n" + textwrap.dedent(body))
    path.chmod(0o644)
    return path


def check(app: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """The ``sched-accel`` console script, run in ``app`` with the config there."""
    full = {k: v for k, v in os.environ.items() if k not in ENV_KEYS}
    full.update(
        SCHED_ACCEL_CONFIG=str(app / "sched_accel.toml"), SCHED_ACCEL_CONTROL=str(app / "state" / "control.json")
    )
    full.update(env)
    return subprocess.run(
        [str(SCHED_ACCEL), "check", *args], cwd=app, env=full, capture_output=True, text=True, timeout=60
    )


@pytest.fixture
def app(tmp_path: Path) -> Path:
    """An empty 0755 app folder of the test's user (root here)."""
    folder = tmp_path / "app"
    folder.mkdir(mode=0o755)
    return folder


def config(app: Path, text: str) -> None:
    """The app's config, 0644, its owner's (the runner's) own."""
    (app / "sched_accel.toml").write_text(textwrap.dedent(text))
    (app / "sched_accel.toml").chmod(0o644)


def test_a_module_of_another_user_is_read_from_source_until_trusted(
    app: Path,
    tmp_path: Path,
    users: tuple[User, User],  # noqa: F811 - the fixture
) -> None:
    """jobs.py owned by user A, in root's folder: check reads its names (and the loop's parameters), runs nothing."""
    a = users[0]
    marker = tmp_path / "jobs-ran"
    owned(module(app / "jobs.py", marker, "def update(tokens, *, retries=3):\n    return tokens\n"), a, 0o644)
    module(app / "accel.py", tmp_path / "accel-ran", "def update(tokens, *, retries=3):\n    return tokens\n")
    config(app, '[[targets]]\nloop = "jobs:update"\nreplacement = "accel:update"\nitems = "tokens"\n')
    out = check(app)
    assert out.returncode == 0, out.stdout + out.stderr
    assert not marker.exists()
    found = parts(out.stdout)
    declared, status, detail = found["jobs:update", "loop"]
    assert (declared, status) == ("jobs:update", "note")
    why = f"{app / 'jobs.py'} is owned by uid {a.uid}, not by this process's user (uid 0) or root"
    assert detail == f"function, sync (line 2); resolved from source, not imported: {why}; {HINT}"
    assert found["jobs:update", "items"][1:] == ("ok", "the loop's parameter 'tokens'")
    assert found["jobs:update", "replacement"][1:] == ("ok", "function, sync")  # root's own: imported
    assert (tmp_path / "accel-ran").exists()
    trusted = check(app, "--trust-folder")
    assert trusted.returncode == 0, trusted.stdout + trusted.stderr
    assert marker.exists()
    assert parts(trusted.stdout)["jobs:update", "loop"][1:] == ("ok", "function, sync")


def test_a_world_writable_folder_is_never_imported_from(app: Path, tmp_path: Path) -> None:
    """A 0777 folder: its modules are read from source, a trusted module's `import helper` is not served from it."""
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    for name in ("tracker.py", "tracker2.py"):
        (shared / name).write_text("def main():\n    print('sequential')\n")
    module(shared / "tracker_accel.py", tmp_path / "tracker-accel-ran", "async def main():\n    pass\n")
    module(shared / "helper.py", tmp_path / "helper-ran", "VALUE = 1\n")
    module(app / "accel.py", tmp_path / "accel-ran", "import helper\n\ndef main():\n    pass\n")
    config(
        app,
        f"""
        [[targets]]
        loop = "{shared / "tracker.py"}:main"
        replacement = "tracker_accel:main"

        [[targets]]
        loop = "{shared / "tracker2.py"}:main"
        replacement = "accel:main"
    """,
    )
    out = check(app)
    assert not (tmp_path / "tracker-accel-ran").exists() and not (tmp_path / "helper-ran").exists()
    found = parts(out.stdout)
    why = f"{shared / 'tracker_accel.py'} is under {shared}, a folder writable by other users (mode 777)"
    detail = f"function, async (line 2); resolved from source, not imported: {why}; {HINT}"
    assert found[f"{shared / 'tracker.py'}:main", "replacement"][1:] == ("note", detail)
    helper = f"{shared / 'helper.py'} is under {shared}, a folder writable by other users (mode 777)"
    failed = f"importing accel failed: it imports helper, not imported: {helper}; {HINT}"
    assert found[f"{shared / 'tracker2.py'}:main", "replacement"][1:] == ("problem", failed)
    assert out.returncode == 1
    trusted = check(app, "--trust-folder")
    assert trusted.returncode == 0, trusted.stdout + trusted.stderr
    assert (tmp_path / "tracker-accel-ran").exists() and (tmp_path / "helper-ran").exists()


def test_a_folder_of_another_user_on_the_path_is_read_from_source(
    app: Path,
    tmp_path: Path,
    users: tuple[User, User],  # noqa: F811 - the fixture
) -> None:
    """A package in user A's folder on PYTHONPATH: every part read from source, not even its __init__ run."""
    a = users[0]
    theirs = tmp_path / "theirs"
    module(theirs / "prices" / "__init__.py", tmp_path / "package-ran", "")
    module(
        theirs / "prices" / "jobs.py",
        tmp_path / "jobs-ran",
        """
        TOKENS = ["a", "b"]

        class Prices:
            @classmethod
            def update(cls, tokens):
                return [get(t) for t in tokens]

        def get(token):
            return token
    """,
    )
    for path in (theirs, theirs / "prices"):
        owned(path, a, 0o755)
    config(
        app,
        """
        [[targets]]
        loop = "prices.jobs:Prices.update"
        mode = "prefetch"
        fetch = "prices.jobs:get"
        items = "prices.jobs:TOKENS"

        [[targets]]
        loop = "prices.jobs:updte"
    """,
    )
    out = check(app, PYTHONPATH=str(theirs))
    assert not (tmp_path / "package-ran").exists() and not (tmp_path / "jobs-ran").exists()
    found = parts(out.stdout)
    package = theirs / "prices"
    why = f"{package / '__init__.py'} is under {package}, a folder owned by uid {a.uid}, not by uid 0 or root"
    unimported = f"resolved from source, not imported: {why}; {HINT}"
    assert found["prices.jobs:Prices.update", "loop"][1:] == ("note", f"classmethod, sync (line 7); {unimported}")
    assert found["prices.jobs:Prices.update", "fetch"][1:] == ("note", f"function, sync (line 10); {unimported}")
    items = found["prices.jobs:Prices.update", "items"][1:]
    assert items == ("note", f"read when the loop starts: assigned value (line 3); {unimported}")
    assert found["prices.jobs:updte", "loop"][1:] == (
        "problem",
        f"prices.jobs defines no 'updte' in its source; {unimported}",
    )
    assert table(out.stdout)["prices.jobs:updte"][1] == "no" and out.returncode == 1
    trusted = check(app, "--trust-folder", PYTHONPATH=str(theirs))
    assert (tmp_path / "jobs-ran").exists()
    assert parts(trusted.stdout)["prices.jobs:Prices.update", "loop"][1:] == ("ok", "classmethod, sync")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="POSIX FIFOs")
def test_a_fifo_as_a_script_target_never_hangs_check(app: Path) -> None:
    """A script loop that is a FIFO: check says it cannot read it, at once."""
    os.mkfifo(app / "job.py", 0o644)
    config(app, '[[targets]]\nloop = "job.py:main"\nreplacement = "accel:main"\n')
    (app / "accel.py").write_text("def main():\n    pass\n")
    out = check(app)
    assert out.returncode == 1
    assert "cannot read the script: " in parts(out.stdout)["job.py:main", "loop"][2]


def test_the_help_names_the_flag() -> None:
    """`sched-accel check --help` names --trust-folder and what it lifts."""
    out = subprocess.run([str(SCHED_ACCEL), "check", "--help"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "--trust-folder" in out.stdout and "never run" in out.stdout
