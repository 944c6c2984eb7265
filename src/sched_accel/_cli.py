"""The ``sched-accel`` command: run, check, doctor, on, off, status.

``on``, ``off`` and ``status`` act on the app whose config is found (the state of each app is
its own: ``_state._apps``); ``--all-apps`` on the user-wide control file, and every app's folder.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import site
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections.abc import Sequence
from typing import Any

import _sched_accel_boot as boot

from . import __version__
from ._checks import check
from ._config import load_config
from ._discover import DISCOVER_ENV, analyse, load, toml
from ._exceptions import SchedAccelError
from ._redact import redact_text
from ._settings import Settings
from ._state import (
    ALL,
    DISABLED_ENV,
    ControlFile,
    Controls,
    ControlState,
    LearnedRates,
    default_control_file,
    floor,
    known_apps,
    load_runs,
    old_state,
)
from ._timeline import page

__all__ = ["main"]

BOOTSTRAP = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_bootstrap")

_EPILOG = f"""\
examples:
  sched-accel check                        validate the config and resolve every target
  sched-accel check --trust-folder         ... importing even modules others could have written
  sched-accel doctor                       is the start-up hook installed and active here?
  {boot.FLAG}=true sched-accel run -- python job.py
                                           run a command with the hook, where .pth files are not read
  sched-accel off                          this app's targets run unaccelerated from their next call
  sched-accel off legacy_app.jobs:update_scores
  sched-accel on                           back on (clears this app's switches)
  sched-accel off --all-apps               every target of every app of this user
  sched-accel status --json                this app's targets, switches and last runs, as JSON
  sched-accel discover -- python job.py    run it once; print the config for its loops that wait on HTTP
  sched-accel timeline                     this app's last runs, one bar per request, as an HTML page

The config is $SCHED_ACCEL_CONFIG, else ./sched_accel.toml, else [tool.sched_accel] in
./pyproject.toml: it names the app that on, off and status act on. Nothing is accelerated
unless {boot.FLAG} is true/1/yes/on. State is kept per app in the folder of
$SCHED_ACCEL_CONTROL (the user-wide control file), else $XDG_STATE_HOME/sched_accel;
{DISABLED_ENV}=a.b:job,c.d:other switches targets off by environment.
"""


#: Each subcommand's examples, for its --help.
_EXAMPLES = {
    "run": """\
  ENABLE_SCHEDULER_OPTIMIZATION=1 sched-accel run -- python -m legacy_app.service
  sched-accel run --config /srv/app/sched_accel.toml -- gunicorn legacy_app.web:app
    (the hook in every Python process the command starts, where .pth files are not read)""",
    "check": """\
  sched-accel check                         the config found here: each target, resolved or why not
  sched-accel check --config deploy/sched_accel.toml
  sched-accel check --trust-folder          import targets from files others could have written""",
    "doctor": """\
  sched-accel doctor                        the hook's files, the flag, the config, the state folder""",
    "status": """\
  sched-accel status                        this app's targets: on or off (and by what), last runs
  sched-accel status --json | jq '.targets[].last_run'
  sched-accel status --all-apps             every app with state in this user's state folder""",
    "off": """\
  sched-accel off                           every target of this app, in running processes, at once
  sched-accel off legacy_app.jobs:update_scores
  sched-accel off --all-apps                every app of this user (sched-accel on --all-apps undoes it)""",
    "on": """\
  sched-accel on                            every target of this app back on
  sched-accel on legacy_app.jobs:update_scores""",
    "discover": """\
  sched-accel discover -- python job.py     run it once, unaccelerated; print the loops that wait on HTTP
  sched-accel discover -- python -m app.worker --once
    (paste the [[targets]] table it prints into sched_accel.toml, then `sched-accel check`)""",
    "timeline": """\
  sched-accel timeline                      every target's last runs, in sched-accel-timeline.html
  sched-accel timeline legacy_app.jobs:update_scores -o /tmp/scores.html
    (switch a target off for one run, `sched-accel off`, to keep an unaccelerated run to compare with)""",
}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``sched-accel`` console script."""
    parser = argparse.ArgumentParser(
        prog="sched-accel",
        description="Accelerate a legacy job's sequential fetch loop, with no change to its code.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--config", metavar="PATH", help="the TOML config (default: as described below)")
    parser.add_argument("--version", action="version", version=f"sched-accel {__version__}")
    # --config after the subcommand too (its default suppressed: the one before it stands)
    config = argparse.ArgumentParser(add_help=False)
    config.add_argument("--config", metavar="PATH", default=argparse.SUPPRESS, help="the TOML config")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    def command(name: str, help: str) -> argparse.ArgumentParser:  # noqa: A002 - argparse's own word
        return commands.add_parser(
            name,
            help=help,
            description=help[0].upper() + help[1:] + ".",
            parents=[config],
            epilog="examples:\n" + _EXAMPLES[name],
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )

    run = command("run", "run a command with the start-up hook active in its Python processes")
    run.add_argument("cmd", nargs=argparse.REMAINDER, metavar="-- COMMAND ...")
    check_command = command("check", "load the config, import the targets, print what would be patched")
    check_command.add_argument(
        "--trust-folder",
        action="store_true",
        help="import the targets even from files or folders that fail the trust rule (others could have written "
        "them); without it their names are read from their source, never run",
    )
    command("doctor", "check that the start-up hook is installed and active in this environment")
    status = command(
        "status",
        "show the flag, what is switched off, and each of this app's targets' last run: ok, retried, lost, "
        "429s, concurrency reached, time waiting on limits",
    )
    status.add_argument("--json", action="store_true", help="print it as one JSON object (figures as numbers)")
    status.add_argument("--all-apps", action="store_true", help="list every app with state in this user's state folder")
    for name, verb in (("off", "switch off"), ("on", "switch back on")):
        switch = command(name, f"{verb} TARGET (default: every target) of this app (its config's) in running processes")
        switch.add_argument("target", nargs="?", help="a target's loop as declared, e.g. legacy_app.jobs:update_scores")
        switch.add_argument(
            "--all-apps", action="store_true", help=f"{verb} in the user-wide control file: for every app of this user"
        )
    discover = command(
        "discover", "run a command once, unaccelerated, and print the config for its loops that wait on HTTP"
    )
    discover.add_argument("cmd", nargs=argparse.REMAINDER, metavar="-- COMMAND ...")
    timeline = command("timeline", "draw this app's last runs of each target, one bar per request, as one HTML file")
    timeline.add_argument("target", nargs="?", help="only this target (its loop as declared)")
    timeline.add_argument(
        "-o",
        "--output",
        metavar="PATH",
        default="sched-accel-timeline.html",
        help="where to write the page (default: %(default)s)",
    )
    args = parser.parse_args(argv)
    if args.config:
        os.environ[boot.CONFIG_ENV] = os.path.abspath(args.config)
    handlers = {
        "run": _run,
        "check": _check,
        "doctor": _doctor,
        "status": _status,
        "on": _on,
        "off": _off,
        "timeline": _timeline,
        "discover": _discover,
    }
    if args.command is None:
        parser.print_help()
        return 2
    return handlers[args.command](args)


def _say(text: str = "") -> None:
    print(redact_text(text), flush=True)  # check's and status's lines, with no secret in them


def _err(text: str) -> None:
    print(f"sched-accel: {redact_text(text)}", file=sys.stderr, flush=True)


def _check(args: argparse.Namespace) -> int:
    return check(_say, _err, _flag_line(), trust_folder=args.trust_folder)


def _flag_line() -> str:
    raw = os.environ.get(boot.FLAG)
    state = boot.flag_value(raw)
    shown = "unset" if raw is None else repr(raw)
    meaning = "off (not a recognised value)" if state is None else ("on" if state else "off")
    return f"{boot.FLAG}={shown}: {meaning}"


def _settings_or_none() -> tuple[Settings | None, str | None]:
    try:
        return load_config(), None
    except SchedAccelError as exc:
        return None, str(exc)


def _controls(settings: Settings | None) -> Controls:
    """This app's switches; the user-wide file's only, without a config."""
    if settings is not None:
        return settings.controls()
    return Controls.open(None, default_control_file())


# -- run -----------------------------------------------------------------------------------
def _command(args: argparse.Namespace, verb: str) -> list[str] | None:
    """The command after ``--``; None (said, with the usage) when there is none."""
    cmd = list(args.cmd)
    if cmd and cmd[0] == "--":
        cmd = cmd[1:]
    if not cmd:
        _err(f"nothing to run; usage: sched-accel {verb} -- python job.py")
        return None
    return cmd


def _hooked(env: dict[str, str]) -> dict[str, str]:
    """``env`` with the start-up hook first on PYTHONPATH (its sitecustomize: where .pth files are not read)."""
    return {**env, "PYTHONPATH": os.pathsep.join(p for p in (BOOTSTRAP, env.get("PYTHONPATH", "")) if p)}


def _run(args: argparse.Namespace) -> int:
    cmd = _command(args, "run")
    if cmd is None:
        return 2
    env = _hooked(dict(os.environ))
    if not boot.flag_value(env.get(boot.FLAG)):
        _err(f"{_flag_line()}, so {cmd[0]} runs unaccelerated; set {boot.FLAG}=true to accelerate")
    try:
        os.execvpe(cmd[0], cmd, env)
    except OSError as exc:
        _err(f"cannot run {cmd[0]!r}: {exc.strerror or exc}")
        return 127
    return 0  # pragma: no cover - exec does not return


# -- doctor --------------------------------------------------------------------------------
def _start_files() -> list[str]:
    folders = list(site.getsitepackages()) + [site.getusersitepackages(), sysconfig.get_paths()["purelib"]]
    found: list[str] = []
    for folder in dict.fromkeys(folders):
        for name in ("sched_accel.pth", "sched_accel.start"):
            candidate = os.path.join(folder, name)
            if os.path.isfile(candidate):
                found.append(candidate)
    return found


def _hook_runs() -> bool:
    env = dict(os.environ, **{boot.FLAG: "1", boot.PROBE_ENV: "1"})
    probe = "import sys; m = sys.modules.get('_sched_accel_boot'); print(bool(m and m._booted))"
    try:
        out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError):
        return False
    return out.stdout.strip() == "True"


def _doctor(args: argparse.Namespace) -> int:
    ok = True
    import sched_accel

    _say(f"sched_accel {sched_accel.__version__} at {os.path.dirname(os.path.abspath(sched_accel.__file__))}")
    _say(f"python: {sys.executable} ({sys.version.split()[0]})")
    files = _start_files()
    if files:
        for file in files:
            _say(f"[ok]   start-up file installed: {file}")
    else:
        ok = False
        _say(
            "[FAIL] no sched_accel.pth in this environment's site-packages: an editable install "
            "(pip install -e) drops it. Install the wheel (pip install sched-accel), or start "
            "the app with `sched-accel run -- python app.py`"
        )
    if _hook_runs():
        _say("[ok]   the start-up hook runs at interpreter start (checked in a child python)")
    else:
        ok = False
        _say(
            "[FAIL] the start-up hook did not run in a child python: .pth files are not processed "
            "(python -S, or an embedded interpreter?); use `sched-accel run -- python app.py`"
        )
    state = boot.flag_value(os.environ.get(boot.FLAG))
    _say(f"[{'ok' if state else 'info'}]{' ' if state else ''} {_flag_line()}")
    settings, problem = _settings_or_none()
    if problem:
        ok = False
        _say(f"[FAIL] config: {problem}")
    elif settings is not None:
        _say(
            f"[ok]   config: {settings.path} ({len(settings.targets)} target(s)); run `sched-accel check` to resolve them"
        )
    control = _controls(settings)
    cstate = control.state()
    where = f"{control.path}" + (f" (and {control.user.path} for every app)" if control.app is not None else "")
    if cstate.problem:
        ok = False
        _say(f"[FAIL] control file {cstate.problem}")
    else:
        off = ", ".join(sorted(cstate.off)) or "nothing"
        _say(f"[ok]   control file {where}: switched off: {off}")
    folder = os.path.dirname(control.path)
    why = _unwritable(folder)
    if why is None:
        _say(f"[ok]   state can be written in {folder} (last runs, learned calls, `sched-accel off`)")
    else:
        ok = False
        _say(
            f'[FAIL] state cannot be written in {folder}: {why}; runs are not recorded, items = "learned" never '
            f"learns, and `sched-accel off` cannot switch this app: set $SCHED_ACCEL_CONTROL to a control.json in a "
            f"folder this user can write, or switch targets off with ${DISABLED_ENV}"
        )
    return 0 if ok else 1


def _unwritable(folder: str) -> str | None:
    """Why this user cannot write state in ``folder``, or None. Tried, not guessed (root passes
    every permission check, not a read-only or virtual file system): a folder made and removed
    at once in it, or in its nearest existing parent when it is not made yet (never left behind)."""
    bottom = floor()
    if not os.path.isdir(bottom) and (folder == bottom or folder.startswith(bottom.rstrip(os.sep) + os.sep)):
        return f"{bottom} does not exist, and sched_accel never creates it"
    existing = folder
    while not os.path.isdir(existing):
        parent = os.path.dirname(existing)
        if parent == existing:
            return "no folder above it exists"
        existing = parent
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".sched-accel-doctor-", dir=existing))
    except OSError as exc:
        return f"{existing} refused a new entry ({exc.strerror or exc})"
    return None


# -- discover ------------------------------------------------------------------------------
def _discover(args: argparse.Namespace) -> int:
    cmd = _command(args, "discover")
    if cmd is None:
        return 2
    folder = tempfile.mkdtemp(prefix="sched-accel-discover-")  # 0700: this user's only
    try:
        env = _hooked({k: v for k, v in os.environ.items() if k != boot.FLAG})  # recorded, never accelerated
        env[DISCOVER_ENV] = folder
        _err(f"running {' '.join(cmd)} once, unaccelerated, recording its HTTP requests ...")
        try:
            code = subprocess.call(cmd, env=env)
        except OSError as exc:
            _err(f"cannot run {cmd[0]!r}: {exc.strerror or exc}")
            return 127
        requests = load(folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    loops = analyse(requests)
    _say(f"# {cmd[0]} exited with {code}; {len(requests)} HTTP request(s) recorded")
    if not loops:
        _say("# no loop of the app was seen making requests for two or more items: nothing to accelerate here")
        return 1
    for rank, loop in enumerate(loops, start=1):
        _say(
            f"\n# {rank}. {loop.loop} ({os.path.basename(loop.file)}:{loop.line}): {loop.iterations} items, "
            f"{loop.requests} requests to {', '.join(sorted(loop.hosts))}, {loop.seconds:.2f} s waiting"
        )
        for note in loop.notes:
            _say(f"#    {note}")
        _say(toml(loop))
    _say(
        "\n# paste the table(s) into sched_accel.toml, run `sched-accel check`, then set "
        f"{boot.FLAG}=true and restart the app"
    )
    return 0


# -- timeline ------------------------------------------------------------------------------
def _timeline(args: argparse.Namespace) -> int:
    settings, problem = _settings_or_none()
    if settings is None or not settings.app_dir:
        _err(problem or "no config found here: run it where the app's sched_accel.toml is, or pass --config")
        return 1
    refused: list[str] = []
    records = load_runs(settings.app_dir, refused)
    for line in refused:
        _err(f"skipped {line}")
    if args.target is not None:
        records = {name: record for name, record in records.items() if name == args.target}
    if not records:
        which = f"target {args.target}" if args.target else "any target of this app"
        _err(f"no run of {which} is recorded in {settings.app_dir}: run the app with {boot.FLAG}=true first")
        return 1
    text = page(records, title=f"sched_accel: last runs of {settings.path}")
    try:
        with open(args.output, "w", encoding="utf-8") as out:
            out.write(text)
    except OSError as exc:
        _err(f"cannot write {args.output}: {exc.strerror or exc}")
        return 1
    _say(f"wrote {os.path.abspath(args.output)}: {', '.join(sorted(records))}")
    return 0


# -- status, on, off -----------------------------------------------------------------------
def _status(args: argparse.Namespace) -> int:
    settings, problem = _settings_or_none()
    if problem:
        _err(problem)
    if args.all_apps:
        report = _apps_report(settings)
        _print_json(report) if args.json else _say_apps(report)
        return 0 if problem is None and report["control"]["problem"] is None else 1
    report = _status_report(settings, problem)
    _print_json(report) if args.json else _say_status(report)
    refused = any(
        f is not None and f["problem"] is not None for f in (report["control"]["app"], report["control"]["user"])
    )
    return 0 if problem is None and not refused else 1


def _file_state(path: str, state: ControlState) -> dict[str, Any]:
    return {"path": path, "off": sorted(state.off), "problem": state.problem}


def _status_report(settings: Settings | None, problem: str | None) -> dict[str, Any]:
    """Everything ``status`` says, as data: the text and ``--json`` are two views of it.
    Figures from the runs files are numbers where they are numbers."""
    controls = _controls(settings)
    app_state = controls.app.state() if controls.app is not None else None
    user_state = controls.user.state()
    state = controls.state()
    raw = os.environ.get(boot.FLAG)
    report: dict[str, Any] = {
        "version": 1,
        "flag": {"name": boot.FLAG, "value": raw, "on": bool(boot.flag_value(raw))},
        "config": settings.path if settings is not None else None,
        "config_error": problem,
        "state_folder": os.path.dirname(controls.user.path),
        "app": None,
        "control": {
            "app": _file_state(controls.app.path, app_state) if controls.app is not None and app_state else None,
            "user": _file_state(controls.user.path, user_state),
            "env": {"name": DISABLED_ENV, "off": sorted(controls.disabled)},
        },
        "coordination": None,
        "targets": [],
        "other_runs": [],
        "hosts": [],
        "rates": [],
        "skipped": [],
        "old_state": old_state(os.path.dirname(controls.user.path)),
    }
    if settings is None:
        return report
    app = settings.app
    report["app"] = {"id": app.id, "folder": app.folder, "namespace": app.namespace}
    report["coordination"] = settings.coordination.where
    refused: list[str] = []
    runs = load_runs(app.folder, refused)
    report["skipped"] = refused
    labels = {DISABLED_ENV: "env", controls.user.path: "user", controls.path: "app"}
    for target in settings.targets:
        off = state.is_off(target.name)
        report["targets"].append(
            {
                "name": target.name,
                "mode": target.mode,
                "concurrency": target.concurrency,
                "single_run": settings.runs_once(target),
                "on": not off,
                "off_by": ("refused" if state.problem else labels.get(state.switched_by(target.name) or ""))
                if off
                else None,
                "last_run": _run_figures(runs.pop(target.name, None)),
            }
        )
    report["other_runs"] = [{"name": name, "last_run": _run_figures(record)} for name, record in sorted(runs.items())]
    report["hosts"] = [
        {
            "host": name,
            "concurrency": conf.concurrency,
            "per_second": conf.per_second,
            "burst": conf.burst,
            "adaptive": conf.adaptive,
        }
        for name, conf in sorted(settings.hosts.items())
    ]
    report["rates"] = [
        {"host": host, "per_second": rate, "how": how}
        for host, (rate, how) in sorted(LearnedRates(app.folder).kept().items())
    ]
    return report


#: The run line's fields that are words, never figures.
_WORDS = frozenset({"target", "mode", "outcome"})


def _figure(value: Any) -> Any:
    """A run line's value as a number where it is one (``"0.512"`` -> 0.512, ``"-"`` -> None)."""
    if isinstance(value, str):
        text = value.strip()
        if text == "-":
            return None
        try:
            return int(text)
        except ValueError:
            pass
        try:
            number = float(text.removesuffix("s") if text[:1].isdigit() else text)
        except ValueError:
            return value
        return number if math.isfinite(number) else value
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


