"""_credentials.py (and its seam in _coordination.py, ``config_trusted``): Redis's password
stays where the owner put it. A config may name only ``SCHED_ACCEL_`` variables; a password
of the environment goes only to the server ``$SCHED_ACCEL_REDIS_URL`` names, or from a config
that passes the trust rule; ``rediss://`` checks certificates unless the environment says not.

The attacker's server is a fake Redis that records every byte (``coord/fake_redis.py``); the
owner's is a real ``redis-server --requirepass``."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

import sched_accel
from sched_accel import load_config
from sched_accel._coord import RedisBackend, make_backend
from sched_accel._coordination import CoordinationSettings, config_trusted, password_of, redis_password
from sched_accel._credentials import password_env_problem, server_of
from sched_accel._exceptions import CoordinationUnavailable

from .conftest import App
from .coord.fake_redis import FakeRedis
from .coord.redis_server import RedisServer, find_redis_server
from .test_checks_coordination import coordination
from .test_cli import cli
from .test_single import AT, events, scheduled, single_app

SECRET = "Owner-Redis-Pa55"
CLOUD_KEY = "AKIA-cloud-secret-key"
OUR_VARIABLES = (
    "SCHED_ACCEL_REDIS_PASSWORD",
    "SCHED_ACCEL_REDIS_URL",
    "SCHED_ACCEL_PASSWORD_ENVS",
    "SCHED_ACCEL_REDIS_TLS_INSECURE",
    "AWS_SECRET_ACCESS_KEY",
)
TARGET = '\n[[targets]]\nloop = "jobs:refresh"\n'


@pytest.fixture(autouse=True)
def no_owner_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test sets the variables it is about, and no others."""
    for variable in OUR_VARIABLES:
        monkeypatch.delenv(variable, raising=False)


@pytest.fixture
def jobs(app: App) -> App:
    """An app whose one loop resolves."""
    app.write("jobs.py", "def refresh():\n    return 'ran'\n")
    return app


@pytest.fixture
def fake() -> Iterator[FakeRedis]:
    """A fake Redis the config points at: what reaches it, the config's author would read."""
    with FakeRedis() as server:
        yield server


def config(app: App, coordination: str, mode: int = 0o600) -> Path:
    """A config of ``[coordination]`` with ``mode`` (0o666: anyone may have written it)."""
    path = app.config(f"[coordination]\n{coordination}\n{TARGET}")
    path.chmod(mode)
    return path


# -- password_env names only the owner's variables ------------------------------------------------
def test_password_env_names_only_sched_accel_variables_or_those_the_owner_lists() -> None:
    """SCHED_ACCEL_* or a name in $SCHED_ACCEL_PASSWORD_ENVS passes; any other is one line saying both fixes."""
    assert password_env_problem("SCHED_ACCEL_REDIS_PASSWORD", {}) is None
    assert password_env_problem("APP_REDIS_PW", {"SCHED_ACCEL_PASSWORD_ENVS": "OTHER , APP_REDIS_PW"}) is None
    refused = password_env_problem("AWS_SECRET_ACCESS_KEY", {"SCHED_ACCEL_PASSWORD_ENVS": "APP_REDIS_PW"})
    assert refused is not None and "\n" not in refused
    assert refused.startswith("coordination.password_env = 'AWS_SECRET_ACCESS_KEY' is refused: ")
    assert refused.endswith(
        "rename the variable to SCHED_ACCEL_..., or export SCHED_ACCEL_PASSWORD_ENVS=AWS_SECRET_ACCESS_KEY"
    )


def test_a_config_naming_another_variable_is_refused(app: App, monkeypatch: pytest.MonkeyPatch) -> None:
    """The config is refused (load_config and settings built in code); the owner's list lets it through."""
    path = config(app, 'url = "redis://cache:6379/0"\npassword_env = "AWS_SECRET_ACCESS_KEY"')
    with pytest.raises(
        sched_accel.ConfigError, match=r"is refused: .* export SCHED_ACCEL_PASSWORD_ENVS=AWS_SECRET_ACCESS_KEY$"
    ):
        load_config(path)
    with pytest.raises(ValueError, match="rename the variable to SCHED_ACCEL_"):
        CoordinationSettings(url="redis://cache:6379/0", password_env="AWS_SECRET_ACCESS_KEY")
    monkeypatch.setenv("SCHED_ACCEL_PASSWORD_ENVS", "AWS_SECRET_ACCESS_KEY")
    assert load_config(path).coordination.password_env == "AWS_SECRET_ACCESS_KEY"


