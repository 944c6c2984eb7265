"""Why a run did not accelerate, in one line an on-call engineer can act on.

A run that served nothing from what it sent ahead says so at its end (``not_accelerated``),
with the first thing that explains it: the requests differed from the ones sent ahead (and
in which header), nothing recorded yet for ``items = "learned"``, no request carrying an
item's value (with the first request and the first item, to compare), or patterns learned
from the first items that the loop never followed.
"""

from __future__ import annotations

from .._log import event
from ._http_run import HttpRun

__all__ = ["say_why", "why_not"]


def why_not(run: HttpRun, items_text: str) -> str | None:
    """Why nothing was prefetched, when nothing was, else None."""
    if run.hits:
        return None
    if not (run.misses or run.other):
        if run.replay or not run.pulled:
            return None  # no items (or none recorded yet), and no request: nothing to say
        return (
            "the loop made no request through httpx, requests or aiohttp (urllib's are never sent ahead); "
            'if its per-item call only reads, name it with fetch = "module:qualname"'
        )
    if run.differs is not None:
        return (
            f"the loop's requests differed from the ones sent ahead (in {run.differs}), so none was served; "
            "a header that changes on every request cannot be prefetched"
        )
    if run.replay and not run.learned:
        if run.pulled == 0:
            return 'no requests were recorded yet (items = "learned"): this run records them, the next one prefetches'
        return "none of the loop's requests was among the ones recorded in its last run"
    if not run.learned:
        first = run.first_miss
        asked = f"{first.method} {first.url}" if first is not None else "no GET or HEAD request"
        item = repr(run.ahead[0].item)[:80] if run.ahead else "none"
        return (
            f"no request of the loop contains a value of an item (first request: {asked}; first item: {item}); "
            f"check items = {items_text}"
        )
    if all(known.retired for known in run.learned):
        return "the requests predicted from the first items were never the ones the loop made next"
    return None


def say_why(run: HttpRun, items_text: str) -> None:
    """One line when a run prefetched nothing, saying why."""
    why = why_not(run, items_text)
    if why is not None:
        event("WARNING", "not_accelerated", why, target=run.name, requests=run.misses + run.other)
