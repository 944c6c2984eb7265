"""_config.py: where the config is found, what it may say, and the settings made from it."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest

from sched_accel import ConfigError, Settings, find_config, load_config
from sched_accel._settings import Argument

ONE_TARGET = """
    [[targets]]
    loop = "jobs:update"
    replacement = "accel:update"
"""


def write(path: Path, source: str) -> Path:
    """Write a dedented TOML file, making its folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(source).lstrip(), encoding="utf-8")
    return path


def config_error(tmp_path: Path, source: str) -> str:
    """The message of the ConfigError that loading ``source`` raises."""
    path = write(tmp_path / "sched_accel.toml", source)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    return str(info.value)


def pyproject(body: str) -> str:
    """A pyproject.toml text with ``body`` as its sched_accel part."""
    return '[project]\nname = "legacy-app"\nversion = "1.0"\n\n' + textwrap.dedent(body).lstrip()


# -- discovery --------------------------------------------------------------------------


def test_find_config_prefers_the_environment_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """$SCHED_ACCEL_CONFIG wins over a sched_accel.toml in the working directory, made absolute."""
    write(tmp_path / "sched_accel.toml", ONE_TARGET)
    write(tmp_path / "elsewhere" / "mine.toml", ONE_TARGET)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SCHED_ACCEL_CONFIG", "elsewhere/mine.toml")
    assert find_config() == str(tmp_path / "elsewhere" / "mine.toml")


