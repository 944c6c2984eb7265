"""The run line's ``ok`` and ``failed`` at HTTP level: each item's request, by its answer.

A function-level run counts its per-item calls: one that returned is ok, one that raised
failed. An HTTP-level run has no per-item function: its items are the loop's GETs and HEADs
that were served from what was sent ahead or missed (``prefetched + missed = items``), and
each counts once, when the loop has its answer: ok when it is answered with a status below
400 (what requests calls ``Response.ok``), failed when it is answered 400 or above (a 429 or
503 that the retries gave up on, too) or when it raised. A request that is no item's (a
POST, a body, a client of the other kind) is counted in ``other`` only.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from .._policy import status_of
from .._report import RunReport

__all__ = ["succeeded", "tally"]


def succeeded(response: object) -> bool:
    """Answered with a status below 400; an answer whose status cannot be read counts as ok."""
    status = status_of(response)
    return not isinstance(status, int) or status < 400


def tally(report: RunReport, answer: Callable[..., Any], *args: Any, is_async: bool) -> Any:
    """``answer(*args)``, counted on ``report``: a sync request once it is answered, an async
    one when the loop awaits it (in the loop's own thread or task: ``RunReport.tally``)."""
    if is_async:
        return _awaited(report, answer(*args))
    try:
        response = answer(*args)
    except Exception:
        report.tally(False)
        raise
    report.tally(succeeded(response))
    return response


async def _awaited(report: RunReport, answer: Awaitable[Any]) -> Any:
    try:
        response = await answer
    except Exception:
        report.tally(False)
        raise
    report.tally(succeeded(response))
    return response
