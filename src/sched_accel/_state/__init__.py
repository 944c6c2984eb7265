"""State on disk: what running processes read (the control file, learned calls) and what
they leave for ``sched-accel status`` (the last runs), all under one trust rule.

- ``_trust``: the rule for reading (no symlinks, regular files of this user that only it
  can write, in folders only it can change) and :class:`Refused`, what fails it;
- ``_files``: the writer (atomic, 0600, folders created 0700 whatever the umask);
- ``_control``: the control file that ``sched-accel on|off`` writes;
- ``_secret``: the per-user secret that signs learned calls;
- ``_learned``: the per-item calls of a loop's last run (``items = "learned"``);
- ``_runs``: each target's last run, for ``sched-accel status``;
- ``_rates``: the rates hosts told us, for the next run.
"""

from __future__ import annotations

from ._control import ALL, CONTROL_ENV, ControlFile, ControlState, default_control_file
from ._files import write_private
from ._learned import MAX_RECORDED, LearnedCalls, Recorder
from ._rates import LearnedRates
from ._runs import load_runs, runs_folder, save_run
from ._trust import Refused, read_trusted, unsafe

__all__ = [
    "ALL",
    "CONTROL_ENV",
    "MAX_RECORDED",
    "ControlFile",
    "ControlState",
    "LearnedCalls",
    "LearnedRates",
    "Recorder",
    "Refused",
    "default_control_file",
    "load_runs",
    "read_trusted",
    "runs_folder",
    "save_run",
    "unsafe",
    "write_private",
]