def test_find_config_prefers_standalone_file_over_pyproject(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """./sched_accel.toml is used before a pyproject.toml that also has [tool.sched_accel]."""
    write(tmp_path / "sched_accel.toml", ONE_TARGET)
    write(tmp_path / "pyproject.toml", pyproject("[tool.sched_accel]\nconcurrency = 2\n"))
    monkeypatch.chdir(tmp_path)
    assert find_config() == str(tmp_path / "sched_accel.toml")


def test_find_config_falls_back_to_pyproject_table(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without a standalone file, a pyproject.toml with [tool.sched_accel] is the config."""
    write(tmp_path / "pyproject.toml", pyproject("[tool.sched_accel]\nconcurrency = 2\n"))
    monkeypatch.chdir(tmp_path)
    assert find_config() == str(tmp_path / "pyproject.toml")


def test_find_config_ignores_pyproject_without_our_table(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A pyproject.toml that never mentions tool.sched_accel is not a config: None."""
    write(tmp_path / "pyproject.toml", pyproject("[tool.black]\nline-length = 100\n"))
    monkeypatch.chdir(tmp_path)
    assert find_config() is None


def test_find_config_takes_an_explicit_directory(tmp_path: Path) -> None:
    """find_config(cwd) looks in that directory, not the process's working directory."""
    write(tmp_path / "sched_accel.toml", ONE_TARGET)
    assert find_config(str(tmp_path)) == str(tmp_path / "sched_accel.toml")


def test_load_config_uses_discovery(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """load_config() without a path loads the discovered file."""
    write(tmp_path / "sched_accel.toml", ONE_TARGET)
    monkeypatch.chdir(tmp_path)
    assert load_config().path == str(tmp_path / "sched_accel.toml")


def test_no_config_found_says_how_to_provide_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With nothing to find, the error names SCHED_ACCEL_CONFIG, sched_accel.toml and pyproject.toml."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match="SCHED_ACCEL_CONFIG") as info:
        load_config()
    assert "sched_accel.toml" in str(info.value)
    assert "[tool.sched_accel]" in str(info.value)


# -- the two forms and the defaults -----------------------------------------------------


def test_standalone_form_and_defaults(tmp_path: Path) -> None:
    """A standalone file with one target gets every documented default."""
    path = write(tmp_path / "sched_accel.toml", ONE_TARGET)
    settings = load_config(path)
    assert isinstance(settings, Settings)
    assert settings.path == str(path)
    assert settings.concurrency == 8
    assert settings.breaker_threshold == 3
    assert settings.breaker_cooldown == 300.0
    assert settings.log == "auto"
    [target] = settings.targets
    assert target.name == "jobs:update"
    assert target.mode == "replace"
    assert target.on_error == "fallback"
    assert target.concurrency == 8
    assert target.fetch is None
    assert target.items is None
    assert target.replacement is not None and target.replacement.module == "accel"
    assert settings.target("jobs:update") is target
    assert settings.target("jobs:other") is None


def test_mode_defaults_to_prefetch_without_replacement(tmp_path: Path) -> None:
    """A target with only `fetch` is in prefetch mode."""
    path = write(tmp_path / "sched_accel.toml", '[[targets]]\nloop = "jobs:update"\nfetch = "client:get"\nitems = 0\n')
    [target] = load_config(path).targets
    assert target.mode == "prefetch"
    assert target.fetch is not None and target.fetch.qualname == "get"
    assert target.items == Argument(0)


def test_pyproject_form(tmp_path: Path) -> None:
    """In pyproject.toml the same keys live under [tool.sched_accel] and [[tool.sched_accel.targets]]."""
    path = write(
        tmp_path / "pyproject.toml",
        pyproject(
            """
            [tool.sched_accel]
            concurrency = 4
            breaker_threshold = 5
            breaker_cooldown = 1.5
            log = "stdlib"

            [[tool.sched_accel.targets]]
            loop = "jobs:update"
            replacement = "accel:update"
            on_error = "propagate"
            concurrency = 2

            [[tool.sched_accel.targets]]
            loop = "jobs:other"
            replacement = "accel:other"
            """
        ),
    )
    settings = load_config(path)
    assert (settings.concurrency, settings.breaker_threshold, settings.breaker_cooldown) == (4, 5, 1.5)
    assert settings.log == "stdlib"
    first, second = settings.targets
    assert (first.name, first.on_error, first.concurrency) == ("jobs:update", "propagate", 2)
    assert (second.name, second.concurrency) == ("jobs:other", 4)


def test_pyproject_without_our_table_is_refused(tmp_path: Path) -> None:
    """Loading a pyproject.toml that has no [tool.sched_accel] table says to add one."""
    path = write(tmp_path / "pyproject.toml", pyproject("[tool.black]\nline-length = 100\n"))
    with pytest.raises(ConfigError, match=r"no \[tool\.sched_accel\] table"):
        load_config(path)


def test_pyproject_errors_name_the_full_key(tmp_path: Path) -> None:
    """In pyproject form every bad or unknown key is named with its full tool.sched_accel. path."""
    path = write(
        tmp_path / "pyproject.toml",
        pyproject(
            """
            [tool.sched_accel]
            concurrency = 0
            speed = 2

            [[tool.sched_accel.targets]]
            loop = "jobs:update"
            replacement = "accel:update"
            concurrency = 0
            speed = 2
            """
        ),
    )
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert "tool.sched_accel.concurrency = 0 is not allowed: a whole number from 1 to 10,000" in message
    assert "unknown key tool.sched_accel.speed" in message
    assert "target 1 (jobs:update): tool.sched_accel.targets.concurrency = 0 is not allowed" in message
    assert "target 1 (jobs:update): unknown key tool.sched_accel.targets.speed" in message


def test_config_without_targets_is_valid(tmp_path: Path) -> None:
    """A config with no [[targets]] loads, with no targets."""
    path = write(tmp_path / "sched_accel.toml", "concurrency = 3\n")
    settings = load_config(path)
    assert settings.targets == ()
    assert settings.concurrency == 3


def test_settings_are_frozen(tmp_path: Path) -> None:
    """Settings and targets cannot be changed after validation."""
    settings = load_config(write(tmp_path / "sched_accel.toml", ONE_TARGET))
    with pytest.raises(AttributeError):
        settings.concurrency = 1  # type: ignore[misc]
    with pytest.raises(AttributeError):
        settings.targets[0].mode = "prefetch"  # type: ignore[misc]


# -- SCHED_ACCEL_CONCURRENCY ------------------------------------------------------------


def test_concurrency_environment_override(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """$SCHED_ACCEL_CONCURRENCY overrides the top-level and every per-target bound."""
    source = "concurrency = 16\n" + textwrap.dedent(ONE_TARGET) + "concurrency = 32\n"
    path = write(tmp_path / "sched_accel.toml", source)
    monkeypatch.setenv("SCHED_ACCEL_CONCURRENCY", "1")
    settings = load_config(path)
    assert settings.concurrency == 1
    assert [t.concurrency for t in settings.targets] == [1]


@pytest.mark.parametrize("value", ["0", "-2", "eight", "1.5"])
def test_invalid_concurrency_environment_override(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    """An unusable $SCHED_ACCEL_CONCURRENCY is refused, naming the variable, its value and what is allowed."""
    monkeypatch.setenv("SCHED_ACCEL_CONCURRENCY", value)
    message = config_error(tmp_path, ONE_TARGET)
    assert f"$SCHED_ACCEL_CONCURRENCY = {value!r} is not allowed: a whole number from 1 to 10,000" in message


# -- validation -------------------------------------------------------------------------


def test_unknown_top_level_key(tmp_path: Path) -> None:
    """An unknown top-level key is named, with the keys that are allowed there."""
    message = config_error(tmp_path, "concurency = 4\n" + textwrap.dedent(ONE_TARGET))
    assert "unknown key concurency" in message
    assert "breaker_threshold, concurrency, control_file" in message


def test_unknown_target_key(tmp_path: Path) -> None:
    """An unknown key in a target names the target, the key and the keys allowed in a target."""
    message = config_error(tmp_path, textwrap.dedent(ONE_TARGET) + 'replacment = "accel:update"\n')
    assert "target 1 (jobs:update)" in message
    assert "unknown key targets.replacment" in message
    assert (
        "burst, concurrency, fetch, items, loop, max_age, methods, mode, on_error, per_second, pure, replacement, retry"
        in message
    )


@pytest.mark.parametrize(("raw", "shown"), [("0", "0"), ('"8"', "'8'"), ("true", "True"), ("-1", "-1"), ("2.0", "2.0")])
def test_bad_top_level_concurrency(tmp_path: Path, raw: str, shown: str) -> None:
    """concurrency must be a whole number from 1 to 10,000: the error quotes the value and says so."""
    message = config_error(tmp_path, f"concurrency = {raw}\n")
    assert f"concurrency = {shown} is not allowed: a whole number from 1 to 10,000" in message


@pytest.mark.parametrize(("raw", "shown"), [("0", "0"), ('"8"', "'8'"), ("true", "True")])
def test_bad_target_concurrency(tmp_path: Path, raw: str, shown: str) -> None:
    """A target's concurrency is checked the same way, and the error names the target."""
    message = config_error(tmp_path, textwrap.dedent(ONE_TARGET) + f"concurrency = {raw}\n")
    assert (
        f"target 1 (jobs:update): targets.concurrency = {shown} is not allowed: a whole number from 1 to 10,000"
        in message
    )


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("breaker_threshold = 0", "breaker_threshold = 0 is not allowed: a whole number from 1 to 10,000"),
        ("breaker_cooldown = 0", "breaker_cooldown = 0 is not allowed: seconds a tripped target stays off"),
        ("breaker_cooldown = true", "breaker_cooldown = True is not allowed"),
        (
            'log = "syslog"',
            'log = \'syslog\' is not allowed: "auto" (default: the stdlib logger when the app configured logging, else loguru), "loguru" or "stdlib"',
        ),
        ('control_file = ""', "control_file = '' is not allowed: a non-empty path"),
        ('targets = "jobs:update"', "targets = 'jobs:update' is not allowed: an array of tables"),
    ],
)
def test_bad_top_level_values(tmp_path: Path, line: str, expected: str) -> None:
    """Each top-level setting is validated, with its value and what is allowed in the message."""
    assert expected in config_error(tmp_path, line + "\n")


def test_loop_without_colon(tmp_path: Path) -> None:
    """A loop spec without a colon is refused with an example of the right form."""
    message = config_error(tmp_path, '[[targets]]\nloop = "jobs.update"\nreplacement = "accel:update"\n')
    assert "target 1 (jobs.update): targets.loop = 'jobs.update' is not allowed" in message
    assert '"module:qualname", a colon then' in message


def test_loop_inside_a_function(tmp_path: Path) -> None:
    """A <locals> qualname is refused: declare the enclosing function instead."""
    message = config_error(tmp_path, '[[targets]]\nloop = "jobs:main.<locals>.update"\nreplacement = "accel:update"\n')
    assert "targets.loop = 'jobs:main.<locals>.update' is not allowed" in message
    assert "declare the enclosing function as the loop" in message


def test_fetch_must_be_a_module_spec(tmp_path: Path) -> None:
    """Only `loop` may name a script path; a script path in `fetch` is refused."""
    message = config_error(tmp_path, '[[targets]]\nloop = "jobs:update"\nfetch = "client.py:get"\n')
    assert "targets.fetch = 'client.py:get' is not allowed" in message
    assert "a script path is allowed only for `loop`" in message


def test_bad_mode(tmp_path: Path) -> None:
    """mode must be "replace" or "prefetch"."""
    message = config_error(tmp_path, textwrap.dedent(ONE_TARGET) + 'mode = "parallel"\n')
    assert 'target 1 (jobs:update): targets.mode = \'parallel\' is not allowed: "replace" or "prefetch"' in message


def test_bad_on_error(tmp_path: Path) -> None:
    """on_error must be "fallback" or "propagate"."""
    message = config_error(tmp_path, textwrap.dedent(ONE_TARGET) + 'on_error = "ignore"\n')
    assert 'targets.on_error = \'ignore\' is not allowed: "fallback" (run the original) or "propagate"' in message


@pytest.mark.parametrize(("raw", "shown"), [("true", "True"), ('""', "''"), ("1.5", "1.5")])
def test_bad_items(tmp_path: Path, raw: str, shown: str) -> None:
    """items must be a parameter name or a position."""
    message = config_error(tmp_path, textwrap.dedent(ONE_TARGET) + f"items = {raw}\n")
    assert f"targets.items = {shown} is not allowed: where the items come from" in message


def test_replace_mode_needs_a_replacement(tmp_path: Path) -> None:
    """mode = "replace" without `replacement` says which key to add."""
    message = config_error(tmp_path, '[[targets]]\nloop = "jobs:update"\nmode = "replace"\nfetch = "client:get"\n')
    assert "target 1 (jobs:update): mode = 'replace' needs targets.replacement" in message


def test_target_with_only_a_loop_prefetches_its_http_requests(tmp_path: Path) -> None:
    """A target with only a loop is HTTP-level prefetch of the requests its last run made."""
    [target] = load_config(write(tmp_path / "sched_accel.toml", '[[targets]]\nloop = "jobs:update"\n')).targets
    assert target.http and target.fetch is None and target.items is None
    assert target.methods == {"GET", "HEAD"} and target.max_age == 60.0


def test_fetch_http_and_its_keys(tmp_path: Path) -> None:
    """``fetch = "http"`` is the same as none; ``methods`` narrows what is sent ahead."""
    source = '[[targets]]\nloop = "jobs:update"\nfetch = "http"\nitems = "tokens"\nmethods = ["get"]\nmax_age = 5\n'
    [target] = load_config(write(tmp_path / "sched_accel.toml", source)).targets
    assert target.http and target.methods == {"GET"} and target.max_age == 5.0


@pytest.mark.parametrize(
    ("line", "key"),
    [
        ('methods = ["POST"]', "targets.methods"),
        ("methods = []", "targets.methods"),
        ("max_age = 0", "targets.max_age"),
        ('pure = "yes"', "targets.pure"),
    ],
)
def test_http_keys_out_of_range(tmp_path: Path, line: str, key: str) -> None:
    """Only GET and HEAD may ever be sent ahead; the other keys are checked as well."""
    message = config_error(tmp_path, f'[[targets]]\nloop = "jobs:update"\n{line}\n')
    assert key in message


def test_a_per_item_function_needs_items(tmp_path: Path) -> None:
    """Function-level prefetch needs to know the items; the message says how to do without."""
    message = config_error(tmp_path, '[[targets]]\nloop = "jobs:update"\nfetch = "client:get"\n')
    assert "needs targets.items" in message and "leave fetch out" in message


def test_target_without_loop(tmp_path: Path) -> None:
    """A target table without `loop` is refused, naming the missing key."""
    message = config_error(tmp_path, '[[targets]]\nreplacement = "accel:update"\n')
    assert "target 1: missing key targets.loop" in message


def test_duplicate_loop(tmp_path: Path) -> None:
    """The same loop declared twice is refused at its second declaration."""
    message = config_error(tmp_path, textwrap.dedent(ONE_TARGET) * 2)
    assert "target 2 (jobs:update): targets.loop = 'jobs:update' is not allowed: each loop is declared once" in message


@pytest.mark.parametrize(
    "loop",
    ['"""jobs:update"""', '"""\njobs:update"""', "'''jobs:update'''", "'''\njobs:update'''"],
    ids=["basic-one-line", "basic-multi-line", "literal-one-line", "literal-multi-line"],
)
def test_multi_line_string_loop_is_refused(tmp_path: Path, loop: str) -> None:
    """A loop written as a multi-line string (which the start-up pre-scan cannot see) is refused."""
    message = config_error(tmp_path, f'[[targets]]\nloop = {loop}\nreplacement = "accel:update"\n')
    assert "targets.loop = 'jobs:update' is not allowed: write it as a one-line string" in message


@pytest.mark.parametrize("loop", ['"jobs:update"', "'jobs:update'", '  "jobs:update"  # the nightly job'])
def test_one_line_string_loop_is_accepted(tmp_path: Path, loop: str) -> None:
    """Basic and literal one-line strings, with spaces and a comment, pass the pre-scan check."""
    path = write(tmp_path / "sched_accel.toml", f'[[targets]]\nloop ={loop}\nreplacement = "accel:update"\n')
    assert [t.name for t in load_config(path).targets] == ["jobs:update"]


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    """Several problems are reported together: the first, then how many more and what they are."""
    message = config_error(tmp_path, 'concurrency = 0\nlog = "syslog"\n' + textwrap.dedent(ONE_TARGET) + 'mode = "x"\n')
    assert message.startswith(str(tmp_path / "sched_accel.toml") + ": concurrency = 0 is not allowed")
    assert "(and 2 more: " in message
    assert "log = 'syslog'" in message
    assert "targets.mode = 'x'" in message


# -- unreadable files -------------------------------------------------------------------


def test_broken_toml(tmp_path: Path) -> None:
    """A file that is not TOML is refused with the parser's position and a hint to fix the syntax."""
    message = config_error(tmp_path, '[[targets]\nloop = "jobs:update"\n')
    assert "not valid TOML" in message
    assert "line 1" in message
    assert message.endswith("fix the syntax")


def test_not_utf8(tmp_path: Path) -> None:
    """A file that is not UTF-8 is refused like broken TOML."""
    path = tmp_path / "sched_accel.toml"
    path.write_bytes(b'log = "\xff"\n')
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(path)


def test_missing_file(tmp_path: Path) -> None:
    """A config path that does not exist is refused, naming the path."""
    path = tmp_path / "nope.toml"
    with pytest.raises(ConfigError, match="cannot read the config") as info:
        load_config(path)
    assert str(path) in str(info.value)


def test_missing_file_named_by_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """$SCHED_ACCEL_CONFIG naming a missing file is an error, not a silent fallback to discovery."""
    write(tmp_path / "sched_accel.toml", ONE_TARGET)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SCHED_ACCEL_CONFIG", str(tmp_path / "nope.toml"))
    with pytest.raises(ConfigError, match="nope.toml: cannot read the config"):
        load_config()


# -- the control file -------------------------------------------------------------------


def test_control_file_is_relative_to_the_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A relative control_file is resolved against the config's folder, not the working directory,
    and names this app's control file when it lands in the state folder."""
    monkeypatch.delenv("SCHED_ACCEL_CONTROL")
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "conf" / "xdg"))
    path = write(tmp_path / "conf" / "sched_accel.toml", 'control_file = "xdg/sched_accel/billing.json"\n')
    monkeypatch.chdir(tmp_path)
    named = str(tmp_path / "conf" / "xdg" / "sched_accel" / "billing.json")
    for settings in (load_config("conf/sched_accel.toml"), load_config(path)):
        assert settings.app_control_file == settings.app_control == named
        assert settings.control_file == str(tmp_path / "conf" / "xdg" / "sched_accel" / "control.json")  # every app's


@pytest.mark.parametrize(
    ("named", "why"),
    [
        ("{tmp}/var/control.json", "is not in the state folder {state}, and state is kept only there"),
        ("{tmp}/var/hosts.json", "is not in the state folder"),
        ("{state}/apps/other/control.json", "is not in the state folder"),
        ("{state}/control.json", "it is the user-wide control file, which switches every app of this user"),
    ],
    ids=["elsewhere", "beside-other-state", "another-apps-folder", "every-apps"],
)
def test_a_control_file_outside_the_state_folder_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, named: str, why: str
) -> None:
    """A config's control_file that is not a file of its own directly in the state folder is a
    config error saying where state is kept and what to do (state is never written where a config chose)."""
    monkeypatch.delenv("SCHED_ACCEL_CONTROL")
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    state = tmp_path / "xdg" / "sched_accel"
    path = write(tmp_path / "sched_accel.toml", f'control_file = "{named.format(tmp=tmp_path, state=state)}"\n')
    with pytest.raises(ConfigError, match="control_file = .* is not allowed: ") as raised:
        load_config(path)
    assert why.format(state=state) in str(raised.value)
    assert "remove the key" in str(raised.value)


