"""The ``sched-accel`` command (run as ``python -m sched_accel``): help, check, doctor, on/off/status, run."""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path

import pytest

import _sched_accel_boot
import sched_accel
from sched_accel import _cli

from .conftest import App

FLAG = "ENABLE_SCHEDULER_OPTIMIZATION"

JOBS = """
    def update(tokens):
        print("sequential", tokens)
        return [t * 2 for t in tokens]
"""
ACCEL = """
    def update(tokens):
        print("accelerated", tokens)
        return [t * 2 for t in tokens]
"""
CONFIG = """
    [[targets]]
    loop = "legacy:update"
    replacement = "accel:update"
    concurrency = 4

    [[targets]]
    loop = "jobs/tracker.py:main"
    replacement = "tracker_accel:main"
"""
TRACKER = """
    def main():
        print("sequential")


    if __name__ == "__main__":
        main()
"""

_EVENT = re.compile(r"\bsched_accel\.([a-z_]+)")


def cli(app: App, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """``python -m sched_accel ARGS`` in the app folder, with its config named explicitly."""
    return app.run("-m", "sched_accel", *args, env={"SCHED_ACCEL_CONFIG": str(app.root / "sched_accel.toml"), **env})


@pytest.fixture
def project(app: App) -> App:
    """An app with a module target and a script target, both resolvable."""
    app.write("jobs/tracker.py", TRACKER)
    app.write("jobs/tracker_accel.py", "def main():\n    print('parallel')\n")
    app.write("legacy.py", JOBS)
    app.write("accel.py", ACCEL)
    app.config(CONFIG)
    return app


CONTROL = Path("state") / "control.json"


# -- help ------------------------------------------------------------------------------------
def test_help_shows_the_commands_and_examples(app: App) -> None:
    """--help exits 0 and shows every command and the worked examples."""
    out = app.run("-m", "sched_accel", "--help")
    assert out.returncode == 0, out.stderr
    for text in ("run", "check", "doctor", "status", "off", "on", "examples:", "sched-accel run -- python job.py"):
        assert text in out.stdout
    assert FLAG in out.stdout


def test_no_command_prints_help_and_fails(app: App) -> None:
    """Without a command the help is printed and the exit status is 2 (usage error)."""
    out = app.run("-m", "sched_accel")
    assert out.returncode == 2
    assert "examples:" in out.stdout


# -- check -----------------------------------------------------------------------------------
def table(stdout: str) -> dict[str, list[str]]:
    """The rows of check's table, by target name (the table ends at the first blank line)."""
    lines = stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("TARGET "))
    end = next((i for i in range(header, len(lines)) if not lines[i].strip()), len(lines))
    rows = [re.split(r"\s{2,}", line.strip()) for line in lines[header:end]]
    return {row[0]: row for row in rows}


_PART = re.compile(r"^  (\S+)\s+(loop|replacement|fetch|items)\s+(.+?)\s{2,}(ok|note|problem)\s{2,}(.+)$")


def parts(stdout: str) -> dict[tuple[str, str], tuple[str, str, str]]:
    """check's lines under the table: (target, part) -> (as declared, status, detail)."""
    found = [_PART.match(line) for line in stdout.splitlines()]
    return {(m[1], m[2]): (m[3], m[4], m[5]) for m in found if m}


def test_check_lists_every_target_and_succeeds(project: App) -> None:
    """check prints a row per target (module and script), resolved, and exits 0."""
    out = cli(project, "check")
    assert out.returncode == 0, out.stderr
    rows = table(out.stdout)
    assert rows["TARGET"][:5] == ["TARGET", "RESOLVED", "WOULD PATCH", "MODE", "CONCURRENCY"]
    assert rows["legacy:update"] == ["legacy:update", "yes", "no", "replace", "4", "flag is off"]
    assert rows["jobs/tracker.py:main"][:3] == ["jobs/tracker.py:main", "yes", "no"]
    assert "sched_accel.toml" in out.stdout.splitlines()[0]


def test_check_with_the_flag_on_would_patch_and_does_not_patch_itself(project: App) -> None:
    """check with the flag on says `yes` and logs nothing: the command never hooks itself."""
    out = cli(project, "check", **{FLAG: "1"})
    assert out.returncode == 0, out.stderr
    assert table(out.stdout)["legacy:update"][:3] == ["legacy:update", "yes", "yes"]
    assert out.stderr == ""


def test_check_reports_a_switched_off_target(project: App) -> None:
    """check says a target would not be patched while `sched-accel off` holds it."""
    assert cli(project, "off", "legacy:update").returncode == 0
    out = cli(project, "check", **{FLAG: "1"})
    assert out.returncode == 0, out.stderr
    row = table(out.stdout)["legacy:update"]
    assert row[:3] == ["legacy:update", "yes", "no"]
    assert "switched off" in row[-1]


