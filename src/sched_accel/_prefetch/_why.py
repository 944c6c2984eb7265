"""Why a run did not accelerate, in one line an on-call engineer can act on.

A run that served nothing from what it sent ahead says so at its end (``not_accelerated``),
with the first thing that explains it.

- HTTP level: the probe stepped aside (the requests were answered faster than fanning out
  costs), the answers were over the cap on what is kept of each (read by the loop itself),
  the requests differed from the ones sent ahead (and in which header), nothing recorded
  yet for ``items = "learned"``, no request carrying an item's value (with the first
  request and the first item, to compare), or patterns learned from the first items that
  the loop never followed.
- Function level: the probe stepped aside, no calls recorded yet, the ``args`` paths failed
  on the item, or no item matched the call: the line shows the call's arguments, the first
  item and, when the item holds them, the ``args`` that would match.

A step-aside is a choice, not a fault: it is said at INFO; every other reason at WARNING.
"""

from __future__ import annotations

from typing import Any

from .._events import NOT_ACCELERATED
from .._integrations import MAX_KEPT
from .._log import event
from .._state import Recorder
from ._http_run import HttpRun
from ._probe import StepAside
from ._requests import fields
from ._run import PrefetchRun

__all__ = ["say_why", "why_not", "why_not_calls", "would_match"]

_ASIDE = (
    "the probe stepped aside: the first {what} sent ahead was answered within {ms:g} ms, faster than "
    "fanning out costs, so the loop made its {what}s itself, as before"
)


def _aside(step: StepAside, what: str) -> str | None:
    return _ASIDE.format(what=what, ms=step.seconds * 1000) if step.stepped_aside else None


def why_not(run: HttpRun, items_text: str) -> str | None:
    """Why an HTTP-level run prefetched nothing, when it did not, else None."""
    aside = _aside(run.step, "request")
    if aside is not None or run.hits:
        return aside
    if not (run.misses or run.other):
        if run.replay or not run.pulled:
            return None  # no items (or none recorded yet), and no request: nothing to say
        return (
            "the loop made no request through httpx, requests, urllib or aiohttp; "
            'if its per-item call only reads, name it with fetch = "module:qualname"'
        )
    if run.oversize:
        return (
            f"the answers sent ahead were over the {MAX_KEPT // (1024 * 1024)} MiB kept per answer ({run.oversize} of them), "
            "so the loop read them itself, as before, and nothing more was sent ahead like them"
        )
    if run.differs is not None:
        return (
            f"the loop's requests differed from the ones sent ahead (in {run.differs}), so none was served; "
            "a header that changes on every request cannot be prefetched"
        )
    if not run.misses and run.other:
        return (
            "the loop's requests were not GET or HEAD (a POST, a body, a stream), which are never sent ahead at "
            'HTTP level: name its per-item function with fetch = "module:qualname" (a shadow of it sends its reads '
            'ahead: GraphQL queries, JSON-RPC reads), and declare a host\'s other reads with [hosts."..."] reads'
        )
    if run.replay and not run.learned:
        if run.pulled == 0:
            return _unrecorded(run.recorder, "request", "GET or HEAD requests")
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


def would_match(item: Any, args: tuple[Any, ...]) -> list[str] | None:
    """The ``args`` paths that build these arguments from ``item``, if its fields hold them."""
    if not args:
        return None
    found = fields(item)
    paths = []
    for value in args:
        text = str(value) if isinstance(value, str | int) and not isinstance(value, bool) else None
        path = next((path for path, field in found if text is not None and field == text), None)
        if path is None:
            return None
        paths.append(path)
    return paths


def why_not_calls(run: PrefetchRun, items_text: str) -> str | None:
    """Why a function-level run served nothing, when it did not, else None."""
    aside = _aside(run.step, "call")
    if aside is not None or run.hits or not run.misses:
        return aside
    if run.recorder is not None and run.first_item is _NONE and run.shape is None:
        return _unrecorded(run.recorder, "call", "calls whose arguments can be kept (strings, numbers, lists of them)")
    if run.shape is not None:
        if run.mismatched:
            return f"the loop changed the arguments of {run.mismatched} call(s) after they were sent ahead, so none was served"
        return "the calls predicted from the first item were never the ones the loop made next"
    if run.first_call is None:
        return None  # no call was tried against an item (no items: said when the run started)
    item = "none" if run.first_item is _NONE else repr(run.first_item)[:80]
    if run.builder_error is not None:
        return f"the args paths failed on the first item ({run.builder_error}; first item: {item}); check args"
    args, kwargs = run.first_call or ((), {})
    shown = ", ".join([repr(a)[:40] for a in args] + [f"{k}={v!r:.40}" for k, v in kwargs.items()])
    paths = would_match(run.first_item, args) if run.first_item is not _NONE else None
    hint = f"args = {paths!r} would match" if paths else f"check items = {items_text}, or declare args"
    return f"no item matched the call (first call: ({shown}); first item: {item}); {hint}"


_NONE: Any = PrefetchRun.NO_ITEM


def _unrecorded(recorder: Recorder | None, what: str, kept: str) -> str:
    """``items = "learned"`` with nothing to replay: say whether this run recorded anything,
    never "the next one prefetches" when it will not."""
    if recorder is not None and recorder.calls:
        return f'no {what}s were recorded yet (items = "learned"): this run recorded {len(recorder.calls)}, the next one prefetches'
    skipped = f" ({recorder.skipped} made, none of them kept)" if recorder is not None and recorder.skipped else ""
    return (
        f'nothing was recorded (items = "learned"): the loop made no {kept} in this run{skipped}, so the next run '
        'has nothing to prefetch either; declare where its items come from (items = "...")'
    )


def say_why(run: HttpRun | PrefetchRun, items_text: str) -> None:
    """One line when a run did not accelerate, saying why."""
    if isinstance(run, HttpRun):
        why, requests = why_not(run, items_text), {"requests": run.misses + run.other}
        if why is not None and run.found is not None and not why.startswith("the probe"):
            why = f"{why}; {run.found.hint()}"
    else:
        why, requests = why_not_calls(run, items_text), {"calls": run.hits + run.misses + run.direct}
    if why is not None:
        event(
            NOT_ACCELERATED,
            why,
            level="INFO" if why.startswith("the probe") else "WARNING",
            target=run.name,
            **requests,
        )