def test_control_environment_variable_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """$SCHED_ACCEL_CONTROL names the state folder: the config's control_file is then not used."""
    monkeypatch.setenv("SCHED_ACCEL_CONTROL", str(tmp_path / "env.json"))
    path = write(tmp_path / "sched_accel.toml", 'control_file = "/anywhere/control.json"\n')
    settings = load_config(path)
    assert settings.control_file == str(tmp_path / "env.json")
    assert settings.app_control_file is None
    assert settings.app_control == os.path.join(settings.app_dir, "control.json")
    assert os.path.dirname(settings.app_dir) == str(tmp_path / "apps")


def test_default_control_file_under_xdg_state_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without either, the user-wide control file is $XDG_STATE_HOME/sched_accel/control.json, and
    the app's state (its own control file too) is in apps/<app>/ beside it."""
    monkeypatch.delenv("SCHED_ACCEL_CONTROL")
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    path = write(tmp_path / "sched_accel.toml", ONE_TARGET)
    settings = load_config(path)
    state = os.path.join(str(tmp_path / "xdg"), "sched_accel")
    assert settings.control_file == os.path.join(state, "control.json")
    assert os.path.dirname(settings.app_dir) == os.path.join(state, "apps")
    assert settings.app_control == os.path.join(settings.app_dir, "control.json")