def _host_figures(line: Any) -> dict[str, Any]:
    """``"api: requests=3 waited=0.100s circuit=closed"`` as ``{"host": "api", "requests": 3, ...}``."""
    text = str(line)
    host, _, rest = text.partition(": ")
    figures: dict[str, Any] = {"host": host, "line": text}
    for token in rest.split():
        key, sep, value = token.partition("=")
        if sep and key not in figures:
            figures[key] = _figure(value)
    return figures


def _run_figures(record: dict[str, Any] | None) -> dict[str, Any] | None:
    """A recorded last run, for ``--json``: its line's fields (figures as numbers), when it
    finished (Unix time), the pid, and each host as that process saw it."""
    if record is None:
        return None
    run: dict[str, Any] = {key: value if key in _WORDS else _figure(value) for key, value in record["run"].items()}
    finished = record.get("finished")
    hosts = record.get("hosts")
    run.update(
        finished=_figure(finished) if isinstance(finished, int | float) and not isinstance(finished, bool) else None,
        pid=record.get("pid") if isinstance(record.get("pid"), int) else None,
        hosts=[_host_figures(line) for line in hosts] if isinstance(hosts, list) else [],
    )
    run["_record"] = record  # for the text view only; dropped from JSON
    return run


def _print_json(report: dict[str, Any]) -> None:
    """One JSON object on stdout, every string in it redacted (JSON escapes the rest)."""

    def clean(value: Any) -> Any:
        if isinstance(value, dict):
            return {str(k): clean(v) for k, v in value.items() if k != "_record"}
        if isinstance(value, list):
            return [clean(v) for v in value]
        if isinstance(value, str):
            return redact_text(value)
        return value

    print(json.dumps(clean(report), indent=2, ensure_ascii=True), flush=True)


