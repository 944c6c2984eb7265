"""State on disk: what running processes read (the control file, learned calls) and what
they leave for ``sched-accel status`` (the last runs), all written by one owner-only writer.

- ``_files``: the writer (atomic, 0600 in a 0700 folder) and the trust check for reading;
- ``_control``: the control file that ``sched-accel on|off`` writes;
- ``_learned``: the per-item calls of a loop's last run (``items = "learned"``);
- ``_runs``: each target's last run, for ``sched-accel status``.
"""

from __future__ import annotations

from ._control import ALL, CONTROL_ENV, ControlFile, ControlState, default_control_file
from ._files import unsafe, write_private
from ._learned import MAX_RECORDED, LearnedCalls, Recorder
from ._runs import load_runs, runs_folder, save_run

__all__ = [
    "ALL",
    "CONTROL_ENV",
    "MAX_RECORDED",
    "ControlFile",
    "ControlState",
    "LearnedCalls",
    "Recorder",
    "default_control_file",
    "load_runs",
    "runs_folder",
    "save_run",
    "unsafe",
    "write_private",
]