# -- the trust rule's seam ---------------------------------------------------------------------------
def test_config_trusted_refuses_what_others_could_have_written(tmp_path: Path) -> None:
    """Own and 0600: trusted. Writable by others, a symlink, in a folder others may write: why not."""
    own = tmp_path / "sched_accel.toml"
    own.write_text("")
    own.chmod(0o600)
    assert config_trusted(str(own)) is None
    own.chmod(0o666)
    assert f"the config {own} is writable by other users (mode 666)" in (config_trusted(str(own)) or "")
    own.chmod(0o600)
    link = tmp_path / "link.toml"
    link.symlink_to(own)
    assert "is a symbolic link" in (config_trusted(str(link)) or "")
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "sched_accel.toml").write_text("")
    shared.chmod(0o777)
    assert "a folder writable by other users" in (config_trusted(str(shared / "sched_accel.toml")) or "")
    assert "cannot be checked" in (config_trusted(str(tmp_path / "gone.toml")) or "")


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a file to another user needs root")
def test_config_trusted_refuses_another_users_file(tmp_path: Path) -> None:
    """A config owned by another user (nobody's uid) is not trusted with the owner's password."""
    path = tmp_path / "sched_accel.toml"
    path.write_text("")
    path.chmod(0o644)
    os.chown(path, 65534, 65534)
    assert "is owned by uid 65534" in (config_trusted(str(path)) or "")


# -- where a password of the environment may go ------------------------------------------------------
def test_the_password_goes_from_a_trusted_config_or_to_the_server_the_owner_named(tmp_path: Path) -> None:
    """Sent from a trusted config; else withheld, saying why, unless $SCHED_ACCEL_REDIS_URL names the server (and only then)."""
    path = tmp_path / "sched_accel.toml"
    path.write_text("")
    path.chmod(0o600)
    settings = CoordinationSettings(url="redis://cache.internal/0", source=str(path))
    env = {"SCHED_ACCEL_REDIS_PASSWORD": SECRET}
    assert (
        password_of(settings, env).value == SECRET
        and password_of(settings, env).source == "$SCHED_ACCEL_REDIS_PASSWORD"
    )
    path.chmod(0o666)
    withheld = password_of(settings, env)
    assert withheld.value is None and SECRET not in repr(withheld)
    assert withheld.withheld == (
        f"the password in $SCHED_ACCEL_REDIS_PASSWORD is not sent to cache.internal:6379: the config {path} is writable "
        "by other users (mode 666); chmod go-w it; or name the server in $SCHED_ACCEL_REDIS_URL"
    )
    named = {**env, "SCHED_ACCEL_REDIS_URL": "redis://other:6379, redis://cache.internal:6379/3"}
    assert password_of(settings, named).value == SECRET
    path.chmod(0o600)
    for elsewhere in ("redis://cache.internal:6380", "rediss://cache.internal:6379", "redis://other", "not a url"):
        found = password_of(settings, {**env, "SCHED_ACCEL_REDIS_URL": elsewhere})
        assert found.value is None and "$SCHED_ACCEL_REDIS_URL does not name this server" in (found.withheld or "")


def test_what_is_not_an_environment_password_is_never_withheld(tmp_path: Path) -> None:
    """A password in the URL is the config's own; none set: nothing to send; code-made settings are the app's."""
    untrusted = tmp_path / "sched_accel.toml"
    untrusted.write_text("")
    untrusted.chmod(0o666)
    own = CoordinationSettings(url=f"redis://:{SECRET}@cache/0", source=str(untrusted))
    assert password_of(own, {"SCHED_ACCEL_REDIS_PASSWORD": "x"}).source == "the URL"
    bare = CoordinationSettings(url="redis://cache/0", source=str(untrusted))
    assert password_of(bare, {}) == password_of(CoordinationSettings(), {})
    assert (
        password_of(CoordinationSettings(url="redis://cache/0"), {"SCHED_ACCEL_REDIS_PASSWORD": SECRET}).value == SECRET
    )
    assert (
        server_of("unix:///run/redis.sock?db=1") == "/run/redis.sock" and server_of("rediss://[::1]/0") == "[::1]:6379"
    )


def test_a_variable_the_owner_no_longer_lists_is_withheld(monkeypatch: pytest.MonkeyPatch) -> None:
    """Listed when the config was read, not when the backend is made: the variable is not sent."""
    monkeypatch.setenv("SCHED_ACCEL_PASSWORD_ENVS", "APP_REDIS_PW")
    settings = CoordinationSettings(url="redis://cache/0", password_env="APP_REDIS_PW")
    assert password_of(settings, {"APP_REDIS_PW": SECRET, "SCHED_ACCEL_PASSWORD_ENVS": "APP_REDIS_PW"}).value == SECRET
    found = password_of(settings, {"APP_REDIS_PW": SECRET})
    assert found.value is None and "export SCHED_ACCEL_PASSWORD_ENVS=APP_REDIS_PW" in (found.withheld or "")