def _say_status(report: dict[str, Any]) -> None:
    _say(_flag_line())
    control = report["control"]
    app, user, env = control["app"], control["user"], control["env"]
    if report["config"] is not None:
        _say(f"config: {report['config']}")
        _say(f"app: {report['app']['id']} (its state: {report['app']['folder']})")
    else:
        _say("no app here (no config found): `sched-accel status --all-apps` lists this user's apps")
    for file in (app, user):
        if file is None:
            continue
        if file is app:
            _say(f"control file: {file['path']}")
        else:
            off = ", ".join(file["off"]) or "nothing"
            _say(
                f"control file for every app of this user: {file['path']} (sched-accel off --all-apps): off: {_shown(off)}"
            )
        if file["problem"]:
            _say(f"  refused: {file['problem']} (everything runs unaccelerated)")
    if env["off"]:
        _say(f"${env['name']} switches off: {_shown(', '.join(env['off']))}")
    for line in report["skipped"]:
        _say(f"  skipped: {_shown(line)}")
    if report["coordination"] is not None:
        _say(f"coordination: {report['coordination']}")
    by = {
        "app": " by sched-accel off",
        "user": " by sched-accel off --all-apps",
        "env": f" by ${DISABLED_ENV}",
        "refused": " (a control file is refused)",
    }
    for target in report["targets"]:
        once = ", single_run" if target["single_run"] else ""
        switched = "on" if target["on"] else "off"
        how = by.get(target["off_by"] or "", "")
        _say(f"  {target['name']}: {switched} ({target['mode']}, concurrency {target['concurrency']}{once}){how}")
        _say(f"    {_last_run(target['last_run'])}")
    for host in report["hosts"]:
        limits = [f"{key} {host[key]:g}" for key in ("concurrency", "per_second") if host[key] is not None]
        limits.append(f"burst {host['burst']}")
        _say(f"  host {host['host']}: {', '.join(limits)}" + ("" if host["adaptive"] else ", not adaptive"))
    for other in report["other_runs"]:  # runs of targets no longer in the config
        _say(f"  {_shown(other['name'])} (not in the config): {_last_run(other['last_run'])}")
    for rate in report["rates"]:
        said = "told" if rate["how"] == "told" else "learned"
        where = "in its answers" if rate["how"] == "told" else "from its refusals"
        _say(
            f"  host {_shown(rate['host'])}: {said} {rate['per_second']:.3g} requests/s {where} (the next run starts at it)"
        )
    if report["old_state"]:
        names = ", ".join(report["old_state"])
        _say(
            f"note: {report['state_folder']} holds {names} from before state was kept per app; they are no longer "
            "read (each app learns its own again), delete them when you like"
        )


