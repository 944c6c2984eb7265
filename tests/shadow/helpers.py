"""Running a shadow call as the runner does: in a worker thread."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sched_accel._shadow import Shadow, shadowed


@dataclass
class Outcome:
    """How a shadow call ended."""

    shadow: Shadow
    value: Any = None
    error: BaseException | None = None


def in_thread(function: Callable[[], Any], shadow: Shadow | None = None) -> Outcome:
    """Run ``function`` as a shadow in a worker thread, as the runner does for a sync call."""
    outcome = Outcome(shadow or Shadow())

    def run() -> None:
        with shadowed(outcome.shadow):
            try:
                outcome.value = function()
            except BaseException as exc:  # the runner's except Stopped, and the app's own errors
                outcome.error = exc

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(30)
    assert not thread.is_alive()
    return outcome