def test_check_shows_each_part_resolved_on_its_own(project: App) -> None:
    """Under the table, one line per part of each target: what it says, ok, and what it resolved to."""
    out = cli(project, "check")
    assert out.returncode == 0, out.stderr
    assert parts(out.stdout) == {
        ("legacy:update", "loop"): ("legacy:update", "ok", "function, sync"),
        ("legacy:update", "replacement"): ("accel:update", "ok", "function, sync"),
        ("jobs/tracker.py:main", "loop"): (
            "jobs/tracker.py:main",
            "ok",
            "defined in the script (resolved when it runs)",
        ),
        ("jobs/tracker.py:main", "replacement"): ("tracker_accel:main", "ok", "function, sync"),
    }


PRICES = """
    import httpx

    CLIENT = httpx.Client()


    def get_price(token):
        return CLIENT.get(f"http://prices.invalid/{token}").json()


    def report_price(token):
        price = get_price(token)
        print(token, price)
        return price


    def update_prices(tokens):
        return [get_price(t) for t in tokens]


    def report_prices(tokens):
        return [report_price(t) for t in tokens]


    SEEN = set()


    def remember_price(token):
        SEEN.add(token)
        return get_price(token)


    def remember_prices(tokens):
        return [remember_price(t) for t in tokens]


    def download(tokens):
        return [CLIENT.get(f"http://prices.invalid/{t}") for t in tokens]
"""
PREFETCH = """
    [[targets]]
    loop = "prices:update_prices"
    fetch = "prices:get_price"
    items = "tokens"

    [[targets]]
    loop = "prices:report_prices"
    fetch = "prices:report_price"
    items = "tokens"

    [[targets]]
    loop = "prices:remember_prices"
    fetch = "prices:remember_price"
    items = "tokens"

    [[targets]]
    loop = "prices:download"
    items = 0
"""


@pytest.fixture
def prefetching(app: App) -> App:
    """An app with prefetch targets: a pure per-item function, one that prints, HTTP level."""
    app.write("prices.py", PRICES)
    app.config(PREFETCH)
    return app


def test_check_shows_how_a_fetch_is_run_ahead(prefetching: App) -> None:
    """A fetch is shadowed, printing or not; one whose shadow would change state the real run
    reads is not (a note naming the line, not a problem); HTTP level says so."""
    out = cli(prefetching, "check")
    assert out.returncode == 0, out.stdout + out.stderr
    found = parts(out.stdout)
    shadowed = "shadowed (function, sync): run ahead for its reads, its effects stopped; the real call runs in place"
    assert found["prices:update_prices", "fetch"] == (
        "prices:get_price",
        "ok",
        f"{shadowed}; it changes no state outside itself as far as its code shows",
    )
    assert found["prices:report_prices", "fetch"][1] == "ok"  # it prints: its shadow's prints are dropped
    declared, status, detail = found["prices:remember_prices", "fetch"]
    assert (declared, status) == ("prices:remember_price", "note")
    assert re.match(
        r"calls SEEN\.add \(.*prices\.py:\d+.*\): a shadow could change what the real run reads", detail
    ) or ("SEEN" in detail and "prices.py:" in detail and "set shadow = true" in detail), detail
    assert found["prices:update_prices", "items"] == ("argument 'tokens'", "ok", "the loop's parameter 'tokens'")
    assert found["prices:download", "fetch"] == (
        "(none)",
        "ok",
        "HTTP level: the loop's GET and HEAD requests are sent ahead",
    )
    assert found["prices:download", "items"] == ("argument 0", "ok", "the loop's parameter 'tokens'")
    assert all(row[1] == "yes" for name, row in table(out.stdout).items() if name != "TARGET")

    config = prefetching.root / "sched_accel.toml"
    config.write_text(
        config.read_text().replace('fetch = "prices:report_price"', 'fetch = "prices:report_price"\npure = true')
    )
    pure = parts(cli(prefetching, "check").stdout)["prices:report_prices", "fetch"]
    assert pure == (
        "prices:report_price",
        "ok",
        "function level (function, sync), pure = true (declared): its return value is served",
    )


