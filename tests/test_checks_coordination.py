"""`sched-accel check` and `status` on coordination: the backend line (a Redis server asked one
read), and each single_run target's part line."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from .conftest import App
from .coord.redis_server import RedisServer, _free_port, find_redis_server
from .test_cli import cli

pytestmark = pytest.mark.slow

JOBS = "def refresh():\n    return 'ran'\n"


@pytest.fixture
def jobs(app: App) -> App:
    app.write("jobs.py", JOBS)
    return app


@pytest.fixture
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    binary = find_redis_server()
    if binary is None:
        pytest.skip("no redis-server here")
    server = RedisServer(binary, str(tmp_path_factory.mktemp("redis")))
    server.start()
    yield server.url
    server.stop()


def coordination(stdout: str) -> str:
    [line] = [line for line in stdout.splitlines() if line.startswith("coordination: ")]
    return line


def single_run_part(stdout: str) -> tuple[str, str, str]:
    found = [
        re.match(r"^  jobs:refresh\s+single_run\s+(.+?)\s{2,}(ok|note|problem)\s{2,}(.+)$", line)
        for line in stdout.splitlines()
    ]
    [match] = [m for m in found if m]
    return match[1], match[2], match[3]


def test_check_names_the_default_machine_backend_and_the_single_run_part(jobs: App) -> None:
    """No [coordination]: the machine backend and its store; a single_run target says how it ticks."""
    jobs.config('[[targets]]\nloop = "jobs:refresh"\nsingle_run = true\n')
    out = cli(jobs, "check")
    assert out.returncode == 0, out.stderr
    line = coordination(out.stdout)
    assert line.startswith("coordination: machine (every process of this user on this machine, no server; store ")
    assert "/coord/" in line and not (jobs.root / "state" / "coord").exists()  # named, not made
    declared, status, detail = single_run_part(out.stdout)
    assert (declared, status) == ("true", "ok")
    assert "one run per tick across the processes sharing the machine backend" in detail and "returns None" in detail
    assert "called from elsewhere, it runs in every process (declare tick)" in detail


def test_check_shows_a_declared_tick_and_the_default_from_the_table(jobs: App) -> None:
    """single_run from [coordination], with a tick: both in the part line."""
    jobs.config('[coordination]\nsingle_run = true\n\n[[targets]]\nloop = "jobs:refresh"\ntick = 60\n')
    declared, status, detail = single_run_part(cli(jobs, "check").stdout)
    assert declared == "true ([coordination] single_run), tick = 60" and status == "ok"
    assert "ticks of 60 s of the scheduled run time" in detail


def test_check_asks_a_redis_server_and_never_shows_its_password(jobs: App, redis_url: str) -> None:
    """A server that answers: ok. One that does not: a note (the app falls back), exit 0."""
    jobs.config(f'[coordination]\nurl = "{redis_url}"\n\n[[targets]]\nloop = "jobs:refresh"\nsingle_run = true\n')
    out = cli(jobs, "check")
    assert out.returncode == 0, out.stderr
    server = redis_url.removeprefix("redis://").removesuffix("/0")
    expected = (
        f"coordination: redis at {redis_url} (server {server}, no password; processes on any machine): ok, it answers"
    )
    assert coordination(out.stdout) == expected
    port = _free_port()
    jobs.config(f'[coordination]\nurl = "redis://:hunter2@127.0.0.1:{port}/0"\n\n[[targets]]\nloop = "jobs:refresh"\n')
    out = cli(jobs, "check")
    assert out.returncode == 0, out.stderr
    line = coordination(out.stdout)
    assert line.startswith(
        f"coordination: redis at redis://***@127.0.0.1:{port}/0 (server 127.0.0.1:{port}, password from the URL)"
    )
    assert ": note: it does not answer (" in line
    assert "single_run claims go to the machine backend" in line and "hunter2" not in out.stdout + out.stderr


def test_check_fails_when_redis_py_is_missing_and_says_what_to_install(jobs: App) -> None:
    """The redis backend without redis-py can never work: a problem, exit 1, the pip command."""
    shadow = jobs.root / "shadow" / "redis"  # not app.write: the test process's own redis stays imported
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError('no redis-py here')\n")
    jobs.config('[coordination]\nurl = "redis://127.0.0.1:6379/0"\n\n[[targets]]\nloop = "jobs:refresh"\n')
    out = cli(jobs, "check", PYTHONPATH=str(shadow.parent))
    assert out.returncode == 1
    assert (
        "problem: the redis backend needs redis-py, which is not installed: pip install 'sched-accel[redis]'"
        in coordination(out.stdout)
    )


def test_check_and_status_of_the_process_backend(jobs: App) -> None:
    """backend = "process": check says nothing is shared; status names the backend and single_run."""
    jobs.config('[coordination]\nbackend = "process"\n\n[[targets]]\nloop = "jobs:refresh"\n')
    assert coordination(cli(jobs, "check").stdout).startswith("coordination: process (nothing shared")
    jobs.config('[[targets]]\nloop = "jobs:refresh"\nsingle_run = true\n')
    out = cli(jobs, "status")
    assert "coordination: machine" in out.stdout
    assert "  jobs:refresh: on (prefetch, concurrency 8, single_run)" in out.stdout


def test_the_redis_password_comes_from_the_environment_and_is_never_shown(
    jobs: App, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """requirepass: password_env (listed by the owner) or $SCHED_ACCEL_REDIS_PASSWORD: ok; unset: what to export."""
    binary = find_redis_server()
    if binary is None:
        pytest.skip("no redis-server here")
    server = RedisServer(binary, str(tmp_path_factory.mktemp("redis")), "--requirepass", "s3cret-pw")
    server.start()
    try:
        url = f"redis://127.0.0.1:{server.port}/0"
        jobs.config(
            f'[coordination]\nurl = "{url}"\npassword_env = "APP_REDIS_PASSWORD"\n\n[[targets]]\nloop = "jobs:refresh"\n'
        )
        listed = {"SCHED_ACCEL_PASSWORD_ENVS": "OTHER, APP_REDIS_PASSWORD"}
        out = cli(jobs, "check", APP_REDIS_PASSWORD="s3cret-pw", **listed)
        assert coordination(out.stdout) == (
            f"coordination: redis at {url} (server 127.0.0.1:{server.port}, password from $APP_REDIS_PASSWORD; "
            "processes on any machine): ok, it answers"
        )
        out = cli(jobs, "check", **listed)
        line = coordination(out.stdout)
        assert "problem: coordination.password_env = 'APP_REDIS_PASSWORD', and $APP_REDIS_PASSWORD is not set" in line
        assert out.returncode == 1
        out = cli(jobs, "check", APP_REDIS_PASSWORD="s3cret-pw")
        assert out.returncode == 2 and "export SCHED_ACCEL_PASSWORD_ENVS=APP_REDIS_PASSWORD" in out.stderr
        jobs.config(f'[coordination]\nurl = "{url}"\n\n[[targets]]\nloop = "jobs:refresh"\n')
        out = cli(jobs, "check", SCHED_ACCEL_REDIS_PASSWORD="s3cret-pw")
        assert coordination(out.stdout).endswith("ok, it answers")
        out = cli(jobs, "check", SCHED_ACCEL_REDIS_PASSWORD="wrong")
        assert ": note: it does not answer (" in coordination(out.stdout)
        for shown in (out.stdout, out.stderr):
            assert "s3cret-pw" not in shown and "wrong" not in shown.replace("wrongpass", "")
    finally:
        server.stop()