# -- [retry] and [hosts] --------------------------------------------------------------------------

PREFETCH_TARGET = """
    [[targets]]
    loop = "jobs:update"
    fetch = "client:get"
    items = "tokens"
"""


def test_retry_and_hosts_defaults(tmp_path: Path) -> None:
    from sched_accel._settings import RetrySettings

    settings = load_config(write(tmp_path / "sched_accel.toml", PREFETCH_TARGET))
    assert settings.retry == RetrySettings() == settings.targets[0].retry
    assert (settings.retry.enabled, settings.retry.deadline, settings.retry.attempts) == (True, 120.0, 4)
    assert settings.hosts == {}


def test_retry_table_and_a_targets_override(tmp_path: Path) -> None:
    """A target's ``retry`` table overrides only the keys it names; the rest come from [retry]."""
    source = """
        [retry]
        deadline = 30
        on = ["json:JSONDecodeError"]
        patterns = ["try again"]

        [[targets]]
        loop = "jobs:update"
        fetch = "client:get"
        items = "tokens"
        retry = { attempts = 2 }

        [[targets]]
        loop = "jobs:other"
        fetch = "client:get"
        items = "tokens"
    """
    settings = load_config(write(tmp_path / "sched_accel.toml", source))
    first, second = settings.targets
    assert (first.retry.deadline, first.retry.attempts, first.retry.on) == (30.0, 2, ("json:JSONDecodeError",))
    assert second.retry == settings.retry and second.retry.patterns == ("try again",)


