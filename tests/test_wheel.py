"""The built wheel, installed (not editable) into a fresh venv: activation as a user gets it."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import venv
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
sys.path.insert(0, str(EXAMPLES))

from legacy_app.upstream import Upstream  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with the wheel built from this checkout installed into it."""
    where = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--outdir", str(where / "dist"), str(ROOT)],
        check=True,
        capture_output=True,
    )
    wheels = list((where / "dist").glob("sched_accel-*.whl"))
    assert len(wheels) == 1
    venv.EnvBuilder(with_pip=True).create(where / "venv")
    python = where / "venv" / "bin" / "python"
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", str(wheels[0])],
        check=True,
        capture_output=True,
    )
    return python


@pytest.fixture(scope="module")
def upstream() -> Iterator[Upstream]:
    """The example's fake upstream on 127.0.0.1, with a short latency."""
    with Upstream(latency=0.02) as server:
        yield server


def run_job(
    python: Path, upstream: Upstream, tmp_path: Path, flag: str | None, config: Path | None = None
) -> tuple[subprocess.CompletedProcess[str], list[tuple[object, ...]]]:
    """Run the example job in the installed venv; return the process and the rows it wrote."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SCHED_ACCEL_", "ENABLE_SCHEDULER", "PYTHON"))}
    env.update(
        PYTHONPATH=os.pathsep.join([str(EXAMPLES), str(EXAMPLES / "accel")]),
        UPSTREAM_URL=upstream.url,
        SCHED_ACCEL_CONFIG=str(config or EXAMPLES / "legacy_app" / "sched_accel.toml"),
        SCHED_ACCEL_CONTROL=str(tmp_path / "control.json"),
    )
    if flag is not None:
        env["ENABLE_SCHEDULER_OPTIMIZATION"] = flag
    db = tmp_path / f"scores-{flag}.db"
    probe = (
        "import sys, runpy; sys.argv = ['run_job', sys.argv[1]]; "
        "runpy.run_module('legacy_app.run_job', run_name='__main__'); "
        "import legacy_app.jobs as j; print('wrapped', hasattr(j.update_scores, '__wrapped__')); "
        "print('loaded', sorted(m for m in ('wrapt', 'loguru', 'sched_accel') if m in sys.modules))"
    )
    done = subprocess.run(
        [str(python), "-c", probe, str(db)], env=env, capture_output=True, text=True, timeout=120, cwd=tmp_path
    )
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT token, price, score FROM scores ORDER BY token").fetchall()
    return done, rows


def test_wheel_installs_the_start_up_files(installed: Path) -> None:
    """The wheel puts sched_accel.pth, sched_accel.start and the boot module in site-packages."""
    out = subprocess.run(
        [str(installed), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    )
    site = Path(out.stdout.strip())
    for name in ("sched_accel.pth", "sched_accel.start", "_sched_accel_boot.py"):
        assert (site / name).is_file(), name
    assert not list(site.glob("*editable*"))


def test_flag_off_changes_nothing(installed: Path, upstream: Upstream, tmp_path: Path) -> None:
    """Flag unset: the loop is the original function, nothing of ours is loaded, nothing is logged."""
    done, rows = run_job(installed, upstream, tmp_path, None)
    assert done.returncode == 0, done.stderr
    assert "wrapped False" in done.stdout
    assert "loaded []" in done.stdout
    assert "sched_accel" not in done.stderr
    assert len(rows) == 70


def test_flag_on_patches_and_writes_the_same_rows(installed: Path, upstream: Upstream, tmp_path: Path) -> None:
    """Flag on: the start-up hook patches the loop, and the rows equal the sequential run's."""
    off, rows_off = run_job(installed, upstream, tmp_path, None)
    on, rows_on = run_job(installed, upstream, tmp_path, "true")
    assert on.returncode == 0, on.stderr
    assert "wrapped True" in on.stdout
    assert "sched_accel.patched" in on.stderr
    assert "sched_accel.run target=legacy_app.jobs:update_scores mode=prefetch outcome=ok items=70 ok=70" in on.stderr
    assert rows_on == rows_off
    assert on.stdout.split()[0] == off.stdout.split()[0] == "saved=70"


def test_bad_config_still_runs_the_app(installed: Path, upstream: Upstream, tmp_path: Path) -> None:
    """Flag on with a broken config: the app runs unpatched and one line says what to fix."""
    bad = tmp_path / "bad.toml"
    bad.write_text('[[targets]]\nloop = "legacy_app.jobs:update_scores"\nconcurency = 8\n')
    done, rows = run_job(installed, upstream, tmp_path, "1", bad)
    assert done.returncode == 0, done.stderr
    assert "wrapped False" in done.stdout
    assert len(rows) == 70
    lines = [line for line in done.stderr.splitlines() if "sched_accel." in line]
    assert len(lines) == 1
    assert "config_invalid" in lines[0] and "concurency" in lines[0]
