"""The start-up hook (_sched_accel_boot), in real interpreters: the flag, lazy activation,
idempotence, never crashing the host, and switching off a running process."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap

import pytest

import _sched_accel_boot as boot

from .conftest import ENV_KEYS, App

#: Their child pythons must run as in production, without a tracer (see conftest).
pytestmark = pytest.mark.usefixtures("unmeasured_children")

FLAG = "ENABLE_SCHEDULER_OPTIMIZATION"
HEAVY = ("sched_accel", "wrapt", "loguru", "tomllib")

JOBS = """
    def update(tokens):
        print("sequential", tokens)
        return [t * 2 for t in tokens]
"""
ACCEL = """
    RUNS = []

    def update(tokens):
        RUNS.append(list(tokens))
        print("accelerated", tokens)
        return [t * 2 for t in tokens]
"""
CONFIG = """
    [[targets]]
    loop = "jobs:update"
    replacement = "accel:update"
"""
# The app: its stdout is what must not change; what it loaded goes to a file.
MAIN = """
    import json
    import sys

    import jobs

    print(jobs.update([1, 2, 3]))
    print(type(jobs.update).__name__)
    with open("loaded.json", "w") as file:
        json.dump(sorted(m for m in sys.modules if m in {watched!r}), file)
"""
WATCHED = (*HEAVY, "_sched_accel_boot")
SEQUENTIAL_OUTPUT = "sequential [1, 2, 3]\n[2, 4, 6]\nfunction\n"
ACCELERATED_OUTPUT = "accelerated [1, 2, 3]\n[2, 4, 6]\nSchedAccelWrapper\n"

_EVENT = re.compile(r"\bsched_accel\.([a-z_]+)")


def events(stderr: str) -> list[str]:
    """The event name of each stderr line (a line that is not one of ours is kept whole)."""
    return [m.group(1) if (m := _EVENT.search(line)) else line for line in stderr.splitlines()]


def loaded(app: App) -> list[str]:
    """Which of WATCHED the last run of MAIN had in sys.modules."""
    return json.loads((app.root / "loaded.json").read_text())  # type: ignore[no-any-return]


@pytest.fixture
def job(app: App) -> App:
    """An app whose main.py calls jobs.update once; accel.update is its replacement."""
    app.write("jobs.py", JOBS)
    app.write("accel.py", ACCEL)
    app.write("main.py", MAIN.format(watched=WATCHED))
    app.config(CONFIG)
    return app


def config_env(app: App, **extra: str) -> dict[str, str]:
    """SCHED_ACCEL_CONFIG pointing at the app's config, plus ``extra``."""
    return {"SCHED_ACCEL_CONFIG": str(app.root / "sched_accel.toml"), **extra}


# -- pure functions ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (None, False),
        ("", False),
        ("0", False),
        ("false", False),
        ("No", False),
        ("OFF", False),
        (" 0 ", False),
        ("1", True),
        ("true", True),
        ("TRUE", True),
        ("Yes", True),
        ("on", True),
        (" on\n", True),
        ("banana", None),
        ("2", None),
        ("enabled", None),
    ],
)
def test_flag_value_truth_table(raw: str | None, expected: bool | None) -> None:
    """flag_value: 1/true/yes/on (any case) are on, unset/empty/0/false/no/off are off, else None."""
    assert boot.flag_value(raw) is expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('[[targets]]\nloop = "jobs:update"\n', ["jobs:update"]),
        ('[[targets]]\nloop="jobs:update"\n', ["jobs:update"]),
        ('[[targets]]\n"loop" = "a.b:C.run"\n', ["a.b:C.run"]),
        ("[[targets]]\n'loop' = 'a:b'\n", ["a:b"]),
        ("[[targets]]\nloop = 'jobs/tracker.py:main'\n", ["jobs/tracker.py:main"]),
        ('targets = [{ loop = "a:b", replacement = "c:d" }, {loop="e:f"}]\n', ["a:b", "e:f"]),
        ('[[tool.sched_accel.targets]]\n  loop\t=\t"x.y:z"\n', ["x.y:z"]),
    ],
    ids=["bare", "no-spaces", "double-quoted-key", "single-quotes", "script-path", "inline-tables", "indented"],
)
def test_prescan_finds_loop_values(text: str, expected: list[str]) -> None:
    """prescan finds every one-line string value of a `loop` key, however the key is written."""
    assert boot.prescan(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        'loops = "a:b"\n',
        'fetch_loop = "a:b"\n',
        'my-loop = "a:b"\n',
        'loop2 = "a:b"\n',
        'replacement = "loop:b"\n',
        "loop = 3\n",
        'loop = "unterminated\n"',
        "",
    ],
)
def test_prescan_ignores_other_keys(text: str) -> None:
    """prescan ignores keys that merely contain `loop`, non-string values and broken strings."""
    assert boot.prescan(text) == []