def test_hosts_tables(tmp_path: Path) -> None:
    """The issue's example, in a pyproject.toml: names are lower-cased, a port may be given."""
    body = """
        [[tool.sched_accel.targets]]
        loop = "jobs:update"
        fetch = "client:get"
        items = "tokens"
        per_second = 5
        burst = 2

        [tool.sched_accel.hosts."API.example.com"]
        concurrency = 3
        per_second = 0.5
        burst = 1

        [tool.sched_accel.hosts."127.0.0.1:8080"]
        adaptive = false
        breaker_failures = 2
        breaker_cooldown = 5
    """
    settings = load_config(write(tmp_path / "pyproject.toml", pyproject(body)))
    api, local = settings.hosts["api.example.com"], settings.hosts["127.0.0.1:8080"]
    assert (api.concurrency, api.per_second, api.burst, api.adaptive) == (3, 0.5, 1, True)
    assert (local.concurrency, local.adaptive, local.breaker_failures, local.breaker_cooldown) == (None, False, 2, 5.0)
    assert (settings.targets[0].per_second, settings.targets[0].burst) == (5.0, 2)


def test_a_hosts_reads(tmp_path: Path) -> None:
    """``reads`` declares a host's requests that only read: parsed once, reachable per host."""
    source = """
        [hosts."rpc.example.com"]
        reads = ["POST /graphql", "post /search/*", "jsonrpc:getThing*"]
    """
    settings = load_config(write(tmp_path / "sched_accel.toml", source + textwrap.dedent(PREFETCH_TARGET)))
    reads = settings.hosts["rpc.example.com"].reads
    assert reads.requests == (("POST", "/graphql", False), ("POST", "/search/", True))
    assert reads.rpc("getThingById") and not reads.rpc("setThing") and reads.request("POST", "/search/users")
    assert settings.hosts["rpc.example.com"].per_second is None  # the limits keep their defaults