def _apps_report(settings: Settings | None) -> dict[str, Any]:
    """Every app with state in this user's state folder: its config, its switches, its runs."""
    user = ControlFile(settings.control_file if settings is not None else default_control_file())
    folder = os.path.dirname(user.path)
    refused: list[str] = []
    apps = known_apps(folder, refused)
    here = settings.app.id if settings is not None else None
    for app in apps:
        control = ControlFile(app["control"])
        app["control"] = _file_state(control.path, control.state())
        app["this"] = app["id"] == here
        runs = load_runs(app["folder"], refused)
        app["runs"] = [{"name": name, "last_run": _run_figures(record)} for name, record in sorted(runs.items())]
    return {
        "version": 1,
        "state_folder": folder,
        "control": _file_state(user.path, user.state()),
        "apps": apps,
        "skipped": refused,
        "old_state": old_state(folder),
    }


def _say_apps(report: dict[str, Any]) -> None:
    control = report["control"]
    _say(f"state folder: {report['state_folder']}")
    _say(f"control file for every app: {control['path']}: off: {_shown(', '.join(control['off']) or 'nothing')}")
    if control["problem"]:
        _say(f"  refused: {control['problem']} (everything runs unaccelerated)")
    for line in report["skipped"]:
        _say(f"  skipped: {_shown(line)}")
    if not report["apps"]:
        _say("no app has kept state here yet")
    for app in report["apps"]:
        this = " (this one)" if app["this"] else ""
        config = app["config"] or "config not recorded"
        _say(
            f"  {_shown(app['id'])}{this}: {_shown(config)}"
            + (f", namespace {_shown(app['namespace'])}" if app["namespace"] else "")
        )
        off = app["control"]
        _say(
            f"    off: {_shown(', '.join(off['off']) or 'nothing')}"
            + (f" (refused: {off['problem']})" if off["problem"] else "")
        )
        for run in app["runs"]:
            _say(f"    {_shown(run['name'])}: {_last_run(run['last_run'])}")