# -- the flag, in real interpreters ----------------------------------------------------------
def test_flag_unset_loads_nothing(job: App) -> None:
    """Flag unset: the original runs, stderr is empty, not even the boot module is imported."""
    out = job.run("main.py", env=config_env(job))
    assert out.returncode == 0, out.stderr
    assert out.stdout == SEQUENTIAL_OUTPUT
    assert out.stderr == ""
    assert loaded(job) == []


@pytest.mark.parametrize("value", ["0", "false", "", "OFF", "no"])
def test_flag_off_is_byte_identical_to_unset(job: App, value: str) -> None:
    """Flag off: output byte-identical to flag unset, target unpatched, nothing but the boot module loaded."""
    unset = job.run("main.py", env=config_env(job))
    off = job.run("main.py", env=config_env(job, **{FLAG: value}))
    assert off.returncode == unset.returncode == 0, off.stderr
    assert off.stdout == unset.stdout == SEQUENTIAL_OUTPUT
    assert off.stderr == ""
    assert not set(loaded(job)) & set(HEAVY)


def test_flag_invalid_warns_once_and_stays_off(job: App) -> None:
    """An unrecognised flag value runs unpatched, with exactly one flag_invalid line."""
    out = job.run("main.py", env=config_env(job, **{FLAG: "banana"}))
    assert out.returncode == 0
    assert out.stdout == SEQUENTIAL_OUTPUT
    assert events(out.stderr) == ["flag_invalid"]
    assert "banana" in out.stderr
    assert "wrapt" not in loaded(job)


@pytest.mark.slow
@pytest.mark.parametrize("value", ["1", "true", "YES", "On"])
def test_flag_on_patches_a_module_imported_after_start(job: App, value: str) -> None:
    """Flag on: the target module, imported after start-up, is patched and the replacement runs."""
    out = job.run("main.py", env=config_env(job, **{FLAG: value}))
    assert out.returncode == 0, out.stderr
    assert out.stdout == ACCELERATED_OUTPUT
    assert events(out.stderr) == ["patched", "active", "run"]
    assert "config=" in out.stderr and "targets=1 patched=jobs:update waiting_for=- pid=" in out.stderr


@pytest.mark.parametrize("option", ["-E", "-I"])
def test_an_interpreter_told_to_ignore_the_environment_is_not_patched(job: App, option: str) -> None:
    """``python -E`` and ``-I`` ignore the environment: the flag and $SCHED_ACCEL_CONFIG too
    (the original runs, silently), as the same process without them would be patched."""
    # -I leaves the script's folder off sys.path: main.py is run with it put back
    command = (
        ("main.py",)
        if option == "-E"
        else ("-c", "import runpy, sys; sys.path.insert(0, ''); runpy.run_path('main.py', run_name='__main__')")
    )
    out = job.run(option, *command, env=config_env(job, **{FLAG: "1"}))
    assert out.returncode == 0, out.stderr
    assert out.stdout == SEQUENTIAL_OUTPUT
    assert out.stderr == ""


def test_flag_on_without_a_target_import_stays_lazy(job: App) -> None:
    """Flag on, a process that never imports a target: no TOML parser, wrapt, loguru or sched_accel."""
    job.write("other.py", "VALUE = 42\n")
    probe = (
        "import json, sys, other, _sched_accel_boot as b; "
        f"print(json.dumps([sorted(m for m in {HEAVY!r} if m in sys.modules), b.watcher.watching()]))"
    )
    out = job.run("-c", probe, env=config_env(job, **{FLAG: "1"}))
    assert out.returncode == 0, out.stderr
    # Awaited: the loop's module, and the schedulers whose first tick would say it is still missing.
    assert json.loads(out.stdout) == [[], sorted(["jobs", *boot.SCHEDULERS])]
    # At exit, one plain line (nothing loaded for it): the module of its loop was never imported.
    assert events(out.stderr) == ["never_imported"] and "modules=jobs pid=" in out.stderr


