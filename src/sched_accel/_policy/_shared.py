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

A host's **declared concurrency** is shared the same way, as expiring leases: each request
holds one of the host's places on the backend while it runs (:meth:`SharedRates.lease`),
renewed every :data:`RENEW` s by a thread of ours while any is held, so a crashed worker's
places come back within :data:`LEASE_TTL` s. A **pause** (a ``Retry-After`` while refusals
dominate) is given to the backend and seen by every process's next request to the host,
whatever its limits (:meth:`SharedRates.paused`, looked up at most every :data:`LOOK` s per
host); lifted early by the process that asked for it (a request sent after the refused one
was answered), it is lifted for all, unless someone asked a longer one since.

Keys carry the app's namespace (by default the config file's path), so two apps of one user
calling the same API with different keys do not share its limit.

**What the backend says is bounded by the owner's settings** (issue 24, item 5): another client
of a Redis server may set a host's pause a day ahead, or fill its places with entries that
never end. A pause read back is cut to ``longest``, the app's longest retry deadline (no item
waits longer for its next attempt; a ``Retry-After`` is cut to it too); a rate's arrival time
to one burst ahead; a place or heartbeat ending further ahead than :data:`LEASE_TTL` or
``3 x`` :data:`BEAT` is dropped (``_coord._base``). So a stalled host waits at most
``longest`` at a time, then paces at its declared rate and places.
"""

from __future__ import annotations

import math
import os
import threading
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING

from .._coord._base import LONGEST_PAUSE
from .._events import COORDINATION_BACK, COORDINATION_DOWN
from .._exceptions import CoordinationUnavailable
from .._log import event

if TYPE_CHECKING:
    from .._coord import Backend

__all__ = ["BEAT", "FIRST_BEAT", "FULL", "LEASE_TTL", "LOOK", "RENEW", "RETRY_AFTER", "SharedRates"]

BEAT = 2.0  #: seconds between a process's heartbeats (each lives 3 of them)
#: Seconds to a process's second heartbeat, doubling up to :data:`BEAT`: processes started
#: together count each other within a quarter of a second, not 2 s later. (Redis killed 1.5 s
#: into a run of 4, they had counted 1, 2, 3 and 4 alive, and paced alone at 2.1 times the
#: declared rate between them.)
FIRST_BEAT = 0.25
RETRY_AFTER = 5.0  #: seconds the backend is not asked again after it failed
LEASE_TTL = 10.0  #: seconds a place held on the backend lasts unless renewed
RENEW = 3.0  #: seconds between renewals of the places this process holds
LOOK = 0.05  #: seconds at most between two looks at a host's shared pause, per process
#: What :meth:`SharedRates.lease` returns when every place is held (wait, and ask again).
FULL = ""


class SharedRates:
    """The process's door to the shared host rates; thread-safe, never raises for the backend."""

    def __init__(
        self,
        make: Callable[[], Backend],
        where: str,
        namespace: str,
        *,
        clock: Callable[[], float] = time.monotonic,
        longest: float = LONGEST_PAUSE,
    ) -> None:
        self._make = make
        self.where = where
        self.namespace = namespace
        #: The longest pause of a host taken from the backend (seconds): the retry deadline.
        self.longest = longest
        self._clock = clock
        self._lock = threading.Lock()
        self._backend: Backend | None = None
        self._pid = os.getpid()
        self._id = f"{self._pid}-{uuid.uuid4().hex[:8]}"
        self._beat_at = -RETRY_AFTER * 10
        self._beat_every = FIRST_BEAT / 2  # doubled at each heartbeat, up to BEAT
        self._down_until = 0.0
        self._ok_at = -math.inf  # when the backend last answered, on our clock
        self.down = False
        #: Processes seen alive at the last heartbeat (the local rate's divisor when down).
        self.live = 1
        self._held: dict[str, set[str]] = {}  # the places this process holds, by host key
        self._renewer: threading.Thread | None = None
        self._looked: dict[str, tuple[float, float]] = {}  # host -> (looked at, paused until), on our clock

    def _get(self) -> Backend:
        with self._lock:
            if self._backend is None or self._pid != os.getpid():  # made, or forked since
                self._pid, self._id = os.getpid(), f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
                self._held, self._renewer, self._looked = {}, None, {}  # the parent's, not ours
                self._backend = self._make()
            return self._backend

    def admit(self, host: str, per_second: float, burst: int) -> float | None:
        """0.0 when a request to ``host`` may go (its slot taken), else seconds to wait; None
        when the backend cannot answer: pace locally at ``per_second / live``."""
        now = self._clock()
        if now < self._down_until:
            return None
        try:
            backend = self._beat(now)
            # (a learned rate doubling before its first cut may pass the backends' bound)
            wait = backend.admit(self._key(host), per_second=min(per_second, 1e6), burst=burst, longest=self.longest)
        except CoordinationUnavailable as exc:
            self._failed(exc, host, now)
            return None
        self._answered(host)
        return wait

    def _key(self, host: str) -> str:
        """``host``'s key on the backend: in the app's namespace."""
        return f"{self.namespace}:{host}"

    def _answered(self, host: str) -> None:
        """The backend answered: the one ``coordination_back`` line, if it had been down."""
        self._ok_at = self._clock()
        if self.down:
            self.down = False
            event(COORDINATION_BACK, "host rates are shared again", backend=self.where, host=host)

    def _beat(self, now: float) -> Backend:
        """The backend, having said that this process is alive every :data:`BEAT` s (the
        first beats sooner, :data:`FIRST_BEAT`), and counted the processes that are."""
        backend = self._get()
        if now - self._beat_at >= self._beat_every:
            backend.heartbeat(self._id, ttl=3 * BEAT)
            self.live = max(1, backend.live_processes())
            self._beat_at, self._beat_every = now, min(BEAT, 2 * self._beat_every)
        return backend

    def pause(self, host: str, seconds: float) -> None:
        """Hold every process's requests to ``host`` for ``seconds`` (the local pause holds anyway)."""
        made = self._clock()
        if made < self._down_until or seconds <= 0:
            return
        try:
            self._get().pause(self._key(host), min(seconds, self.longest))
        except CoordinationUnavailable as exc:
            self._failed(exc, host, made)

    def lease(self, host: str, limit: int) -> str | None:
        """One of the ``limit`` places of ``host`` shared by every process: its id when taken,
        :data:`FULL` when all are held (ask again soon), None when the backend cannot answer
        (bound the host locally at ``limit / live``). Give it back with :meth:`release`."""
        made = self._clock()
        if made < self._down_until:
            return None
        key = self._key(host)
        try:
            lease_id = self._get().lease(key, limit=limit, ttl=LEASE_TTL)
        except CoordinationUnavailable as exc:
            self._failed(exc, host, made)
            return None
        self._answered(host)
        if lease_id is None:
            return FULL
        with self._lock:
            self._held.setdefault(key, set()).add(lease_id)
            if self._renewer is None:
                self._renewer = threading.Thread(target=self._renew, name="sched-accel-leases", daemon=True)
                self._renewer.start()
        return lease_id

    def release(self, host: str, lease_id: str) -> None:
        """Give back a place taken by :meth:`lease` (the backend down: it expires by itself)."""
        key = self._key(host)
        with self._lock:
            held = self._held.get(key)
            if held is None or lease_id not in held:
                return
            held.discard(lease_id)
            if not held:
                del self._held[key]
        try:
            self._get().release(key, lease_id)
        except CoordinationUnavailable:
            pass  # it expires within LEASE_TTL

    def _renew(self) -> None:
        """The renewer thread: every RENEW s, hold this process's places LEASE_TTL s more;
        gone once none is held (the next lease starts another)."""
        while True:
            time.sleep(RENEW)
            with self._lock:
                held = {key: sorted(ids) for key, ids in self._held.items()}
                if not held:
                    self._renewer = None
                    return
            for key, ids in held.items():
                try:
                    self._get().renew(key, ids, ttl=LEASE_TTL)
                except Exception:  # noqa: BLE001 - the backend down (the places expire), or a bug: the thread lives on
                    pass

    def paused(self, host: str) -> float:
        """Seconds left of ``host``'s pause, asked by any process (0.0: none, or the backend
        cannot say); looked up on the backend at most every :data:`LOOK` s."""
        now = self._clock()
        looked, until = self._looked.get(host, (-math.inf, 0.0))
        if now - looked < LOOK or now < self._down_until:
            return max(0.0, until - now)
        try:
            left = self._beat(now).paused_for(self._key(host), longest=self.longest)
        except CoordinationUnavailable as exc:
            self._failed(exc, host, now)
            return 0.0
        self._answered(host)
        self._looked[host] = (now, now + left)
        return left

    def lift(self, host: str, at_most: float) -> None:
        """End ``host``'s pause for every process, unless a longer one was asked since."""
        self._looked.pop(host, None)
        made = self._clock()
        if made < self._down_until:
            return
        try:
            self._get().lift(self._key(host), at_most=max(0.0, at_most))
        except CoordinationUnavailable as exc:
            self._failed(exc, host, made)

    def _failed(self, exc: CoordinationUnavailable, host: str, made: float) -> None:
        """A call made at ``made`` failed: the backend is down for :data:`RETRY_AFTER` s, and
        says so once; unless it answered another call since this one was made (a connection
        opened before a restart failing on its first use after it, while a new one is answered:
        the backend is up, and the next call on that connection reconnects)."""
        if made <= self._ok_at:
            return
        self._down_until = self._clock() + RETRY_AFTER
        if not self.down:
            self.down = True
            event(
                COORDINATION_DOWN,
                f"{exc}; each process paces alone at the shared rate / {self.live} (the processes last seen), "
                f"and asks the backend again every {RETRY_AFTER:g} s",
                backend=self.where,
                host=host,
                live=self.live,
            )