def test_a_withheld_password_is_said_in_one_line_without_it(tmp_path: Path, capture_events: list[str]) -> None:
    """redis_password: None, and one sched_accel.redis_password_withheld line naming the config, not the secret."""
    path = tmp_path / "sched_accel.toml"
    path.write_text("")
    path.chmod(0o666)
    settings = CoordinationSettings(url="redis://cache/0", source=str(path))
    assert redis_password(settings, {"SCHED_ACCEL_REDIS_PASSWORD": SECRET}) is None
    [line] = events(capture_events, "redis_password_withheld")
    assert str(path) in line and "Redis is asked without it" in line and SECRET not in "".join(capture_events)


# -- against a fake Redis the config chose -----------------------------------------------------------
def test_check_never_sends_a_variable_the_config_may_not_name(jobs: App, fake: FakeRedis) -> None:
    """password_env = "AWS_SECRET_ACCESS_KEY": check refuses the config in one line; the key never left."""
    config(jobs, f'url = "redis://127.0.0.1:{fake.port}/0"\npassword_env = "AWS_SECRET_ACCESS_KEY"')
    out = cli(jobs, "check", AWS_SECRET_ACCESS_KEY=CLOUD_KEY)
    assert out.returncode == 2
    [line] = out.stderr.splitlines()
    assert "rename the variable to SCHED_ACCEL_..., or export SCHED_ACCEL_PASSWORD_ENVS=AWS_SECRET_ACCESS_KEY" in line
    assert fake.connections == 0 and CLOUD_KEY.encode() not in fake.received
    assert CLOUD_KEY not in out.stdout + out.stderr


def test_check_withholds_the_password_from_an_untrusted_config(jobs: App, fake: FakeRedis) -> None:
    """A world-writable config naming the fake: refused whole (exit 2) or its password withheld (exit 1); never contacted."""
    path = config(jobs, f'url = "redis://127.0.0.1:{fake.port}/0"', mode=0o666)
    out = cli(jobs, "check", SCHED_ACCEL_REDIS_PASSWORD=SECRET)
    assert out.returncode in (1, 2), out.stderr
    if out.returncode == 1:
        assert coordination(out.stdout).startswith(
            f"coordination: redis at redis://127.0.0.1:{fake.port}/0 (server 127.0.0.1:{fake.port}, password from "
            f"$SCHED_ACCEL_REDIS_PASSWORD): problem: the password in $SCHED_ACCEL_REDIS_PASSWORD is not sent to "
            f"127.0.0.1:{fake.port}: the config {path} is writable by other users (mode 666)"
        )
    assert fake.connections == 0 and SECRET not in out.stdout + out.stderr


def test_check_withholds_the_password_from_a_server_the_owner_did_not_name(jobs: App, fake: FakeRedis) -> None:
    """$SCHED_ACCEL_REDIS_URL names another server: the config's is not sent the password, even trusted."""
    config(jobs, f'url = "redis://127.0.0.1:{fake.port}/0"')
    out = cli(jobs, "check", SCHED_ACCEL_REDIS_PASSWORD=SECRET, SCHED_ACCEL_REDIS_URL="rediss://redis.internal:6380")
    assert out.returncode == 1
    assert coordination(out.stdout).endswith(
        f"problem: the password in $SCHED_ACCEL_REDIS_PASSWORD is not sent to 127.0.0.1:{fake.port}: "
        "$SCHED_ACCEL_REDIS_URL does not name this server (scheme, host and port): correct coordination.url, or add it there"
    )
    assert fake.connections == 0 and SECRET not in out.stdout + out.stderr


def test_the_password_reaches_the_server_of_a_trusted_config_or_the_owners(jobs: App, fake: FakeRedis) -> None:
    """The password arrives from a trusted config, or when $SCHED_ACCEL_REDIS_URL names the server; check never shows it."""
    config(jobs, f'url = "redis://127.0.0.1:{fake.port}/0"')
    out = cli(jobs, "check", SCHED_ACCEL_REDIS_PASSWORD=SECRET)
    assert b"AUTH" in fake.received and SECRET.encode() in fake.received
    assert ": note: it does not answer (" in coordination(out.stdout) and SECRET not in out.stdout + out.stderr
    before = len(fake.received)
    cli(jobs, "check", SCHED_ACCEL_REDIS_PASSWORD=SECRET, SCHED_ACCEL_REDIS_URL=f"redis://127.0.0.1:{fake.port}")
    assert SECRET.encode() in fake.received[before:]


def test_a_running_app_never_sends_the_password_from_an_untrusted_config(
    app: App, fake: FakeRedis, monkeypatch: pytest.MonkeyPatch, capture_events: list[str]
) -> None:
    """Flag on, config made world-writable after it was read: withheld and said, claims fall back, each tick runs once."""
    single_app(app, monkeypatch, f'url = "redis://127.0.0.1:{fake.port}/0"')
    monkeypatch.setenv("SCHED_ACCEL_REDIS_PASSWORD", SECRET)
    assert sched_accel.install() is True
    (app.root / "sched_accel.toml").chmod(0o666)  # judged when the password would be sent
    import jobs

    assert scheduled(jobs.refresh, AT, AT) == ["ran", None]
    assert events(capture_events, "redis_password_withheld") and events(capture_events, "single_run_fallback")
    assert SECRET.encode() not in fake.received and SECRET not in "".join(capture_events)


