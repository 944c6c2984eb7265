"""The engine: bounded, ordered workers, for threads and for anyio tasks.

Work is a stream of :class:`Slot` objects, each one call. ``concurrency`` workers take
slots in the order they were submitted and run them, each through an optional
``attempt`` function (the policy's: the engine knows nothing of retries or limits);
whoever submitted a slot waits for it alone.

- ``_slot``: the unit of work, and the attempt functions' types;
- ``_threads``: worker threads (and the timer that hands back retried slots);
- ``_tasks``: worker tasks in a task group;
- ``_places``: a run's places, held by the workers' attempts and the loop's own calls;
- ``_map``: ``map`` and ``amap``, for replace-mode authors.

What differs between threads and tasks lives in ``_threads`` and ``_tasks`` only: how a
worker sleeps, and how a submitter waits (``wait``, ``done_within``).
"""

from __future__ import annotations

from ._map import amap, ideal_seconds, map
from ._places import Places
from ._slot import AsyncAttempt, Attempt, Cancelled, Slot, check_positive
from ._tasks import AsyncWorkers
from ._threads import ThreadWorkers

__all__ = [
    "AsyncAttempt",
    "AsyncWorkers",
    "Attempt",
    "Cancelled",
    "Places",
    "Slot",
    "ThreadWorkers",
    "amap",
    "check_positive",
    "ideal_seconds",
    "map",
]
