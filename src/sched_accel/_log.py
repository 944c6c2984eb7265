"""Structured log events, one line each, named ``sched_accel.<event>``: each one of the
registry in :mod:`._events`, never a name written at its call.

Where records go, decided at each record:

- ``SCHED_ACCEL_LOG=stdlib`` or ``=loguru`` (or ``log = ...`` in the config, or
  :func:`log_to_stdlib`/:func:`log_to_loguru`) chooses explicitly;
- else (``auto``, the default) through the stdlib logger ``sched_accel`` when the app has
  configured stdlib logging (a handler on that logger or one above it: ``basicConfig``,
  ``dictConfig``, Django's ``LOGGING``), so our lines come out in the app's own format and
  files; otherwise through loguru (the module name ``sched_accel``, the event and its fields
  in ``extra``), whose default sink is stderr. loguru itself is imported at the first record
  that goes there, never at start-up.

On the stdlib route our logger's threshold is INFO unless the app set a level on the
``sched_accel`` logger itself: an app whose root logger is at WARNING still sees our one
line per run; ``logging.getLogger("sched_accel").setLevel(logging.WARNING)`` quiets it.

Every line carries ``pid=`` (two gunicorn workers' lines can be told apart). Fields that are
numbers stay numbers in ``extra``. Every record is redacted first (:mod:`._redact`): its
message and each field value, as the line shows them and as ``extra`` holds them, have
URLs' passwords, secret-looking query values and credentials replaced by ``***``.
"""

from __future__ import annotations

import os
import sys
import threading
from typing import Any

from ._events import INTERNAL_ERROR, Event
from ._redact import redact_text

__all__ = ["event", "internal_error", "log_to_loguru", "log_to_stdlib", "reset", "route_as_configured"]

LOG_ENV = "SCHED_ACCEL_LOG"
ROUTES = ("auto", "loguru", "stdlib")
_LEVELS = {"DEBUG": 10, "INFO": 20, "SUCCESS": 25, "WARNING": 30, "ERROR": 40, "CRITICAL": 50}
_INFO = 20


class _Router:
    """Where records go; one object, changed under a lock. ``route`` is ``auto``, ``loguru``
    or ``stdlib``; ``explicit`` when the environment chose it (a config's ``log`` then yields)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.route, self.explicit = _route_from_env()


def _route_from_env() -> tuple[str, bool]:
    chosen = os.environ.get(LOG_ENV, "").strip().lower()
    return (chosen, True) if chosen in ("loguru", "stdlib") else ("auto", False)


_router = _Router()


def log_to_stdlib() -> None:
    """Send sched_accel's records to ``logging.getLogger("sched_accel")``, whatever the app configured."""
    with _router.lock:
        _router.route = "stdlib"


def log_to_loguru() -> None:
    """Send sched_accel's records through loguru, whatever the app configured."""
    with _router.lock:
        _router.route = "loguru"


def route_as_configured(route: str) -> None:
    """The config's ``log`` (``auto``, ``loguru`` or ``stdlib``), unless ``$SCHED_ACCEL_LOG`` chose."""
    with _router.lock:
        if not _router.explicit and route in ROUTES:
            _router.route = route


def reset() -> None:
    """Route records as ``$SCHED_ACCEL_LOG`` says, as at start-up (for tests)."""
    with _router.lock:
        _router.route, _router.explicit = _route_from_env()


def _stdlib_logger() -> Any:
    """The ``sched_accel`` stdlib logger when records should go there now, else None."""
    route = _router.route
    if route == "loguru":
        return None
    if route == "auto" and "logging" not in sys.modules:  # not imported: the app configured nothing
        return None
    import logging

    logger = logging.getLogger("sched_accel")
    if route == "auto" and not logger.hasHandlers():
        return None
    return logger


def _to_stdlib(logger: Any, levelno: int, name: str, line: str, fields: dict[str, Any]) -> None:
    """Log through the app's handlers and filters; INFO and above pass unless the app set our
    logger's own level (then the stdlib's usual check applies)."""
    if logger.level:
        if not logger.isEnabledFor(levelno):
            return
    elif levelno < _INFO or logger.manager.disable >= levelno:
        return
    extra = {"sched_accel_event": f"sched_accel.{name}", "sched_accel": fields}
    fn, lno, func, sinfo = logger.findCaller(False, 3)  # the function of ours that called event()
    logger.handle(logger.makeRecord(logger.name, levelno, fn, lno, line, (), None, func, extra, sinfo))


def _format_value(value: object) -> str:
    if value is None:
        return "-"
    text = str(value)
    if not text or any(ch in text for ch in ' \t"=') or "\n" in text:
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    return text


def render(name: str, message: str, fields: dict[str, Any]) -> str:
    """``sched_accel.NAME k=v k=v - message``: greppable by event and by field (None shows as ``-``)."""
    parts = [f"sched_accel.{name}"]
    parts.extend(f"{key}={_format_value(value)}" for key, value in fields.items())
    if message:
        parts.append("- " + message)
    return " ".join(parts)


def _redacted(value: object) -> object:
    """``value`` as a record holds it: a number (or None) as it is; anything else as its text,
    redacted (the text once made, so an object cannot show a secret after the check)."""
    if value is None or isinstance(value, int | float):
        return value
    try:
        text = str(value)
    except Exception:  # noqa: BLE001 - its str() raised: the record says so, and goes on
        return f"<{type(value).__name__}: its text could not be made>"
    return redact_text(text)


def event(what: Event, message: str = "", *, level: str | None = None, **fields: Any) -> None:
    """Log one event of the registry (``_events``), at ``level`` (one of the event's; its first
    by default), redacted, with this process's pid as its last field. Never raises: logging
    must not be what breaks the host app."""
    name = what.name
    if level is None:
        level = what.levels[0]
    message = redact_text(message)
    fields = {key: _redacted(value) for key, value in fields.items()}
    fields["pid"] = os.getpid()
    line = render(name, message, fields)
    try:
        logger = _stdlib_logger()
        if logger is not None:
            _to_stdlib(logger, _LEVELS.get(level, _INFO), name, line, fields)
            return
        from loguru import logger as loguru

        # depth=1: the record names the function of ours that logged it, not this helper.
        loguru.patch(lambda record: record.update({"name": "sched_accel"})).bind(
            sched_accel_event=f"sched_accel.{name}", **{f"sched_accel_{k}": v for k, v in fields.items()}
        ).opt(depth=1).log(level, line)
    except Exception:  # pragma: no cover - a broken logging setup: one plain line
        sys.stderr.write(line + "\n")


def internal_error(where: str, exc: BaseException) -> None:
    """Our own machinery failed: say so once, and that the app runs as it would without us."""
    event(
        INTERNAL_ERROR,
        "sched_accel stays out of the way and the original code runs; please report this line",
        where=where,
        error=f"{type(exc).__name__}: {exc}",
    )