@pytest.mark.parametrize(
    ("replace", "suggestion"),
    [
        (
            ('"prices:get_price"', '"prices:get_prise"'),
            "prices has no attribute 'get_prise' (did you mean 'get_price'?)",
        ),
        (('"prices:get_price"', '"price:get_price"'), "No module named 'price' (did you mean 'prices'?)"),
    ],
    ids=["name", "module"],
)
def test_check_suggests_the_close_name_of_a_typo(prefetching: App, replace: tuple[str, str], suggestion: str) -> None:
    """A misspelt fetch (its name or its module) is a problem, and the names close to it are suggested."""
    config = prefetching.root / "sched_accel.toml"
    config.write_text(config.read_text().replace(*replace))
    out = cli(prefetching, "check")
    assert out.returncode == 1
    declared, status, detail = parts(out.stdout)["prices:update_prices", "fetch"]
    assert (declared, status) == (replace[1].strip('"'), "problem")
    assert suggestion in detail
    assert table(out.stdout)["prices:update_prices"][1] == "no"
    assert parts(out.stdout)["prices:update_prices", "loop"][1] == "ok"  # each part on its own


ITEMS = """
    [[targets]]
    loop = "prices:update_prices"
    items = "learned"

    [[targets]]
    loop = "prices:report_prices"
    items = "prices:TOKENS"

    [[targets]]
    loop = "prices:download"
    items = "returned-by:prices:active"

    [[targets]]
    loop = "prices:refresh"
    items = 1

    [[targets]]
    loop = "prices:Book.reprice"
    items = "token"
"""


def test_check_finds_the_items_of_every_form(prefetching: App) -> None:
    """Each items form is resolved: learned, a module object, a call's return value, a parameter by position or name."""
    prefetching.write(
        "prices.py",
        textwrap.dedent(PRICES)
        + "\nTOKENS = ['a', 'b']\n\n\ndef active():\n    return TOKENS\n\n\ndef refresh(tokens):\n    return tokens\n"
        + "\n\nclass Book:\n    def reprice(self, tokens):\n        return tokens\n",
    )
    prefetching.config(ITEMS)
    out = cli(prefetching, "check")
    assert out.returncode == 1
    found = {target: found[1:] for (target, part), found in parts(out.stdout).items() if part == "items"}
    assert found == {
        "prices:update_prices": ("ok", "the requests of the loop's previous run"),
        "prices:report_prices": ("ok", "a list of 2, read when the loop starts"),
        "prices:download": ("ok", "function, sync: what it returns inside the loop"),
        "prices:refresh": ("problem", "the loop takes only 1 argument(s): tokens"),
        "prices:Book.reprice": ("problem", "the loop has no parameter of that name; it has tokens"),
    }
    assert table(out.stdout)["prices:refresh"][-1] == "problem: items (see below)"
    assert "2 problem(s) found" in out.stderr


def test_check_in_replace_mode_shows_the_counted_fetch_and_the_items(project: App) -> None:
    """A replace-mode fetch is counted (a library's own refused); a script loop's items are checked when it runs."""
    project.write("client.py", "def fetch(token):\n    return token\n")
    config = project.root / "sched_accel.toml"
    text = config.read_text().replace("concurrency = 4", 'concurrency = 4\nfetch = "client:fetch"\nitems = "tokens"')
    config.write_text(
        text.replace('replacement = "tracker_accel:main"', 'replacement = "tracker_accel:main"\nitems = 0')
    )
    out = cli(project, "check")
    assert out.returncode == 0, out.stdout + out.stderr
    found = parts(out.stdout)
    assert found["legacy:update", "fetch"] == ("client:fetch", "ok", "function, sync: its calls are counted")
    assert found["legacy:update", "items"] == ("argument 'tokens'", "ok", "the loop's parameter 'tokens'")
    assert found["jobs/tracker.py:main", "items"] == (
        "argument 0",
        "note",
        "not checked here: a script's loop is seen when it runs",
    )
    config.write_text(
        config.read_text().replace('"client:fetch"', '"requests:get"').replace('"legacy:update"', '"legacy:updat"')
    )
    out = cli(project, "check")
    assert out.returncode == 1
    found = parts(out.stdout)
    _, status, detail = found["legacy:updat", "fetch"]
    assert status == "problem" and detail.endswith("so it is never run ahead per item; remove `fetch`")
    assert found["legacy:updat", "items"][1:] == ("note", "not checked: the loop does not resolve")
    assert table(out.stdout)["legacy:updat"][-1] == "problem: loop, fetch (see below)"


def test_check_rejects_a_library_method_as_fetch(prefetching: App) -> None:
    """fetch = "httpx:Client.get" can never be run ahead per item: a problem, with the form to use instead."""
    config = prefetching.root / "sched_accel.toml"
    config.write_text(config.read_text().replace('"prices:get_price"', '"httpx:Client.get"'))
    out = cli(prefetching, "check")
    assert out.returncode == 1
    assert table(out.stdout)["prices:update_prices"][:3] == ["prices:update_prices", "no", "no"]
    declared, status, detail = parts(out.stdout)["prices:update_prices", "fetch"]
    assert (declared, status) == ("httpx:Client.get", "problem")
    assert detail.startswith("is defined in httpx (httpx._client), an HTTP client library")
    assert detail.endswith(
        'remove `fetch` (or say fetch = "http"): HTTP-level prefetch sends the loop\'s GET requests ahead'
    )
    assert "1 problem(s) found" in out.stderr