def test_host_settings_built_in_code_parse_their_reads() -> None:
    """HostSettings(reads=[...]) made by a program holds the parsed reads, like one from TOML;
    an entry that is neither form is a ValueError naming the field."""
    from sched_accel._settings import HostSettings

    assert HostSettings(reads=["jsonrpc:ping"]).reads.jsonrpc == ("ping",)  # type: ignore[arg-type]
    assert HostSettings().reads.requests == () and HostSettings().reads.jsonrpc == ()
    with pytest.raises(ValueError, match=r"hosts.reads = \['GET'\] is not allowed"):
        HostSettings(reads=["GET"])  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("[retry]\ndeadline = 0\n", "retry.deadline = 0 is not allowed"),
        ("[retry]\nattempts = 1.5\n", "retry.attempts = 1.5 is not allowed: a whole number from 1 to 1,000"),
        ('[retry]\non = ["JSONDecodeError"]\n', 'more exception types to retry, as "module:QualName"'),
        ('[retry]\npatterns = ["(unclosed"]\n', "regular expressions"),
        ("[retry]\nretries = 3\n", "unknown key retry.retries; the keys here are attempts, deadline, enabled"),
        ('[hosts."api.example.com"]\nper_second = -1\n', 'hosts."api.example.com".per_second = -1 is not allowed'),
        ('[hosts."api.example.com"]\nrate = 1\n', 'unknown key hosts."api.example.com".rate'),
        ('[hosts."https://api.example.com/"]\nburst = 1\n', "a host name, optionally with its port"),
        (
            '[hosts."api.example.com"]\nreads = ["POST graphql"]\n',
            "hosts.\"api.example.com\".reads = ['POST graphql'] is not allowed: requests of this host that only read",
        ),
        ('[hosts."api.example.com"]\nreads = "POST /graphql"\n', '"METHOD /path" (a path ending in * is a prefix)'),
        ('[hosts."api.example.com"]\nreads = ["jsonrpc:"]\n', '"jsonrpc:method" (* matches any characters)'),
        ("hosts = 3\n", 'tables [hosts."api.example.com"]'),
    ],
)
def test_bad_retry_and_hosts_keys_say_what_to_write(tmp_path: Path, source: str, expected: str) -> None:
    message = config_error(tmp_path, source + textwrap.dedent(PREFETCH_TARGET))
    assert expected in message
