"""Targets in ``__main__``: ``python jobs/tracker.py`` and ``python -m pkg.job``, in real interpreters."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from .conftest import ENV_KEYS, App

#: Their child pythons must run as in production, without a tracer (see conftest).
pytestmark = pytest.mark.usefixtures("unmeasured_children")

FLAG = "ENABLE_SCHEDULER_OPTIMIZATION"

# A job script as legacy apps write them: output before, the loop, output after.
SCRIPT = """
    import sys

    print("start", sys.argv[1:])


    def main():
        print("sequential")
        return 0


    if __name__ == "__main__":
        main()
        print("end patched=" + str(hasattr(main, "__wrapped__")))
"""
REPLACEMENT = """
    def main():
        print("parallel")
        return 0
"""
CLASS_SCRIPT = """
    class Job:
        def __init__(self, factor):
            self.factor = factor

        def run(self, items):
            print("sequential")
            return [self.factor * item for item in items]


    if __name__ == "__main__":
        print("start")
        print(Job(2).run([1, 2, 3]))
        print("end patched=" + str(hasattr(Job.__dict__["run"], "__wrapped__")))
"""
CLASS_REPLACEMENT = """
    def run(self, items):
        print("parallel")
        return [self.factor * item for item in items]
"""

_EVENT = re.compile(r"\bsched_accel\.([a-z_]+)")


def events(stderr: str) -> list[str]:
    """The event name of each stderr line (a line that is not one of ours is kept whole)."""
    return [m.group(1) if (m := _EVENT.search(line)) else line for line in stderr.splitlines()]


def run(app: App, *args: str, flag: str, cwd: str = "") -> subprocess.CompletedProcess[str]:
    """Run this venv's python with ``args`` in ``app.root / cwd``, the flag as given."""
    env = {k: v for k, v in os.environ.items() if k not in ENV_KEYS}
    env.update(
        {
            FLAG: flag,
            "SCHED_ACCEL_CONFIG": str(app.root / "sched_accel.toml"),
            "SCHED_ACCEL_CONTROL": str(app.root / "state" / "control.json"),
        }
    )
    return subprocess.run(
        [sys.executable, *args], cwd=app.root / cwd, env=env, capture_output=True, text=True, timeout=60
    )


def assert_patched_only_when_on(off: subprocess.CompletedProcess[str], on: subprocess.CompletedProcess[str]) -> None:
    """Flag off runs the original; flag on runs the replacement; every other line is identical."""
    assert off.returncode == 0, off.stderr
    assert on.returncode == 0, on.stderr
    assert off.stderr == ""
    assert "sequential" in off.stdout and "end patched=False" in off.stdout
    expected = off.stdout.replace("sequential", "parallel").replace("patched=False", "patched=True")
    assert on.stdout == expected
    assert sorted(events(on.stderr)) == ["active", "patched", "run"], on.stderr


@pytest.fixture
def tracker(app: App) -> App:
    """jobs/tracker.py, declared by its path, with its replacement next to it."""
    app.write("jobs/tracker.py", SCRIPT)
    app.write("jobs/tracker_accel.py", REPLACEMENT)
    app.config('[[targets]]\nloop = "jobs/tracker.py:main"\nreplacement = "tracker_accel:main"\n')
    return app


@pytest.mark.parametrize(
    ("cwd", "script"),
    [("", "jobs/tracker.py"), ("jobs", "tracker.py"), ("jobs", "../jobs/./tracker.py"), ("", "ABSOLUTE")],
    ids=["relative", "from-its-folder", "dotted-path", "absolute"],
)
@pytest.mark.slow
def test_script_target_is_patched_only_with_the_flag(tracker: App, cwd: str, script: str) -> None:
    """`python jobs/tracker.py` (any way the path is spelled) is patched with the flag on, not off."""
    if script == "ABSOLUTE":
        script = str(tracker.root / "jobs" / "tracker.py")
    off = run(tracker, script, "--verbose", flag="0", cwd=cwd)
    on = run(tracker, script, "--verbose", flag="1", cwd=cwd)
    assert off.stdout.startswith("start ['--verbose']\n")
    assert_patched_only_when_on(off, on)


def test_a_path_form_loop_is_patched_when_its_module_runs_with_dash_m(tracker: App) -> None:
    """`loop = "jobs/tracker.py:main"` and `python -m jobs.tracker`: the same file runs as
    __main__, so it is patched (it was silent: the hook waited for a script path never run)."""
    tracker.write("jobs/__init__.py", "")
    tracker.write("tracker_accel.py", REPLACEMENT)  # from the working folder, which -m puts on the path
    off = run(tracker, "-m", "jobs.tracker", "x", flag="0")
    on = run(tracker, "-m", "jobs.tracker", "x", flag="1")
    assert_patched_only_when_on(off, on)


