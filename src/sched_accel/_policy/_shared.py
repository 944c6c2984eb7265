"""Host rates shared by every process of the app, through the coordination backend (issue 13).

Four gunicorn workers each pacing to a declared 20 requests/s send 80. With a machine or
Redis backend (``[coordination]``), a host's rate is admitted there instead, one GCRA
decision per request (``_coord``): every process of the app draws on one budget, and a
``Retry-After`` that pauses one pauses all. Hosts without a rate (no limit declared, none
told) are not shared: their concurrency and AIMD stay per process.

**The backend down** (Redis unreachable, the state folder refused) is never a crash and never
unlimited: each process paces locally at the shared rate divided by the processes it last
saw alive (each says it is, every :data:`BEAT` seconds, through the backend), and asks the
backend again after :data:`RETRY_AFTER` seconds. One ``coordination_down`` line when that
starts, one ``coordination_back`` when the backend answers again.

Keys carry the app's namespace (by default the config file's path), so two apps of one user
calling the same API with different keys do not share its limit.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING

from .._exceptions import CoordinationUnavailable
from .._log import event

if TYPE_CHECKING:
    from .._coord import Backend

__all__ = ["BEAT", "RETRY_AFTER", "SharedRates"]

BEAT = 2.0  #: seconds between a process's heartbeats (each lives 3 of them)
RETRY_AFTER = 5.0  #: seconds the backend is not asked again after it failed


class SharedRates:
    """The process's door to the shared host rates; thread-safe, never raises for the backend."""

    def __init__(
        self,
        make: Callable[[], Backend],
        where: str,
        namespace: str,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._make = make
        self.where = where
        self.namespace = namespace
        self._clock = clock
        self._lock = threading.Lock()
        self._backend: Backend | None = None
        self._pid = os.getpid()
        self._id = f"{self._pid}-{uuid.uuid4().hex[:8]}"
        self._beat_at = -RETRY_AFTER * 10
        self._down_until = 0.0
        self.down = False
        #: Processes seen alive at the last heartbeat (the local rate's divisor when down).
        self.live = 1

    def _get(self) -> Backend:
        with self._lock:
            if self._backend is None or self._pid != os.getpid():  # made, or forked since
                self._pid, self._id = os.getpid(), f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
                self._backend = self._make()
            return self._backend

    def admit(self, host: str, per_second: float, burst: int) -> float | None:
        """0.0 when a request to ``host`` may go (its slot taken), else seconds to wait; None
        when the backend cannot answer: pace locally at ``per_second / live``."""
        now = self._clock()
        if now < self._down_until:
            return None
        try:
            backend = self._get()
            if now - self._beat_at >= BEAT:
                backend.heartbeat(self._id, ttl=3 * BEAT)
                self.live = max(1, backend.live_processes())
                self._beat_at = now
            wait = backend.admit(f"{self.namespace}:{host}", per_second=per_second, burst=burst)
        except CoordinationUnavailable as exc:
            self._failed(exc, host)
            return None
        if self.down:
            self.down = False
            event("INFO", "coordination_back", "host rates are shared again", backend=self.where, host=host)
        return wait

    def pause(self, host: str, seconds: float) -> None:
        """Hold every process's requests to ``host`` for ``seconds`` (the local pause holds anyway)."""
        if self._clock() < self._down_until or seconds <= 0:
            return
        try:
            self._get().pause(f"{self.namespace}:{host}", seconds)
        except CoordinationUnavailable as exc:
            self._failed(exc, host)

    def _failed(self, exc: CoordinationUnavailable, host: str) -> None:
        self._down_until = self._clock() + RETRY_AFTER
        if not self.down:
            self.down = True
            event(
                "WARNING",
                "coordination_down",
                f"{exc}; each process paces alone at the shared rate / {self.live} (the processes last seen), "
                f"and asks the backend again every {RETRY_AFTER:g} s",
                backend=self.where,
                host=host,
                live=self.live,
            )