@pytest.mark.parametrize(
    ("replace", "detail"),
    [
        (('"legacy:update"', '"legacy:updat"'), "has no attribute 'updat'"),
        (('"accel:update"', '"accel_gone:update"'), "No module named 'accel_gone'"),
        (('"jobs/tracker.py:main"', '"jobs/tracker.py:mian"'), "defines no top-level 'mian'"),
        (('"jobs/tracker.py:main"', '"jobs/nothere.py:main"'), "cannot read the script"),
    ],
    ids=["loop", "replacement", "script-name", "script-file"],
)
@pytest.mark.slow
def test_check_fails_when_a_target_does_not_resolve(project: App, replace: tuple[str, str], detail: str) -> None:
    """check exits non-zero and its row says what does not resolve."""
    config = project.root / "sched_accel.toml"
    config.write_text(config.read_text().replace(*replace))
    out = cli(project, "check")
    assert out.returncode == 1
    assert detail in out.stdout
    assert "1 problem(s) found" in out.stderr
    assert any(row[1] == "no" for name, row in table(out.stdout).items() if name != "TARGET")


@pytest.mark.parametrize(
    ("config", "detail"),
    [
        ('[[targets]\nloop = "legacy:update"\n', "not valid TOML"),
        ('[[targets]]\nloop = "legacy:update"\nreplacement = "accel:update"\nspeed = 3\n', "speed; the keys here are"),
        ('[[targets]]\nloop = "legacy:update"\nreplacement = "accel:update"\nconcurrency = 0\n', "concurrency = 0"),
    ],
    ids=["syntax", "unknown-key", "bad-value"],
)
def test_check_fails_on_a_broken_config(project: App, config: str, detail: str) -> None:
    """check exits non-zero and names the file and what to fix when the config is broken."""
    (project.root / "sched_accel.toml").write_text(config)
    out = cli(project, "check")
    assert out.returncode == 2
    assert detail in out.stderr
    assert str(project.root / "sched_accel.toml") in out.stderr
    assert out.stderr.startswith("sched-accel: ")


def test_check_says_each_problem_of_a_config_on_its_own_line(project: App) -> None:
    """A config with several problems: check names the file and how many, then each problem on
    its own line, in the order found (``ConfigError.problems``), not one line of them all."""
    (project.root / "sched_accel.toml").write_text(
        'concurrency = 0\n[[targets]]\nloop = "legacy:update"\nmax_age = -1\nspeed = 3\n'
    )
    out = cli(project, "check")
    assert out.returncode == 2
    lines = out.stderr.splitlines()
    assert str(project.root / "sched_accel.toml") in lines[0] and "3 problems:" in lines[0]
    assert any("concurrency = 0 is not allowed" in line for line in lines[1:])
    assert any("unknown key targets.speed" in line for line in lines[1:])
    assert any("targets.max_age = -1 is not allowed" in line for line in lines[1:])
    assert not any("more:" in line for line in lines)


def test_check_without_a_config_says_how_to_make_one(app: App) -> None:
    """check with no config anywhere exits non-zero and says where a config is looked for."""
    out = app.run("-m", "sched_accel", "check")
    assert out.returncode == 2
    assert "no config found" in out.stderr
    assert "SCHED_ACCEL_CONFIG" in out.stderr


# -- doctor ----------------------------------------------------------------------------------
def test_doctor_finds_the_start_up_file_and_the_running_hook(project: App) -> None:
    """doctor reports the installed sched_accel.pth and that the hook runs in a child python."""
    out = cli(project, "doctor")
    assert out.returncode == 0, out.stdout + out.stderr
    pth = os.path.join(sysconfig.get_paths()["purelib"], "sched_accel.pth")
    assert f"[ok]   start-up file installed: {pth}" in out.stdout
    assert "[ok]   the start-up hook runs at interpreter start" in out.stdout
    assert "[ok]   config:" in out.stdout
    assert "[FAIL]" not in out.stdout


def test_doctor_tries_that_state_can_be_written_and_leaves_nothing(project: App, tmp_path: Path) -> None:
    """doctor says whether this app's state can be written, by trying (root passes every
    permission check): a folder under /proc refuses; a folder not made yet is tried in its
    nearest parent, which is left as it was (issue 21: it said [ok] for a control file it could
    not write)."""
    refused = cli(project, "doctor", SCHED_ACCEL_CONTROL="/proc/sched-accel-nowhere/control.json")
    assert refused.returncode == 1
    assert "[FAIL] state cannot be written in /proc/sched-accel-nowhere/apps/" in refused.stdout
    assert "SCHED_ACCEL_DISABLED_TARGETS" in refused.stdout
    parent = tmp_path / "home"
    parent.mkdir()
    fine = cli(project, "doctor", SCHED_ACCEL_CONTROL=str(parent / "state" / "control.json"))
    assert f"[ok]   state can be written in {parent / 'state' / 'apps'}" in fine.stdout, fine.stdout
    assert list(parent.iterdir()) == []  # tried, nothing made