def test_other_script_in_the_folder_is_left_alone(tracker: App) -> None:
    """A script that is not declared runs untouched and loads nothing of ours, flag on."""
    tracker.write(
        "jobs/other.py",
        """
        import sys

        print(sorted(m for m in ("sched_accel", "wrapt", "loguru", "tomllib") if m in sys.modules))
        """,
    )
    out = run(tracker, "jobs/other.py", flag="1")
    assert out.returncode == 0, out.stderr
    assert out.stdout == "[]\n"
    assert out.stderr == ""


def test_a_script_named_by_module_is_said_with_the_path_to_write(app: App) -> None:
    """``loop = "jobs.tracker:main"`` for a script run as ``python jobs/tracker.py``: Python runs
    it as ``__main__``, never as ``jobs.tracker``, so nothing is patched; the exit line says
    so and what to write instead."""
    app.write("jobs/tracker.py", SCRIPT)
    app.write("jobs/tracker_accel.py", REPLACEMENT)
    app.config('[[targets]]\nloop = "jobs.tracker:main"\nreplacement = "tracker_accel:main"\n')
    out = run(app, "jobs/tracker.py", flag="1")
    assert out.returncode == 0 and "sequential" in out.stdout, out.stderr
    assert events(out.stderr) == ["never_imported"], out.stderr
    assert "jobs.tracker is this process's main script" in out.stderr
    assert 'name its loop by path, loop = "jobs/tracker.py:<function>"' in out.stderr


def test_module_run_with_dash_m_is_patched_only_with_the_flag(app: App) -> None:
    """`python -m pkg.job` declared as `pkg.job:main` is patched with the flag on, not off."""
    app.write("pkg/__init__.py", "")
    app.write("pkg/job.py", SCRIPT)
    app.write("pkg/accel.py", REPLACEMENT)
    app.config('[[targets]]\nloop = "pkg.job:main"\nreplacement = "pkg.accel:main"\n')
    off = run(app, "-m", "pkg.job", "x", flag="false")
    on = run(app, "-m", "pkg.job", "x", flag="true")
    assert off.stdout.startswith("start ['x']\n")
    assert_patched_only_when_on(off, on)


@pytest.mark.parametrize("command", [("-m", "pkg.job", "x"), ("pkg/job.py", "x")], ids=["dash-m", "script"])
def test_a_loop_named_in_dunder_main_is_the_running_modules(app: App, command: tuple[str, ...]) -> None:
    """`loop = "__main__:main"` names whatever runs as the program: `python -m pkg.job` or
    `python pkg/job.py`, patched once main is defined there (it was resolved at start-up, before
    the module's body ran, and said to be missing)."""
    app.write("pkg/__init__.py", "")
    app.write("pkg/job.py", SCRIPT)
    app.write("pkg/accel.py", REPLACEMENT)  # "accel" from the script's folder (python pkg/job.py)
    app.write("accel.py", REPLACEMENT)  # and from the working folder (python -m pkg.job)
    app.config('[[targets]]\nloop = "__main__:main"\nreplacement = "accel:main"\n')
    off = run(app, *command, flag="false")
    on = run(app, *command, flag="true")
    assert_patched_only_when_on(off, on)


def test_check_says_what_to_write_for_a_loop_named_in_dunder_main(app: App) -> None:
    """`sched-accel check` runs as its own __main__: it says so, and the two names to use instead."""
    app.config('[[targets]]\nloop = "__main__:main"\nreplacement = "pkg_accel:main"\n')
    out = run(app, "-m", "sched_accel", "check", flag="")
    assert out.returncode == 1
    assert "__main__ is whatever module runs as the program" in out.stdout
    assert 'loop = "pkg.job:main"' in out.stdout and 'loop = "job.py:main"' in out.stdout


def test_method_of_a_class_in_main_is_patched_only_with_the_flag(app: App) -> None:
    """`loop = "job.py:Job.run"`: a method of a class defined in the script is patched, gets self."""
    app.write("job.py", CLASS_SCRIPT)
    app.write("job_accel.py", CLASS_REPLACEMENT)
    app.config('[[targets]]\nloop = "job.py:Job.run"\nreplacement = "job_accel:run"\n')
    off = run(app, "job.py", flag="")
    on = run(app, "job.py", flag="yes")
    assert off.stdout == "start\nsequential\n[2, 4, 6]\nend patched=False\n"
    assert_patched_only_when_on(off, on)
    assert "kind=method" in on.stderr