def test_boot_twice_patches_once(job: App) -> None:
    """boot() run again (a .pth processed twice, before or after the import) patches once."""
    job.write(
        "twice.py",
        """
        import site
        import sysconfig

        import _sched_accel_boot as b

        b._booted = False
        b.boot()  # again, before the target is imported
        site.addsitedir(sysconfig.get_paths()["purelib"])  # every .pth line processed again
        import accel
        import jobs

        jobs.update([1])
        b._booted = False
        b.boot()  # again, after the target is patched
        jobs.update([2])
        print(accel.RUNS, hasattr(jobs.update.__wrapped__, "__wrapped__"))
        """,
    )
    out = job.run("twice.py", env=config_env(job, **{FLAG: "1"}))
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[-1] == "[[1], [2]] False"
    assert "sequential" not in out.stdout
    assert events(out.stderr) == ["patched", "active", "run", "run"]


# -- never crash the host ----------------------------------------------------------------------
BROKEN = {
    "broken-toml": ('[[targets]\nloop = "jobs:update"\n', {}, "config_invalid", "not valid TOML"),
    "unknown-key": (
        '[[targets]]\nloop = "jobs:update"\nreplacement = "accel:update"\nspeed = 3\n',
        {},
        "config_invalid",
        "speed; the keys here are",
    ),
    "unknown-top-key": (
        'concurency = 4\n[[targets]]\nloop = "jobs:update"\nreplacement = "accel:update"\n',
        {},
        "config_invalid",
        "unknown key concurency;",
    ),
    "target-unresolved": (
        '[[targets]]\nloop = "jobs:updat"\nreplacement = "accel:update"\n',
        {},
        "target_unresolved",
        "has no attribute 'updat'",
    ),
    "replacement-missing": (
        '[[targets]]\nloop = "jobs:update"\nreplacement = "accel_gone:update"\n',
        {},
        "target_unresolved",
        "No module named 'accel_gone'",
    ),
    "replacement-raises-on-import": (
        '[[targets]]\nloop = "jobs:update"\nreplacement = "accel_bad:update"\n',
        {"accel_bad.py": "raise RuntimeError('accel_bad is broken')\n"},
        "target_unresolved",
        "accel_bad is broken",
    ),
    "replacement-unresolved": (
        '[[targets]]\nloop = "jobs:update"\nreplacement = "accel:updat"\n',
        {},
        "target_unresolved",
        "has no attribute 'updat'",
    ),
    "deep-toml": ("x = " + "[" * 100 + "]" * 100 + "\n", {}, "config_invalid", "more than 32 levels deep"),
    "stdlib-replacement": (
        '[[targets]]\nloop = "jobs:update"\nreplacement = "json:dumps"\n',
        {},
        "config_invalid",
        "json is part of the standard library that sched_accel itself runs on",
    ),
    "c-function-loop": (
        '[[targets]]\nloop = "jobs:update.__call__"\nreplacement = "accel:update"\n',
        {},
        "target_unresolved",
        "is a built-in or C function (method-wrapper)",
    ),
    "internal-error": (  # wrapt itself blows up inside our post-import hook
        CONFIG,
        {"wrapt.py": "raise RuntimeError('this wrapt is broken')\n"},
        "internal_error",
        "this wrapt is broken",
    ),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", list(BROKEN))
def test_a_broken_setup_never_crashes_the_host(job: App, case: str) -> None:
    """Each broken set-up: exit 0, normal output, target unpatched, one line naming what to fix."""
    config, files, event, detail = BROKEN[case]
    job.write("sched_accel.toml", config)
    for name, source in files.items():
        job.write(name, source)
    out = job.run("main.py", env=config_env(job, **{FLAG: "1"}))
    assert out.returncode == 0, out.stderr
    assert out.stdout == SEQUENTIAL_OUTPUT
    # A target that does not resolve is said at its module's import; sched_accel is active all the same.
    assert events(out.stderr) == ([event, "active"] if event != "config_invalid" else [event]), out.stderr
    assert detail in out.stderr


def test_a_target_whose_module_is_never_imported_is_said_at_exit(job: App) -> None:
    """A typo in a loop's module (``jobz``): the start-up line says it is awaited, and the exit says
    it never came, whether the app installed (never_patched) or the hook never had cause to."""
    job.write("sched_accel.toml", '[[targets]]\nloop = "jobz:update"\nreplacement = "accel:update"\n')
    installed = job.run("-c", "import sched_accel, main; sched_accel.install()", env=config_env(job, **{FLAG: "1"}))
    assert installed.returncode == 0, installed.stderr
    assert events(installed.stderr) == ["active", "never_patched"], installed.stderr
    assert "waiting_for=jobz " in installed.stderr and "target=jobz:update" in installed.stderr
    hooked = job.run("main.py", env=config_env(job, **{FLAG: "1"}))
    assert hooked.returncode == 0 and hooked.stdout == SEQUENTIAL_OUTPUT, hooked.stderr
    assert events(hooked.stderr) == ["never_imported"] and "modules=jobz pid=" in hooked.stderr


def test_a_named_but_missing_config_never_crashes_the_host(job: App) -> None:
    """SCHED_ACCEL_CONFIG naming a file that is not there: the app runs unpatched, one line."""
    (job.root / "sched_accel.toml").unlink()
    out = job.run("main.py", env={FLAG: "1", "SCHED_ACCEL_CONFIG": str(job.root / "nowhere.toml")})
    assert out.returncode == 0, out.stderr
    assert out.stdout == SEQUENTIAL_OUTPUT
    assert events(out.stderr) == ["config_invalid"], out.stderr
    assert "nowhere.toml" in out.stderr


def test_no_config_anywhere_is_said_in_one_line_and_cheap(job: App) -> None:
    """Flag on but no config named or found (a child process, a tool elsewhere): one plain line
    saying where a config was looked for (issue 21: "off" must not look like "not installed"),
    and nothing loaded for it."""
    (job.root / "sched_accel.toml").unlink()
    out = job.run(
        "-c",
        "import sys, main; print(sorted(m for m in ('sched_accel', 'loguru', 'tomllib', 'wrapt') if m in sys.modules))",
        env={FLAG: "1"},
    )
    assert out.returncode == 0, out.stderr
    assert events(out.stderr) == ["no_config"]
    assert (
        f"cwd={str(job.root)!r}" in out.stderr
        and "sched_accel.toml" in out.stderr
        and "SCHED_ACCEL_CONFIG=" in out.stderr
    )
    assert out.stdout.endswith("[]\n")


def test_a_control_path_that_is_a_folder_never_crashes_the_host(job: App) -> None:
    """A control file path that is a folder: refused in one line, every run is the original."""
    (job.root / "state" / "control.json").mkdir(parents=True)
    out = job.run("main.py", env=config_env(job, **{FLAG: "1"}))
    assert out.returncode == 0, out.stderr
    assert out.stdout == SEQUENTIAL_OUTPUT.replace("function", "SchedAccelWrapper")
    assert events(out.stderr) == ["patched", "active", "control_file_refused", "run"], out.stderr
    assert (
        "not a regular file" in out.stderr
        and "outcome=off" in out.stderr
        and 'by="a refused control file"' in out.stderr
    )


# -- sched-accel off/on while a process runs ---------------------------------------------------
def test_off_and_on_reach_a_running_process(job: App) -> None:
    """`sched-accel off`, then `on`, written while a process runs, switch its next calls, no restart."""
    job.write(
        "service.py",
        """
        import sys

        import jobs

        for n in (1, 2, 3):
            jobs.update([n])
            print("ready", flush=True)
            if n < 3:
                sys.stdin.readline()  # the test switches, then lets us go on
        """,
    )
    env = {k: v for k, v in os.environ.items() if k not in ENV_KEYS}
    env.update(config_env(job, **{FLAG: "1"}), SCHED_ACCEL_CONTROL=str(job.root / "state" / "control.json"))
    with subprocess.Popen(
        [sys.executable, "service.py"],
        cwd=job.root,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as proc:
        assert proc.stdin is not None and proc.stdout is not None

        def until_ready() -> list[str]:
            lines: list[str] = []
            while (line := proc.stdout.readline()) not in ("ready\n", ""):  # type: ignore[union-attr]
                lines.append(line.rstrip("\n"))
            return lines

        outputs = [until_ready()]
        for command in ("off", "on"):
            switched = job.run("-m", "sched_accel", command, env=config_env(job))
            assert switched.returncode == 0, switched.stderr
            proc.stdin.write("\n")
            proc.stdin.flush()
            outputs.append(until_ready())
        proc.stdin.close()
        assert proc.wait(timeout=30) == 0
        stderr = proc.stderr.read() if proc.stderr else ""
    assert outputs == [["accelerated [1]"], ["sequential [2]"], ["accelerated [3]"]], stderr
    # off: said once, its run the original, timed (outcome=off); then back on
    assert events(stderr) == ["patched", "active", "run", "switched_off", "run", "run"]
    assert [line.split("outcome=")[1].split()[0] for line in stderr.splitlines() if "sched_accel.run " in line] == [
        "ok",
        "off",
        "ok",
    ]


# -- the import watcher itself, in this process ----------------------------------------------


def test_watcher_calls_back_once_per_callback_when_watched_from_many_threads(app: App) -> None:
    """Callbacks registered from many threads at once, then two threads importing at once: each runs exactly once."""
    import threading

    from _sched_accel_boot import ImportWatcher

    app.write("watched_many.py", "import time\ntime.sleep(0.05)\nVALUE = 1\n")
    watcher = ImportWatcher()
    calls: list[int] = []
    lock = threading.Lock()

    def run_all(target: object, count: int) -> None:
        start = threading.Barrier(count)

        def body(index: int) -> None:
            start.wait()
            target(index)  # type: ignore[operator]

        threads = [threading.Thread(target=body, args=(i,)) for i in range(count)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(10)

    try:
        run_all(lambda i: watcher.watch("watched_many", lambda module, i=i: _append(lock, calls, i)), 8)  # type: ignore[misc]
        assert watcher.watching() == ["watched_many"]
        run_all(lambda i: __import__("watched_many"), 2)
        assert sorted(calls) == list(range(8))
        # Once imported, a watch from any thread calls back at once, and only once.
        run_all(lambda i: watcher.watch("watched_many", lambda module, i=i: _append(lock, calls, 100 + i)), 8)  # type: ignore[misc]
        assert sorted(calls) == list(range(8)) + list(range(100, 108))
        assert watcher.watching() == []
    finally:
        watcher.clear()


def _append(lock: object, calls: list[int], index: int) -> None:
    with lock:  # type: ignore[attr-defined]
        calls.append(index)


def test_watcher_leaves_a_module_s_own_loader_alone(app: App) -> None:
    """The real loader is put back only where the import system put ours; a module that refuses it is fine."""
    import importlib.util
    import types

    from _sched_accel_boot import ImportWatcher, _Loader

    path = app.write("guarded.py", "VALUE = 2\n")
    spec = importlib.util.spec_from_file_location("guarded", path)
    assert spec is not None and spec.loader is not None
    fired: list[str] = []
    watcher = ImportWatcher()
    watcher.watch("guarded", lambda module: fired.append(module.__name__))
    wrapper = _Loader(spec.loader, watcher)

    class Refusing(types.ModuleType):
        def __setattr__(self, name: str, value: object) -> None:
            if name == "__loader__":
                raise AttributeError(name)
            super().__setattr__(name, value)

    module = Refusing("guarded")
    object.__setattr__(module, "__loader__", wrapper)
    wrapper.exec_module(module)
    assert (module.VALUE, fired) == (2, ["guarded"])
    assert module.__loader__ is wrapper  # refused: left as it was, the import still ran

    other = types.ModuleType("guarded")
    mine = object()
    other.__loader__ = mine  # type: ignore[assignment]
    _Loader(spec.loader, watcher).exec_module(other)
    assert other.__loader__ is mine  # someone else's loader: not ours to replace
    watcher.clear()


TICKING = {
    "apscheduler": """
        import time

        from apscheduler.schedulers.background import BackgroundScheduler

        scheduler = BackgroundScheduler()
        scheduler.add_job(lambda: print("tick", flush=True), "interval", seconds=0.05, id="job")
        scheduler.start()
        time.sleep(0.2)
        scheduler.shutdown()
    """,
    "schedule": """
        import schedule

        schedule.every(0.05).seconds.do(lambda: print("tick", flush=True))
        import time
        time.sleep(0.06)
        schedule.run_pending()
    """,
}


@pytest.mark.usefixtures("unmeasured_children")
@pytest.mark.parametrize("scheduler", sorted(TICKING))
def test_a_target_module_not_imported_by_the_first_tick_is_said_then(app: App, scheduler: str) -> None:
    """A long-running scheduler whose target names a module it never imports (a typo): its
    first tick says so, not only its exit, which may be weeks away; once."""
    app.write("main.py", TICKING[scheduler])
    app.config('[[targets]]\nloop = "jobz:update"\nitems = "ids"\n')
    out = app.run("main.py", env=config_env(app, **{FLAG: "1"}))
    assert out.returncode == 0, out.stderr
    assert "tick" in out.stdout
    assert events(out.stderr) == ["active", "still_waiting", "never_patched"], out.stderr
    assert "target=jobz:update" in out.stderr and "first tick came and jobz is still not imported" in out.stderr


@pytest.mark.usefixtures("unmeasured_children")
def test_the_first_tick_says_nothing_when_every_target_is_patched(app: App) -> None:
    app.write("jobs.py", "def update(ids):\n    return [i for i in ids]\n")
    app.write("main.py", "import jobs\n" + textwrap.dedent(TICKING["schedule"]))
    app.config('[[targets]]\nloop = "jobs:update"\nitems = "ids"\n')
    out = app.run("main.py", env=config_env(app, **{FLAG: "1"}))
    assert out.returncode == 0, out.stderr
    assert "still_waiting" not in out.stderr and "never_patched" not in out.stderr