def test_doctor_fails_on_a_broken_config(project: App) -> None:
    """doctor exits non-zero with a [FAIL] config line when the config does not load."""
    (project.root / "sched_accel.toml").write_text("[[targets]\n")
    out = cli(project, "doctor")
    assert out.returncode == 1
    assert "[FAIL] config:" in out.stdout and "not valid TOML" in out.stdout


# -- off, on, status -------------------------------------------------------------------------
@pytest.mark.slow
def test_off_on_status_round_trip(project: App) -> None:
    """off/on (all or one target) write the app's owner-only control file that status reads back."""
    control = project.state() / "control.json"

    def states() -> dict[str, str]:
        out = cli(project, "status")
        assert out.returncode == 0, out.stderr
        assert f"control file: {control}" in out.stdout
        return dict(re.findall(r"^  (\S+): (on|off) ", out.stdout, re.MULTILINE))

    both = {"legacy:update", "jobs/tracker.py:main"}
    assert states() == dict.fromkeys(both, "on")
    assert not control.exists()

    off = cli(project, "off")
    assert off.returncode == 0, off.stderr
    assert "every target switched off" in off.stdout
    assert stat.S_IMODE(control.stat().st_mode) == 0o600
    assert stat.S_IMODE(control.parent.stat().st_mode) == 0o700
    assert json.loads(control.read_text()) == {"version": 1, "off": ["*"]}
    assert not (project.root / CONTROL).exists()  # the user-wide file: every app's
    assert states() == dict.fromkeys(both, "off")

    still = cli(project, "on", "legacy:update")
    assert still.returncode == 0
    assert "`sched-accel on` turns all of them back on" in still.stderr
    assert states() == dict.fromkeys(both, "off")

    assert cli(project, "on").returncode == 0
    assert states() == dict.fromkeys(both, "on")

    assert cli(project, "off", "legacy:update").returncode == 0
    assert states() == {"legacy:update": "off", "jobs/tracker.py:main": "on"}
    assert stat.S_IMODE(control.stat().st_mode) == 0o600

    assert cli(project, "on", "legacy:update").returncode == 0
    assert states() == dict.fromkeys(both, "on")
    assert json.loads(control.read_text()) == {"version": 1, "off": []}


def test_off_for_an_undeclared_target_warns(project: App) -> None:
    """off NAME for a name the config does not declare still switches it, with a note."""
    out = cli(project, "off", "legacy:updat")
    assert out.returncode == 0
    assert "is not a target of" in out.stderr


def test_status_refuses_a_control_file_others_can_write(project: App) -> None:
    """status exits non-zero and says why when the control file is writable by others."""
    assert cli(project, "off").returncode == 0
    (project.state() / "control.json").chmod(0o666)
    out = cli(project, "status")
    assert out.returncode == 1
    assert "refused" in out.stdout and "chmod 600" in out.stdout
    again = cli(project, "on")
    assert again.returncode == 1
    assert "cannot write the control file" in again.stderr


# -- run -------------------------------------------------------------------------------------
def test_run_needs_a_command(app: App) -> None:
    """run without a command exits 2 and shows the usage."""
    out = app.run("-m", "sched_accel", "run", "--")
    assert out.returncode == 2
    assert "usage: sched-accel run -- python job.py" in out.stderr


def test_run_puts_the_bootstrap_first_on_pythonpath(app: App) -> None:
    """run execs the command with the bootstrap folder first on PYTHONPATH, the old value after it."""
    probe = "import os; print(os.environ['PYTHONPATH'])"
    out = app.run("-m", "sched_accel", "run", "--", sys.executable, "-c", probe, env={FLAG: "1", "PYTHONPATH": "/x/y"})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == os.pathsep.join([_cli.BOOTSTRAP, "/x/y"])
    assert os.path.isfile(os.path.join(_cli.BOOTSTRAP, "sitecustomize.py"))


def test_run_without_a_sitecustomize_of_the_app_is_quiet(app: App) -> None:
    """An app with no sitecustomize of its own (most): ours stands as sitecustomize, so the child's
    site module does not print "Error in sitecustomize ... KeyError" (it did, on every run)."""
    probe = "import sys; print(sys.modules['sitecustomize'].__file__)"
    out = app.run("-m", "sched_accel", "run", "--", sys.executable, "-c", probe, env={FLAG: "1"})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == os.path.join(_cli.BOOTSTRAP, "sitecustomize.py")
    assert "Error in sitecustomize" not in out.stderr and "KeyError" not in out.stderr, out.stderr