_RUN_FIELDS = (
    "ok",
    "failed",
    "retried",
    "gave_up",
    "lost",
    "http_429",
    "peak_requests",
    "limit_wait",
    "effective_concurrency",
    "speedup",
    "by",
)
#: Not control characters, yet they reorder or break what a terminal shows: escaped too.
_INVISIBLE = frozenset("\u061c\u200e\u200f\u2028\u2029\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def _shown(value: object) -> str:
    """``value`` as text a terminal shows as is: C0 and C1 control characters, DEL and ESC
    among them, become ``\\xNN``, bidi overrides and line separators ``\\uNNNN``; other text is
    unchanged (a runs file is data, never terminal control)."""
    text = str(value)
    if text.isascii() and text.isprintable():
        return text
    return "".join(
        f"\\x{ord(ch):02x}"
        if ord(ch) < 0x20 or 0x7F <= ord(ch) <= 0x9F
        else f"\\u{ord(ch):04x}"
        if ch in _INVISIBLE
        else ch
        for ch in text
    )


def _when(finished: Any) -> str:
    try:
        return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(finished)))
    except (TypeError, ValueError, OverflowError, OSError):
        return "unknown time"


def _last_run(figures: dict[str, Any] | None) -> str:
    """A target's last recorded run, in one line, then its hosts as that process saw them;
    everything from the file escaped."""
    if figures is None:
        return "last run: none recorded yet"
    record = figures["_record"]
    run = record["run"]
    counts = " ".join(f"{key}={run[key]}" for key in _RUN_FIELDS if key in run)
    text = _shown(
        f"last run: {_when(record.get('finished', 0))} (pid {record.get('pid')}), outcome={run.get('outcome')} "
        f"{run.get('seconds')} s, items={'-' if run.get('items') is None else run.get('items')} {counts}"
    )
    plain = record.get("plain")
    if isinstance(plain, dict):  # the baseline speedup is measured against
        text += "\n    " + _shown(
            f"last unaccelerated run: {_when(plain.get('finished', 0))}, {plain.get('seconds')} s, "
            f"items={'-' if plain.get('items') is None else plain.get('items')}"
        )
    hosts = record.get("hosts")
    for line in hosts if isinstance(hosts, list) else []:
        text += f"\n      host {_shown(line)}"
    return text


