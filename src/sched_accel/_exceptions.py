"""The one exception hierarchy of sched_accel.

::

    SchedAccelError
    ├── ConfigError        the config file cannot be read, parsed or validated
    ├── TargetError        a declared target does not resolve, or cannot be patched
    ├── ControlFileError   the control file is unsafe or unreadable
    └── CoordinationUnavailable  the coordination backend (Redis, the machine's store) cannot answer

    Stopped (a BaseException)  a shadow call tried an effect: it stops where it stands

The host app never sees these from the start-up hook: there they are logged in one line
and the app runs unpatched. ``sched-accel check`` and the programmatic API raise them.
:class:`CoordinationUnavailable` is for the limiter: it falls back to its local share.

:class:`Stopped` is no error and has its own root: like ``KeyboardInterrupt`` or trio's
``Cancelled`` it derives from ``BaseException``, so that the app's ``except Exception``
cannot swallow it. It is raised only inside a shadow call (``_shadow``) and caught by the
shadow runner: neither the app's real run nor a user ever sees it.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "ConfigError",
    "ControlFileError",
    "CoordinationUnavailable",
    "Problem",
    "SchedAccelError",
    "Stopped",
    "TargetError",
]


class SchedAccelError(Exception):
    """Base class of every error sched_accel raises itself."""


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong in a config: under which target (``where``: its label, or ''), which
    key (with its table's path: ``targets.max_age``), the value found and what is allowed;
    ``text``, the sentence that says it (what :class:`ConfigError`'s message is made of). A
    problem of no one key's value (an unknown key, two keys that contradict) has only a text."""

    text: str
    where: str = ""
    key: str = ""
    value: object = None
    allowed: str = ""

    def __str__(self) -> str:
        return self.text


class ConfigError(SchedAccelError):
    """The config cannot be used; the message says where, what and how to fix it. A config
    read and found wrong also holds each of its :class:`Problem` s (``problems``), in the
    order they were found; one that could not be read holds none."""

    def __init__(self, message: str, problems: tuple[Problem, ...] = ()) -> None:
        super().__init__(message)
        self.problems = problems


class TargetError(SchedAccelError):
    """A declared ``module:qualname`` does not resolve, or is not something we can patch."""


class ControlFileError(SchedAccelError):
    """The control file is unsafe (writable by others) or unreadable."""


class CoordinationUnavailable(SchedAccelError):
    """The coordination backend cannot answer (server down or slow, store refused or locked).

    The only error a backend raises for its store, whatever failed below it (a redis-py or an
    ``OSError``, kept as ``__cause__``), so the caller has one thing to catch before falling
    back to its local limiter. Whether the call took anything is unknown (a timeout may come
    after the server did it): what a backend takes expires, so the caller need not undo it.
    """


class Stopped(BaseException):
    """A shadow call tried an effect (a write, a subprocess, a commit): it stops where it stands.

    ``why`` says what and where, e.g. ``"opened 'out.csv' for writing (jobs.py:12)"``. Not an
    :class:`Exception`, so that an ``except Exception`` in the app's code lets it through.
    """

    def __init__(self, why: str) -> None:
        super().__init__(why)
        self.why = why
