"""The ``sched-accel`` command: run, check, doctor, on, off, status."""

from __future__ import annotations

import argparse
import os
import site
import subprocess
import sys
import sysconfig
import time
from collections.abc import Sequence
from typing import Any

import _sched_accel_boot as boot

from ._checks import check
from ._config import load_config
from ._exceptions import SchedAccelError
from ._redact import redact_text
from ._settings import Settings
from ._state import ALL, ControlFile, LearnedRates, default_control_file, load_runs

__all__ = ["main"]

BOOTSTRAP = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_bootstrap")

_EPILOG = f"""\
examples:
  sched-accel check                        validate the config and resolve every target
  sched-accel check --trust-folder         ... importing even modules others could have written
  sched-accel doctor                       is the start-up hook installed and active here?
  {boot.FLAG}=true sched-accel run -- python job.py
                                           run a command with the hook, where .pth files are not read
  sched-accel off                          every target runs unaccelerated from its next call
  sched-accel off legacy_app.jobs:update_scores
  sched-accel on                           back on (clears every switch)

The config is $SCHED_ACCEL_CONFIG, else ./sched_accel.toml, else [tool.sched_accel] in
./pyproject.toml. Nothing is accelerated unless {boot.FLAG} is true/1/yes/on.
"""


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``sched-accel`` console script."""
    parser = argparse.ArgumentParser(
        prog="sched-accel",
        description="Accelerate a legacy job's sequential fetch loop, with no change to its code.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--config", metavar="PATH", help="the TOML config (default: as described below)")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    run = commands.add_parser("run", help="run a command with the start-up hook active in its Python processes")
    run.add_argument("cmd", nargs=argparse.REMAINDER, metavar="-- COMMAND ...")
    check_command = commands.add_parser("check", help="load the config, import the targets, print what would be patched")
    check_command.add_argument(
        "--trust-folder",
        action="store_true",
        help="import the targets even from files or folders that fail the trust rule (others could have written "
        "them); without it their names are read from their source, never run",
    )
    commands.add_parser("doctor", help="check that the start-up hook is installed and active in this environment")
    commands.add_parser(
        "status",
        help="show the flag, what is switched off, and each target's last run: ok, retried, lost, 429s, "
        "concurrency reached, time waiting on limits",
    )
    for name, verb in (("off", "switch off"), ("on", "switch back on")):
        command = commands.add_parser(name, help=f"{verb} TARGET (default: every target) in running processes")
        command.add_argument("target", nargs="?", help="a target's loop as declared, e.g. legacy_app.jobs:update_scores")
    args = parser.parse_args(argv)
    if args.config:
        os.environ[boot.CONFIG_ENV] = os.path.abspath(args.config)
    handlers = {"run": _run, "check": _check, "doctor": _doctor, "status": _status, "on": _on, "off": _off}
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


def _control(settings: Settings | None) -> ControlFile:
    if settings is not None:
        return ControlFile(settings.control_file)
    return ControlFile(default_control_file())


# -- run -----------------------------------------------------------------------------------
def _run(args: argparse.Namespace) -> int:
    cmd = list(args.cmd)
    if cmd and cmd[0] == "--":
        cmd = cmd[1:]
    if not cmd:
        _err("nothing to run; usage: sched-accel run -- python job.py")
        return 2
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (BOOTSTRAP, env.get("PYTHONPATH", "")) if p)
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
        _say(f"[ok]   config: {settings.path} ({len(settings.targets)} target(s)); run `sched-accel check` to resolve them")
    control = _control(settings)
    cstate = control.state()
    if cstate.problem:
        ok = False
        _say(f"[FAIL] control file {control.path} {cstate.problem}")
    else:
        off = ", ".join(sorted(cstate.off)) or "nothing"
        _say(f"[ok]   control file {control.path}: switched off: {off}")
    return 0 if ok else 1


# -- status, on, off -----------------------------------------------------------------------
def _status(args: argparse.Namespace) -> int:
    _say(_flag_line())
    settings, problem = _settings_or_none()
    if problem:
        _err(problem)
    control = _control(settings)
    state = control.state()
    _say(f"control file: {control.path}")
    if state.problem:
        _say(f"  refused: {state.problem} (everything runs unaccelerated)")
    refused: list[str] = []
    runs = load_runs(os.path.dirname(control.path), refused)
    for line in refused:
        _say(f"  skipped: {_shown(line)}")
    if settings is not None:
        _say(f"coordination: {settings.coordination.where}")
        for target in settings.targets:
            once = ", single_run" if settings.runs_once(target) else ""
            switched = "off" if state.is_off(target.name) else "on"
            _say(f"  {target.name}: {switched} ({target.mode}, concurrency {target.concurrency}{once})")
            _say(f"    {_last_run(runs.pop(target.name, None))}")
        for name, conf in sorted(settings.hosts.items()):
            limits = [f"{key} {value:g}" for key, value in (("concurrency", conf.concurrency), ("per_second", conf.per_second))
                      if value is not None]
            _say(f"  host {name}: {', '.join(limits + [f'burst {conf.burst}'])}" + ("" if conf.adaptive else ", not adaptive"))
    for name, record in sorted(runs.items()):  # runs of targets no longer in the config
        _say(f"  {_shown(name)} (not in the config): {_last_run(record)}")
    for host, (rate, how) in sorted(LearnedRates(os.path.dirname(control.path)).kept().items()):
        said = "told" if how == "told" else "learned"
        where = "in its answers" if how == "told" else "from its refusals"
        _say(f"  host {_shown(host)}: {said} {rate:.3g} requests/s {where} (the next run starts at it)")
    return 0 if problem is None and state.problem is None else 1


_RUN_FIELDS = ("ok", "failed", "retried", "gave_up", "lost", "http_429", "peak_requests", "limit_wait")
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
        f"\\x{ord(ch):02x}" if ord(ch) < 0x20 or 0x7F <= ord(ch) <= 0x9F else f"\\u{ord(ch):04x}" if ch in _INVISIBLE else ch
        for ch in text
    )


def _when(finished: Any) -> str:
    try:
        return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(finished)))
    except (TypeError, ValueError, OverflowError, OSError):
        return "unknown time"


def _last_run(record: dict[str, Any] | None) -> str:
    """A target's last recorded run, in one line, then its hosts as that process saw them;
    everything from the file escaped."""
    if record is None:
        return "last run: none recorded yet"
    run = record["run"]
    counts = " ".join(f"{key}={run[key]}" for key in _RUN_FIELDS if key in run)
    text = _shown(
        f"last run: {_when(record.get('finished', 0))} (pid {record.get('pid')}), outcome={run.get('outcome')} "
        f"{run.get('seconds')} s, items={run.get('items')} {counts}"
    )
    hosts = record.get("hosts")
    for line in hosts if isinstance(hosts, list) else []:
        text += f"\n      host {_shown(line)}"
    return text


def _switch(args: argparse.Namespace, off: bool) -> int:
    settings, problem = _settings_or_none()
    control = _control(settings)
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
            _err("every target is off (sched-accel off); `sched-accel on` turns all of them back on")
    try:
        control.write(frozenset(current))
    except (OSError, SchedAccelError) as exc:
        _err(f"cannot write the control file {control.path}: {exc}; set SCHED_ACCEL_CONTROL to a writable path")
        return 1
    what = name or "every target"
    _say(f"{what} switched {'off' if off else 'on'} in {control.path}; running processes follow at their next run of the loop")
    return 0


def _on(args: argparse.Namespace) -> int:
    return _switch(args, off=False)


def _off(args: argparse.Namespace) -> int:
    return _switch(args, off=True)
