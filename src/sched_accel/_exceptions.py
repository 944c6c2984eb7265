"""The one exception hierarchy of sched_accel.

::

    SchedAccelError
    ├── ConfigError        the config file cannot be read, parsed or validated
    ├── TargetError        a declared target does not resolve, or cannot be patched
    └── ControlFileError   the control file is unsafe or unreadable

The host app never sees these from the start-up hook: there they are logged in one line
and the app runs unpatched. ``sched-accel check`` and the programmatic API raise them.
"""

from __future__ import annotations

__all__ = ["ConfigError", "ControlFileError", "SchedAccelError", "TargetError"]


class SchedAccelError(Exception):
    """Base class of every error sched_accel raises itself."""


class ConfigError(SchedAccelError):
    """The config cannot be used; the message says where, what and how to fix it."""


class TargetError(SchedAccelError):
    """A declared ``module:qualname`` does not resolve, or is not something we can patch."""


class ControlFileError(SchedAccelError):
    """The control file is unsafe (writable by others) or unreadable."""