@pytest.mark.slow
def test_subcommands_take_config_after_them_and_show_examples(app: App) -> None:
    """--config before or after the subcommand; --version; each subcommand's --help has examples."""
    assert cli(app, "--version").stdout.strip() == f"sched-accel {sched_accel.__version__}"
    named = cli(app, "check", "--config", str(app.root / "nowhere.toml"))
    assert named.returncode != 0 and "nowhere.toml" in named.stderr
    for command in ("run", "check", "doctor", "status", "off", "on"):
        helped = cli(app, command, "--help")
        assert helped.returncode == 0 and "examples:\n  sched-accel " in helped.stdout.replace(
            "ENABLE_SCHEDULER_OPTIMIZATION=1 ", ""
        ), command


def test_run_with_the_flag_off_says_so(app: App) -> None:
    """run with the flag off still runs the command, and says it runs unaccelerated."""
    out = app.run("-m", "sched_accel", "run", "--", sys.executable, "-c", "print('hi')")
    assert out.returncode == 0
    assert out.stdout == "hi\n"
    assert "runs unaccelerated" in out.stderr


def test_run_reports_a_command_that_does_not_exist(app: App) -> None:
    """run exits 127 with a sentence when the command cannot be started."""
    out = app.run("-m", "sched_accel", "run", "--", "no-such-command-sched-accel")
    assert out.returncode == 127
    assert "cannot run 'no-such-command-sched-accel'" in out.stderr


