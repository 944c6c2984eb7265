"""_coordination.py: the [coordination] table and a target's single_run and tick, validated
into frozen settings; a Redis password never shown."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from sched_accel import ConfigError, Settings, load_config
from sched_accel._coordination import PASSWORD_ENV, CoordinationSettings, redacted, redis_password, url_problem
from sched_accel._settings import Target
from sched_accel._targets import TargetSpec

from .test_config import config_error, pyproject, write

TARGET = '[[targets]]\nloop = "jobs:update"\n'
SECRET = "s3cr3t-pw"


def load(tmp_path: Path, source: str) -> Settings:
    """The settings of a standalone config file holding ``source``."""
    return load_config(write(tmp_path / "sched_accel.toml", source))


def test_the_defaults_are_the_machine_backend_and_no_single_run(tmp_path: Path) -> None:
    """No [coordination]: the machine backend, single_run off for every target, no namespace."""
    settings = load(tmp_path, TARGET)
    assert settings.coordination == CoordinationSettings()
    assert (settings.coordination.kind, settings.coordination.where) == ("machine", "machine")
    [target] = settings.targets
    assert (target.single_run, target.tick, settings.runs_once(target)) == (None, None, False)


@pytest.mark.parametrize(
    ("table", "kind", "where"),
    [
        ('backend = "process"', "process", "process"),
        ('backend = "machine"', "machine", "machine"),
        ('url = "redis://127.0.0.1:6379/0"', "redis", "redis at redis://127.0.0.1:6379/0"),
        ('backend = "redis"\nurl = "rediss://cache.internal"', "redis", "redis at rediss://cache.internal"),
        ('url = "unix:///run/redis/redis.sock"', "redis", "redis at unix:///run/redis/redis.sock"),
        (f'url = "redis://:{SECRET}@cache:6380/2"', "redis", "redis at redis://***@cache:6380/2"),
    ],
)
def test_the_backend_is_chosen_by_backend_or_url(tmp_path: Path, table: str, kind: str, where: str) -> None:
    """backend names it; a url alone means redis; `where` shows the server without its password."""
    coordination = load(tmp_path, f"[coordination]\n{table}\n" + TARGET).coordination
    assert (coordination.kind, coordination.where) == (kind, where)


def test_single_run_from_the_table_and_per_target(tmp_path: Path) -> None:
    """[coordination] single_run is every target's default; a target's own single_run wins either way."""
    settings = load(
        tmp_path,
        """
        [coordination]
        single_run = true
        namespace = "legacy-app"

        [[targets]]
        loop = "jobs:update"
        tick = 60

        [[targets]]
        loop = "jobs:report"
        single_run = false
        """,
    )
    update, report = settings.targets
    assert (update.single_run, update.tick, settings.runs_once(update)) == (None, 60.0, True)
    assert (report.single_run, settings.runs_once(report)) == (False, False)
    assert settings.coordination.namespace == "legacy-app"
    alone = load(tmp_path, TARGET + "single_run = true\ntick = 0.5\n")
    [target] = alone.targets
    assert (alone.runs_once(target), target.tick) == (True, 0.5)


def test_the_pyproject_form(tmp_path: Path) -> None:
    """Under [tool.sched_accel.coordination], with the keys named in full in errors."""
    path = write(
        tmp_path / "pyproject.toml",
        pyproject(
            '[tool.sched_accel.coordination]\nsingle_run = true\n\n[[tool.sched_accel.targets]]\nloop = "jobs:update"\n'
        ),
    )
    settings = load_config(path)
    assert settings.runs_once(settings.targets[0])
    write(path, pyproject('[tool.sched_accel.coordination]\nbackend = "redis"\n'))
    with pytest.raises(ConfigError, match=r"tool\.sched_accel\.coordination\.backend = \"redis\" needs"):
        load_config(path)


@pytest.mark.parametrize(
    ("source", "message"),
    [
        (
            '[coordination]\nbackend = "sqlite"\n',
            "coordination.backend = 'sqlite' is not allowed: \"machine\" (the default",
        ),
        ('[coordination]\nbackend = "redis"\n', 'coordination.backend = "redis" needs coordination.url'),
        (
            '[coordination]\nbackend = "machine"\nurl = "redis://h"\n',
            "coordination.url is the redis backend's, and backend = 'machine'",
        ),
        (
            '[coordination]\nurl = "http://h:6379"\n',
            "coordination.url = 'http://h:6379' is not allowed: a redis://, rediss://",
        ),
        ('[coordination]\nurl = "redis://h:99999"\n', "its port must be a number from 0 to 65535"),
        ('[coordination]\nurl = "redis://h/zero"\n', "the database after the host is a number"),
        ('[coordination]\nurl = "redis:///0"\n', "a host after the scheme"),
        ('[coordination]\nurl = "unix://relative.sock"\n', "the socket's absolute path"),
        ('[coordination]\nurl = "redis://h/0#x"\n', "without a #fragment"),
        ('[coordination]\nurl = "redis://h /0"\n', "without spaces"),
        ("[coordination]\nurl = 6379\n", "coordination.url = 6379 is not allowed: a string"),
        ('[coordination]\nsingle_run = "yes"\n', "coordination.single_run = 'yes' is not allowed: true or false"),
        ('[coordination]\nnamespace = ""\n', "coordination.namespace = '' is not allowed: a non-empty string"),
        (
            "[coordination]\nsingle_runs = true\n",
            "unknown key coordination.single_runs; the keys here are backend, namespace, password_env, single_run, url",
        ),
        (
            '[coordination]\npassword_env = "1X"\nurl = "redis://h/0"\n',
            "coordination.password_env = '1X' is not allowed: the name of an environment variable",
        ),
        (
            '[coordination]\npassword_env = "SCHED_ACCEL_REDIS_PASSWORD"\n',
            "coordination.password_env is the redis backend's password: set coordination.url too",
        ),
        (
            '[coordination]\npassword_env = "SCHED_ACCEL_P"\nurl = "redis://:x@h/0"\n',
            "coordination.url holds a password and coordination.password_env names another",
        ),
        (
            '[coordination]\npassword_env = "AWS_SECRET_ACCESS_KEY"\nurl = "redis://h/0"\n',
            "coordination.password_env = 'AWS_SECRET_ACCESS_KEY' is refused: a config may name only variables starting with SCHED_ACCEL_",
        ),
        ('[coordination]\nurl = "rediss://h/0?ssl_cert_reqs=none"\n', "a URL that keeps TLS certificates verified"),
        (
            '[coordination]\nurl = "rediss://h/0?ssl_check_hostname=false"\n',
            "export SCHED_ACCEL_REDIS_TLS_INSECURE=1 for a test server",
        ),
        ('[coordination]\nurl = "redis://h/0?port=6380"\n', "the server in the URL itself, not in its query"),
        ('coordination = "machine"\n', "coordination = 'machine' is not allowed: a table [coordination] of backend"),
        (TARGET + 'single_run = "once"\n', "targets.single_run = 'once' is not allowed: true or false"),
        (
            TARGET + "single_run = true\ntick = 0\n",
            "targets.tick = 0 is not allowed: single_run: the schedule's tick in seconds, a number from 0.01 to 604,800",
        ),
        (TARGET + "single_run = true\ntick = 1e9\n", "targets.tick = 1000000000.0 is not allowed"),
        (TARGET + "tick = 60\n", "targets.tick is the schedule tick of single_run, which is off for this target"),
        (
            '[coordination]\nbackend = "process"\n' + TARGET + "single_run = true\n",
            'single_run needs a backend the processes share, and coordination.backend = "process"',
        ),
        (
            '[coordination]\nbackend = "process"\nsingle_run = true\n' + TARGET,
            "shares nothing (each process would run every tick)",
        ),
    ],
)
def test_what_is_refused_names_the_key(tmp_path: Path, source: str, message: str) -> None:
    """Each mistake is a config error naming the key, its value and what is allowed."""
    assert message in config_error(tmp_path, source)


@pytest.mark.parametrize(
    "url",
    [
        f"redis://user:{SECRET}@h:99999/0",
        f"redis://:{SECRET}@h/not-a-db",
        f"http://:{SECRET}@h:6379",
        f"redis://h:6379/0?password={SECRET}#x",
        f"redis://:{SECRET}@@h /0",
    ],
)
def test_a_password_is_never_shown(tmp_path: Path, url: str) -> None:
    """Whatever is wrong with the URL, the error shows it with the user, password and query hidden."""
    message = config_error(tmp_path, f'[coordination]\nbackend = "machine"\nurl = "{url}"\n' + TARGET)
    assert SECRET not in message and "***" in message and "coordination.url" in message
    with pytest.raises(ValueError) as info:
        CoordinationSettings(url=url)
    assert SECRET not in str(info.value)


def test_settings_check_themselves_and_keep_the_url_out_of_repr() -> None:
    """Built in code, the settings refuse what the config refuses; repr never holds the URL."""
    good = CoordinationSettings(url=f"redis://:{SECRET}@cache:6379/0", single_run=True)
    assert SECRET not in repr(good) and good.kind == "redis" and good.where == "redis at redis://***@cache:6379/0"
    with pytest.raises(dataclasses.FrozenInstanceError):
        good.single_run = False  # type: ignore[misc]
    for bad, match in [
        ({"backend": "disk"}, "coordination.backend must be one of"),
        ({"backend": "redis"}, "needs coordination.url"),
        ({"backend": "process", "url": "redis://h"}, "remove one of them"),
        ({"single_run": 1}, "coordination.single_run must be true or false"),
        ({"namespace": "a\nb"}, "coordination.namespace must be"),
    ]:
        with pytest.raises(ValueError, match=match):
            CoordinationSettings(**bad)  # type: ignore[arg-type]
    target = Target(loop=TargetSpec.parse("jobs:update"), mode="prefetch", concurrency=1, single_run=True)
    with pytest.raises(ValueError, match="single_run needs a backend the processes share"):
        Settings(path=None, targets=(target,), coordination=CoordinationSettings(backend="process"))
    with pytest.raises(ValueError, match="targets.tick must be a number from 0.01"):
        Target(loop=TargetSpec.parse("jobs:update"), mode="prefetch", concurrency=1, tick=0.001)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://h:6379/0", "redis://h:6379/0"),
        (f"redis://u:{SECRET}@h:6379/0", "redis://***@h:6379/0"),
        (f"redis://u:p@ss@{SECRET}@h/0", "redis://***@h/0"),
        (f"rediss://h/0?password={SECRET}", "rediss://h/0?***"),
        (f"{SECRET}@h", "***"),
        ("unix:///run/redis.sock", "unix:///run/redis.sock"),
    ],
)
def test_redacted_hides_everything_before_the_last_at_and_the_query(url: str, shown: str) -> None:
    """What stands before the host (user and password, even unescaped) and the query are hidden."""
    assert redacted(url) == shown


def test_url_problem_accepts_what_redis_py_connects_to() -> None:
    """The forms redis-py's from_url takes; the problems are sentences that never quote the URL."""
    for url in (
        "redis://localhost",
        "redis://:pw@10.0.0.5:6380/15",
        "rediss://cache/0",
        "unix:///tmp/redis.sock?db=2",
        "rediss://cache/0?ssl_cert_reqs=required&ssl_check_hostname=true&ssl_ca_certs=/etc/ca.pem",
    ):
        assert url_problem(url) is None, url
    assert url_problem(None) is not None and url_problem("") is not None


def test_the_redis_password_is_read_from_the_environment() -> None:
    """password_env names the variable; else $SCHED_ACCEL_REDIS_PASSWORD, unless the URL has one."""
    named = CoordinationSettings(url="redis://cache:6379/0", password_env="SCHED_ACCEL_APP_PW")
    assert redis_password(named, {"SCHED_ACCEL_APP_PW": SECRET, PASSWORD_ENV: "other"}) == SECRET
    with pytest.raises(ValueError, match=r"\$SCHED_ACCEL_APP_PW is not set in this process's environment: export it"):
        redis_password(named, {})
    default = CoordinationSettings(url="redis://cache:6379/0")
    assert redis_password(default, {PASSWORD_ENV: SECRET}) == SECRET
    assert redis_password(default, {}) is None
    assert redis_password(CoordinationSettings(url=f"redis://:{SECRET}@cache/0"), {PASSWORD_ENV: "other"}) is None
    assert SECRET not in repr(named)