# -- against the owner's real Redis, with requirepass ---------------------------------------------------
@pytest.fixture
def guarded(tmp_path: Path) -> Iterator[RedisServer]:
    """A real redis-server that wants SECRET."""
    binary = find_redis_server()
    if binary is None:
        pytest.skip("no redis-server here")
    server = RedisServer(binary, str(tmp_path / "redis"), "--requirepass", SECRET)
    os.makedirs(server.folder)
    server.start()
    yield server
    server.stop()


def test_a_trusted_config_gets_the_real_server_an_untrusted_one_falls_back(
    app: App, guarded: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """requirepass: a trusted config's backend answers; made world-writable, Redis refuses it (NOAUTH) for the fallback."""
    path = config(app, f'url = "{guarded.url}"')
    monkeypatch.setenv("SCHED_ACCEL_REDIS_PASSWORD", SECRET)
    settings = load_config(path).coordination
    backend = make_backend(settings, None)
    try:
        assert backend.held("sched-accel-test") is None
    finally:
        backend.close()
    path.chmod(0o666)
    backend = make_backend(settings, None)
    try:
        with pytest.raises(CoordinationUnavailable, match="(?i)auth"):
            backend.held("sched-accel-test")
    finally:
        backend.close()


# -- rediss:// checks the certificate, unless the environment says not ---------------------------------
def test_rediss_checks_certificates_whatever_the_url_says(monkeypatch: pytest.MonkeyPatch) -> None:
    """rediss://: certificate and host name checked whatever the URL's query says; only the env's INSECURE=1 turns it off."""
    url = "rediss://cache:6380/0?ssl_cert_reqs=none&ssl_check_hostname=false&port=1&host=evil&db=2"
    backend = RedisBackend(url)
    options = backend.client.connection_pool.connection_kwargs
    assert (options["ssl_cert_reqs"], options["ssl_check_hostname"]) == ("required", True)
    assert (options["host"], options["port"], options["db"]) == ("cache", 6380, 2)
    backend.close()
    monkeypatch.setenv("SCHED_ACCEL_REDIS_TLS_INSECURE", "1")
    backend = RedisBackend("rediss://cache:6380/0")
    options = backend.client.connection_pool.connection_kwargs
    assert (options["ssl_cert_reqs"], options["ssl_check_hostname"]) == ("none", False)
    backend.close()


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[str, str]:
    """A self-signed certificate for localhost and its key (made with the openssl command)."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("no openssl command here")
    cert, key = str(tmp_path / "cert.pem"), str(tmp_path / "key.pem")
    subprocess.run(
        [
            openssl,
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            key,
            "-out",
            cert,
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost,IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


def test_a_server_with_an_unverifiable_certificate_never_gets_the_password(
    certificate: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A self-signed TLS fake gets no byte (ssl_cert_reqs=none in the URL or not), and the password once the env says insecure."""
    with FakeRedis(tls=certificate) as fake:
        for query in ("", "?ssl_cert_reqs=none&ssl_check_hostname=false"):
            backend = RedisBackend(f"rediss://127.0.0.1:{fake.port}/0{query}", password=SECRET)
            with pytest.raises(CoordinationUnavailable, match="(?i)certificate"):
                backend.held("sched-accel-test")
            backend.close()
        assert fake.connections == 2 and fake.received == b""
        monkeypatch.setenv("SCHED_ACCEL_REDIS_TLS_INSECURE", "1")
        backend = RedisBackend(f"rediss://127.0.0.1:{fake.port}/0", password=SECRET)
        with pytest.raises(CoordinationUnavailable):
            backend.held("sched-accel-test")
        backend.close()
    assert SECRET.encode() in fake.received


@pytest.mark.slow
def test_check_shows_how_tls_is_checked(jobs: App) -> None:
    """rediss:// in check's line: the server, and whether its certificate is checked."""
    config(jobs, 'url = "rediss://127.0.0.1:1/0"')
    line = coordination(cli(jobs, "check").stdout)
    assert line.startswith(
        "coordination: redis at rediss://127.0.0.1:1/0 (server 127.0.0.1:1, TLS, its certificate checked, no password)"
    )
    line = coordination(cli(jobs, "check", SCHED_ACCEL_REDIS_TLS_INSECURE="1").stdout)
    assert "TLS, its certificate NOT checked ($SCHED_ACCEL_REDIS_TLS_INSECURE=1)" in line
