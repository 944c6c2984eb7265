"""Structured log events, one line each, named ``sched_accel.<event>``.

Records go through loguru (the module name ``sched_accel``, the event and its fields in
``extra``), or, once routed with :func:`log_to_stdlib` or ``SCHED_ACCEL_LOG=stdlib``, to
the stdlib logger ``sched_accel`` that legacy apps already configure. loguru itself is
imported at the first record, never at start-up.

Every record is redacted first (:mod:`._redact`): its message and each field value, as
the line shows them and as ``extra`` holds them, have URLs' passwords, secret-looking
query values and credentials replaced by ``***``.
"""

from __future__ import annotations

import os
import sys
import threading
from typing import Any

from ._redact import redact_text

__all__ = ["event", "internal_error", "log_to_loguru", "log_to_stdlib", "reset"]

LOG_ENV = "SCHED_ACCEL_LOG"
_LEVELS = {"DEBUG": 10, "INFO": 20, "SUCCESS": 25, "WARNING": 30, "ERROR": 40, "CRITICAL": 50}


class _Router:
    """Where records go; one object, changed under a lock."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.stdlib = _stdlib_from_env()


def _stdlib_from_env() -> bool:
    return os.environ.get(LOG_ENV, "").strip().lower() == "stdlib"


_router = _Router()


def log_to_stdlib() -> None:
    """Send sched_accel's records to ``logging.getLogger("sched_accel")`` instead of loguru."""
    with _router.lock:
        _router.stdlib = True


def log_to_loguru() -> None:
    """Send sched_accel's records through loguru (the default)."""
    with _router.lock:
        _router.stdlib = False


def reset() -> None:
    """Route records as ``$SCHED_ACCEL_LOG`` says, as at start-up (for tests)."""
    with _router.lock:
        _router.stdlib = _stdlib_from_env()


def _format_value(value: object) -> str:
    text = str(value)
    if not text or any(ch in text for ch in " \t\"=") or "\n" in text:
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    return text


def render(name: str, message: str, fields: dict[str, Any]) -> str:
    """``sched_accel.NAME k=v k=v - message``: greppable by event and by field."""
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


def event(level: str, name: str, message: str = "", **fields: Any) -> None:
    """Log one event, redacted. Never raises: logging must not be what breaks the host app."""
    message = redact_text(message)
    fields = {key: _redacted(value) for key, value in fields.items()}
    line = render(name, message, fields)
    try:
        if _router.stdlib:
            import logging

            logging.getLogger("sched_accel").log(
                _LEVELS.get(level, 20),
                line,
                extra={"sched_accel_event": f"sched_accel.{name}", "sched_accel": fields},
            )
            return
        from loguru import logger

        # depth=1: the record names the function of ours that logged it, not this helper.
        logger.patch(lambda record: record.update({"name": "sched_accel"})).bind(
            sched_accel_event=f"sched_accel.{name}", **{f"sched_accel_{k}": v for k, v in fields.items()}
        ).opt(depth=1).log(level, line)
    except Exception:  # pragma: no cover - a broken logging setup: one plain line
        sys.stderr.write(line + "\n")


def internal_error(where: str, exc: BaseException) -> None:
    """Our own machinery failed: say so once, and that the app runs as it would without us."""
    event(
        "ERROR",
        "internal_error",
        "sched_accel stays out of the way and the original code runs; please report this line",
        where=where,
        error=f"{type(exc).__name__}: {exc}",
    )