def test_run_activates_the_hook_where_pth_files_are_not_read(app: App) -> None:
    """run patches the child of an interpreter that never reads our .pth, and chains the app's sitecustomize."""
    base = getattr(sys, "_base_executable", sys.executable)
    if base == sys.executable or sys.prefix == sys.base_prefix:
        pytest.skip("needs a venv: its base interpreter does not read the venv's sched_accel.pth")
    app.write("legacy.py", JOBS)
    app.write("accel.py", ACCEL)
    app.config('[[targets]]\nloop = "legacy:update"\nreplacement = "accel:update"\n')
    app.write("own/sitecustomize.py", "import sys\nsys.app_sitecustomize = __file__\n")
    app.write(
        "main.py",
        """
        import sys

        import legacy

        legacy.update([1])
        print(type(legacy.update).__name__)
        print(getattr(sys, "app_sitecustomize", None))
        """,
    )
    # The venv's packages, reachable without the venv's site-packages being a site dir.
    src = os.path.dirname(os.path.abspath(_sched_accel_boot.__file__))
    pythonpath = os.pathsep.join([str(app.root / "own"), sysconfig.get_paths()["purelib"], src])
    env = {FLAG: "1", "SCHED_ACCEL_CONFIG": str(app.root / "sched_accel.toml"), "PYTHONPATH": pythonpath}
    own = str(app.root / "own" / "sitecustomize.py")

    plain = app.run("-c", f"import subprocess, sys; sys.exit(subprocess.call([{base!r}, 'main.py']))", env=env)
    assert plain.returncode == 0, plain.stderr
    assert plain.stdout == f"sequential [1]\nfunction\n{own}\n"  # no .pth read: no hook

    out = app.run("-m", "sched_accel", "run", "--", base, "main.py", env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout == f"accelerated [1]\nSchedAccelWrapper\n{own}\n"
    assert [m.group(1) for m in map(_EVENT.search, out.stderr.splitlines()) if m] == ["patched", "active", "run"]


# -- state per app: two apps of one user ---------------------------------------------------------
ONE = """
    [[targets]]
    loop = "legacy:update"
    replacement = "accel:update"
"""
MAIN = """
    import sys

    import legacy

    legacy.update([int(n) for n in sys.argv[1:]] or [1])
"""


class Apps:
    """Two apps in two folders of one user: one state folder (SCHED_ACCEL_CONTROL), two configs."""

    def __init__(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.control = tmp_path / "user-state" / "control.json"
        self.a, self.b = (App(tmp_path / name, monkeypatch) for name in ("a", "b"))
        for made in (self.a, self.b):
            made.root.mkdir()
            for name, source in (
                ("legacy.py", JOBS),
                ("accel.py", ACCEL),
                ("main.py", MAIN),
                ("sched_accel.toml", ONE),
            ):
                made.write(name, source)

    def run(self, app: App, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        """A python in ``app``'s folder (its config found there), with the user's state folder."""
        return app.run(*args, env={"SCHED_ACCEL_CONTROL": str(self.control), **env})

    def sched_accel(self, app: App, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        """``sched-accel ARGS`` run in ``app``'s folder."""
        return self.run(app, "-m", "sched_accel", *args, **env)

    def job(self, app: App, *items: str, **env: str) -> str:
        """Run the app's loop once with the flag on: what it printed."""
        done = self.run(app, "main.py", *items, **{FLAG: "1", **env})
        assert done.returncode == 0, done.stderr
        self.stderr = done.stderr
        return done.stdout.split()[0]


@pytest.fixture
def apps(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Apps:
    """Two apps (a, b) of one user, the same loop declared in each."""
    return Apps(tmp_path, monkeypatch)


@pytest.mark.slow
def test_off_in_one_apps_folder_leaves_the_other_app_on(apps: Apps) -> None:
    """`sched-accel off` in app A's folder switches A's targets only; --all-apps switches both;
    `on --all-apps` leaves A's own switch as it was."""
    assert apps.job(apps.a) == apps.job(apps.b) == "accelerated"
    off = apps.sched_accel(apps.a, "off")
    assert off.returncode == 0, off.stderr
    assert f"for the app of {apps.a.root / 'sched_accel.toml'}" in off.stdout
    assert apps.job(apps.a) == "sequential"
    assert "sched_accel.switched_off" in apps.stderr and "target=legacy:update" in apps.stderr
    assert apps.job(apps.b) == "accelerated"
    assert "(replace, concurrency 8) by sched-accel off" in apps.sched_accel(apps.a, "status").stdout
    assert "legacy:update: on (replace" in apps.sched_accel(apps.b, "status").stdout

    assert apps.sched_accel(apps.b, "off", "--all-apps").returncode == 0
    assert json.loads(apps.control.read_text()) == {"version": 1, "off": ["*"]}
    assert apps.job(apps.a) == apps.job(apps.b) == "sequential"
    assert "by sched-accel off --all-apps" in apps.sched_accel(apps.b, "status").stdout
    back = apps.sched_accel(apps.a, "on", "--all-apps")
    assert back.returncode == 0
    assert "still switches off *" in back.stderr and "for this app; `sched-accel on` clears it" in back.stderr
    assert (apps.job(apps.a), apps.job(apps.b)) == ("sequential", "accelerated")
    assert apps.sched_accel(apps.a, "on").returncode == 0
    assert apps.job(apps.a) == "accelerated"


@pytest.mark.slow
def test_status_of_an_app_shows_its_own_runs(apps: Apps) -> None:
    """Each app's last run is its own: A's status never shows B's run of a loop of the same name;
    --all-apps lists both, with their configs."""
    apps.job(apps.a, "1")
    apps.job(apps.b, "1", "2", "3")
    runs = {}
    for made in (apps.a, apps.b):
        out = apps.sched_accel(made, "status", "--json")
        assert out.returncode == 0, out.stderr
        report = json.loads(out.stdout)
        assert report["config"] == str(made.root / "sched_accel.toml")
        [target] = report["targets"]
        assert target["last_run"]["outcome"] == "ok", target["last_run"]
        assert isinstance(target["last_run"]["seconds"], float)
        assert report["other_runs"] == []
        runs[made.root.name] = target["last_run"]["pid"]
        assert f"(pid {runs[made.root.name]})" in apps.sched_accel(made, "status").stdout
    assert runs["a"] != runs["b"]  # each its own process's run (a replace run counts no items)
    listed = apps.sched_accel(apps.a, "status", "--all-apps", "--json")
    assert listed.returncode == 0, listed.stderr
    found = {entry["config"]: entry for entry in json.loads(listed.stdout)["apps"]}
    assert set(found) == {str(apps.a.root / "sched_accel.toml"), str(apps.b.root / "sched_accel.toml")}
    assert found[str(apps.a.root / "sched_accel.toml")]["this"] is True
    assert not (apps.control.parent / "runs").exists()  # nothing of an app's directly in the state folder


@pytest.mark.slow
def test_targets_are_switched_off_by_environment(apps: Apps) -> None:
    """SCHED_ACCEL_DISABLED_TARGETS switches the named targets off (a container whose HOME is read-only):
    said once, a name that is no target said with the one it is close to; status says why."""
    disabled = {"SCHED_ACCEL_DISABLED_TARGETS": "legacy:update,legacy:updat"}
    assert apps.job(apps.a, **disabled) == "sequential"
    assert "sched_accel.switched_off target=legacy:update by=SCHED_ACCEL_DISABLED_TARGETS" in apps.stderr
    assert "sched_accel.disabled_target_unknown" in apps.stderr and "did you mean 'legacy:update'?" in apps.stderr
    assert not apps.control.parent.exists() or not list(apps.control.parent.rglob("control.json"))  # no file needed
    status = apps.sched_accel(apps.a, "status", **disabled)
    assert "legacy:update: off (replace, concurrency 8) by $SCHED_ACCEL_DISABLED_TARGETS" in status.stdout
    report = json.loads(apps.sched_accel(apps.a, "status", "--json", **disabled).stdout)
    assert report["targets"][0]["on"] is False and report["targets"][0]["off_by"] == "env"
    on = apps.sched_accel(apps.a, "on", **disabled)
    assert "$SCHED_ACCEL_DISABLED_TARGETS switches off legacy:updat, legacy:update where it is set" in on.stderr
    assert apps.job(apps.a) == "accelerated"


def test_off_without_a_config_says_what_to_do(app: App) -> None:
    """`sched-accel off` where no config is found has no app to switch: exit 2, with both ways out."""
    out = app.run("-m", "sched_accel", "off")
    assert out.returncode == 2
    assert (
        "no config found" in out.stderr and "--config PATH" in out.stderr and "sched-accel off --all-apps" in out.stderr
    )
    assert not (app.root / CONTROL).exists()
    assert app.run("-m", "sched_accel", "off", "--all-apps").returncode == 0
    assert json.loads((app.root / CONTROL).read_text()) == {"version": 1, "off": ["*"]}


@pytest.mark.slow
def test_a_config_control_file_outside_the_state_folder_writes_nothing_there(apps: Apps, tmp_path: Path) -> None:
    """A config whose control_file points into another folder of the user's is refused, by the app
    (it runs unpatched) and by the command; nothing is ever written in that folder. Named in the
    state folder, it is the app's own control file."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(mode=0o700)
    (elsewhere / "keep.txt").write_text("mine")
    config = apps.a.root / "sched_accel.toml"
    config.write_text(f'control_file = "{elsewhere / "control.json"}"\n' + config.read_text())
    env = {k: v for k, v in os.environ.items() if k not in ("SCHED_ACCEL_CONTROL", "SCHED_ACCEL_CONFIG", FLAG)}
    env["XDG_STATE_HOME"] = str(tmp_path / "xdg")

    def run(*args: str, **more: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, *args], cwd=apps.a.root, env={**env, **more}, capture_output=True, text=True, timeout=60
        )

    job = run("main.py", **{FLAG: "1"})
    assert job.returncode == 0 and job.stdout == "sequential [1]\n"
    assert "sched_accel.config_invalid" in job.stderr and "is not in the state folder" in job.stderr
    for command in ("off", "on", "status"):
        refused = run("-m", "sched_accel", command)
        assert refused.returncode != 0 and "control_file" in refused.stderr and "remove the key" in refused.stderr
    assert sorted(p.name for p in elsewhere.iterdir()) == ["keep.txt"]

    state = tmp_path / "xdg" / "sched_accel"
    config.write_text(config.read_text().replace(str(elsewhere / "control.json"), str(state / "billing.json")))
    assert run("-m", "sched_accel", "off").returncode == 0
    assert json.loads((state / "billing.json").read_text()) == {"version": 1, "off": ["*"]}
    assert run("main.py", **{FLAG: "1"}).stdout == "sequential [1]\n"
    assert not (state / "control.json").exists() and not (state / "hosts.json").exists()
    assert sorted(p.name for p in elsewhere.iterdir()) == ["keep.txt"]


def test_check_suggests_the_items_and_the_fetch_of_a_loop(app: App) -> None:
    """A target declared with its loop alone: check reads the loop's code and suggests the
    parameter its first loop iterates over (a suggestion: the target still runs as declared)."""
    app.write(
        "tracker.py",
        """
        def refresh(db, ids, client):
            for item_id in ids:
                db.append(client.get(item_id))

        def price(name):
            return len(name)

        def rows(names):
            return [price(name) for name in names]

        def nothing(count):
            return count + 1
    """,
    )
    app.config("".join(f'[[targets]]\nloop = "tracker:{name}"\n' for name in ("refresh", "rows", "nothing")))
    out = cli(app, "check")
    assert out.returncode == 0, out.stdout + out.stderr
    found = parts(out.stdout)
    assert (
        'its code loops over its parameter ids: items = "ids" prefetches from the first run'
        in found["tracker:refresh", "items"][2]
    )
    assert 'items = "names"' in found["tracker:rows", "items"][2]
    assert "loops over" not in found["tracker:nothing", "items"][2]
    # and the app's function it calls with each item, by a plain name (a method of an object: discover finds it)
    assert 'its code calls tracker:price with each item: fetch = "tracker:price"' in found["tracker:rows", "fetch"][2]
    assert "its code calls" not in found["tracker:refresh", "fetch"][2]
