"""sched_accel: make a legacy scheduled job's sequential fetch loop concurrent.

Declare the loop in TOML, set ``ENABLE_SCHEDULER_OPTIMIZATION=true``, restart: the
start-up hook patches it, with no change to the app's code. Unset the flag (or run
``sched-accel off``) and the app behaves exactly as before.
"""

# No `from __future__ import annotations` here: it would bind a public name
# `annotations` in the package namespace (see tests/test_exported_members.py).
from ._activation import (
    install,
    installed,
    is_active,
    patched_targets,
    reset,
    uninstall,
)
from ._config import find_config, load_config
from ._engine import amap, map
from ._exceptions import ConfigError, ControlFileError, SchedAccelError, TargetError
from ._log import log_to_loguru, log_to_stdlib
from ._settings import Settings, Target
from ._targets import TargetSpec

__version__ = "0.1.0"

__all__ = [
    "ConfigError",
    "ControlFileError",
    "SchedAccelError",
    "Settings",
    "Target",
    "TargetError",
    "TargetSpec",
    "__version__",
    "amap",
    "find_config",
    "install",
    "installed",
    "is_active",
    "load_config",
    "log_to_loguru",
    "log_to_stdlib",
    "map",
    "patched_targets",
    "reset",
    "uninstall",
]
