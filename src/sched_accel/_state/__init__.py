"""State on disk: what running processes read (the control file, learned calls) and what
they leave for ``sched-accel status`` (the last runs), all under one trust rule.

- ``_trust``: the rule for reading (no symlinks, regular files of this user that only it
  can write, in folders only it can change) and :class:`Refused`, what fails it;
- ``_files``: the writer (atomic, 0600, folders created 0700 whatever the umask);
- ``_apps``: each app's own folder of the state folder (``apps/<app>/``), and what a config may name;
- ``_control``: the control files that ``sched-accel on|off`` writes (the app's, the user's) and
  ``$SCHED_ACCEL_DISABLED_TARGETS``;
- ``_secret``: the per-app secret that signs learned calls;
- ``_learned``: the per-item calls of a loop's last run (``items = "learned"``);
- ``_runs``: each target's last run, for ``sched-accel status``;
- ``_rates``: the rates hosts told us, for the next run.
"""

from __future__ import annotations

from ._apps import AppState, control_file_problem, known_apps, old_state
from ._control import (
    ALL,
    CONTROL_ENV,
    DISABLED_ENV,
    ControlFile,
    Controls,
    ControlState,
    default_control_file,
    disabled_targets,
)
from ._files import floor, write_private
from ._learned import MAX_RECORDED, LearnedCalls, Recorder
from ._rates import LearnedRates
from ._runs import has_run, load_kept, load_plain, load_runs, runs_folder, save_run
from ._trust import Refused, read_trusted, unsafe

__all__ = [
    "ALL",
    "CONTROL_ENV",
    "DISABLED_ENV",
    "MAX_RECORDED",
    "AppState",
    "ControlFile",
    "ControlState",
    "Controls",
    "LearnedCalls",
    "LearnedRates",
    "Recorder",
    "Refused",
    "control_file_problem",
    "default_control_file",
    "disabled_targets",
    "known_apps",
    "has_run",
    "load_kept",
    "load_plain",
    "load_runs",
    "old_state",
    "read_trusted",
    "runs_folder",
    "save_run",
    "unsafe",
    "floor",
    "write_private",
]