def _switch(args: argparse.Namespace, off: bool) -> int:
    settings, problem = _settings_or_none()
    if args.all_apps:
        control = ControlFile(settings.control_file if settings is not None else default_control_file())
        scope = "every app of this user"
    elif settings is None:
        _err(
            f"{problem}; so there is no app to switch here: run it in the app's folder (or with --config PATH), "
            f"or `sched-accel {args.command} --all-apps` to switch every app of this user"
        )
        return 2
    else:
        control = ControlFile(settings.app_control)
        scope = f"the app of {settings.path}"
    name = args.target
    if name and settings is not None and settings.target(name) is None:
        _err(f"note: {name!r} is not a target of {settings.path}; switching it anyway")
    state = control.state()
    current = set() if state.problem else set(state.off)
    if off:
        current.add(name or ALL)
    elif name is None:
        current.clear()
    else:
        current.discard(name)
        if ALL in current:
            again = " --all-apps" if args.all_apps else ""
            _err(f"every target is off (sched-accel off{again}); `sched-accel on{again}` turns all of them back on")
    try:
        control.write(frozenset(current))
    except (OSError, SchedAccelError) as exc:
        _err(f"cannot write the control file {control.path}: {exc}; set SCHED_ACCEL_CONTROL to a writable path")
        return 1
    if settings is not None and not args.all_apps:
        settings.app.describe()
    what = name or "every target"
    _say(
        f"{what} switched {'off' if off else 'on'} for {scope} in {control.path}; running processes follow at their "
        "next run of the loop"
    )
    if not off:
        _still_off(settings, control.path, name)
    return 0


def _still_off(settings: Settings | None, written: str, name: str | None) -> None:
    """After ``on``: what else still switches targets off (the other control file, the environment)."""
    controls = _controls(settings)
    for file in (controls.app, controls.user):
        if file is None or file.path == written:
            continue
        left = file.state()
        names = sorted(left.off if name is None or ALL in left.off else left.off & {name})
        if left.problem is None and names:
            every = file is controls.user
            _err(
                f"note: {file.path} still switches off {', '.join(names)}"
                + (
                    " for every app; `sched-accel on --all-apps` clears it"
                    if every
                    else " for this app; `sched-accel on` clears it"
                )
            )
    names = sorted(controls.disabled if name is None or ALL in controls.disabled else controls.disabled & {name})
    if names:
        _err(f"note: ${DISABLED_ENV} switches off {', '.join(names)} where it is set, whatever the control files say")


def _on(args: argparse.Namespace) -> int:
    return _switch(args, off=False)


def _off(args: argparse.Namespace) -> int:
    return _switch(args, off=True)
