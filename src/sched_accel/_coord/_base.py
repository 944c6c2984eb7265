"""What every coordination backend offers, and the arithmetic they share.

The facts a limiter needs across processes (a host's rate, its in-flight requests, its
pause, the rate it told us, who is alive, who runs this tick) are one small sync interface,
:class:`Backend`. It is sync because the limiter's decisions are made in threads and in
anyio tasks on asyncio *and* trio. A single_run claim from a task goes through a worker
thread (``anyio.to_thread.run_sync``). A host's admission from a task asks the backend
inline, in its plan: a few µs on the machine backend (its lock wait bounded), one round trip
on Redis (about 130 µs on loopback, ``benchmarks/coord_admit.py``), during which that event
loop waits; Redis down, at most its 0.5 s timeout once every 5 s (``_policy._shared``), as
the process then paces alone. redis-py's asyncio client would serve asyncio only, with a
pool per event loop.

Every call either answers or raises :class:`~sched_accel._exceptions.CoordinationUnavailable`;
what a backend holds (a rate slot, a lease, a pause, a claim, a heartbeat) expires by itself,
so a crashed process, or a caller that gave up on a timeout, leaves nothing stuck.

**What is read back is bounded by the caller, never by the store** (issue 24, item 5): another
client of a Redis server can write any value under our keys, so each fact is taken only as far
as one of the app's processes could have set it. A host's pause is cut to ``longest`` (the
longest pause the app follows: its retry deadline); a rate's arrival time to one burst of
intervals ahead (:func:`gcra`); a lease or a heartbeat that expires further ahead than the
``ttl`` asked is dropped (the app's processes all ask one); a claim that ends further ahead
than its ``ttl``, or holds a tick later than ``latest``, is not in force (:func:`claim_wins`).
A cut pause or arrival time is written back cut, so time runs it out. The machine backend's
files pass an owner-only trust rule, so there only the owner could write such values; the same
bounds apply to all three backends alike, as one suite tests them.
"""

from __future__ import annotations

import math
import secrets
from typing import Protocol

from .._state._rates import MAX_AGE

__all__ = [
    "LONGEST_PAUSE",
    "MAX_AGE",
    "MAX_TICK",
    "STEPPED_BACK",
    "STEPPED_BACK_RATE",
    "Backend",
    "check_host",
    "check_latest",
    "check_limit",
    "check_rate",
    "check_seconds",
    "check_tick",
    "claim_wins",
    "cut_pause",
    "gcra",
    "in_force",
    "lived_again",
    "new_lease_id",
    "usable_rate",
]

#: Float slack when a slot is "just" due (as the in-process limiter's).
EPSILON = 1e-9
#: Ticks are integers a double holds exactly (Redis's Lua numbers are doubles).
MAX_TICK = 2**53
#: Seconds by which a wall clock must have stepped back since a claim for its tick to be read
#: on the present clock (:func:`lived_again`), and per second since the claim: more than NTP's
#: slewing can move it (500 ppm at most).
STEPPED_BACK = 2.0
STEPPED_BACK_RATE = 0.001
#: Seconds of a host's pause taken at most when the caller says no other: the retry deadline's
#: default (``RetrySettings.deadline``), the longest an item waits for its next attempt.
LONGEST_PAUSE = 120.0


class Backend(Protocol):
    """The coordination backend: one per process, shared by every limiter and thread in it.

    Times are seconds on the backend's clock (the server's for Redis, the machine's monotonic
    clock for the machine backend), so processes with skewed clocks agree. Limits are
    keyword-only numbers, checked up front (``ValueError`` naming the argument).
    """

    #: ``"process"``, ``"machine"`` or ``"redis"``: for log lines.
    kind: str

    def admit(self, host: str, *, per_second: float, burst: int, longest: float = LONGEST_PAUSE) -> float:
        """GCRA admission of one request to ``host``: 0.0 when admitted (its slot is taken),
        else the seconds to wait before asking again (nothing taken). A pause of the host
        (:meth:`pause`) holds admission too: the wait is then at least what is left of it,
        and at most ``longest`` (a longer pause is cut to it). An arrival time further ahead
        than ``burst`` intervals is cut to that: the wait is then one interval."""
        ...

    def lease(self, host: str, *, limit: int, ttl: float) -> str | None:
        """One of ``limit`` in-flight places for ``host``, held until :meth:`release` or for
        ``ttl`` seconds (a crashed holder's place comes back then); None when all are held.
        A place held further ahead than ``ttl`` from now is not one the app's processes took
        (they all ask one ttl): it is dropped."""
        ...

    def release(self, host: str, lease_id: str) -> None:
        """Give back a lease (one already expired, or unknown, is ignored)."""
        ...

    def renew(self, host: str, lease_ids: list[str], *, ttl: float) -> None:
        """Hold these leases ``ttl`` more seconds from now (those already expired stay gone,
        and places held further ahead than ``ttl`` are dropped, as by :meth:`lease`): a
        request slower than the ttl keeps its place while its process lives."""
        ...

    def pause(self, host: str, seconds: float) -> None:
        """Hold every process's requests to ``host`` for ``seconds`` (a ``Retry-After`` seen
        by one); a longer pause already in force is kept, never shortened."""
        ...

    def lift(self, host: str, *, at_most: float) -> None:
        """End ``host``'s pause if at most ``at_most`` seconds are left of it: the pause its
        caller asked for proved needless (a later request answered), and nobody asked a
        longer one since."""
        ...

    def paused_for(self, host: str, *, longest: float = LONGEST_PAUSE) -> float:
        """Seconds left of ``host``'s pause, at most ``longest`` (a longer pause is cut to it);
        0.0 when it is not paused."""
        ...

    def learn_rate(self, host: str, per_second: float) -> None:
        """The rate ``host`` told (requests a second), for every process (kept :data:`MAX_AGE`)."""
        ...

    def learned_rate(self, host: str) -> float | None:
        """The rate ``host`` told within :data:`MAX_AGE`, or None."""
        ...

    def heartbeat(self, process_id: str, *, ttl: float) -> None:
        """``process_id`` is alive for ``ttl`` more seconds (call it again before then); a
        heartbeat that lasts further ahead than ``ttl`` is dropped, as a lease is."""
        ...

    def live_processes(self) -> int:
        """How many processes have a heartbeat in force (the fallback divides the rate by it)."""
        ...

    def claim(
        self,
        key: str,
        tick: int,
        *,
        ttl: float,
        latest: int | None = None,
        at: float | None = None,
        period: float | None = None,
    ) -> int | None:
        """Run ``key``'s schedule tick ``tick`` here? A fencing token (increasing per key, 1
        first) to the one winner; None to the others. The claim holds for ``ttl`` seconds:
        meanwhile the same tick, or an earlier one, is refused to everyone (a late process
        never runs a tick already superseded). Choose ``ttl`` at least the tick's interval.
        A claim held that ends further ahead than ``ttl``, or of a tick later than ``latest``
        (None: any), was made by no process of the app: it is not in force, and is replaced.
        ``at`` (the caller's wall clock) and ``period`` (the tick's seconds) are kept with the
        claim: one made on this machine before its wall clock stepped back is of the window it
        fell in on the present clock (:func:`lived_again`), so a window lived again runs once more."""
        ...

    def held(self, key: str) -> tuple[int, int] | None:
        """The claim of ``key`` in force: ``(tick, fencing token)`` of its latest winner, or
        None when none holds (for a line saying who runs a skipped tick; read-only)."""
        ...

    def close(self) -> None:
        """Let go of connections and files; later calls raise ``CoordinationUnavailable``."""
        ...


def gcra(tat: float, now: float, per_second: float, burst: int) -> tuple[float, float]:
    """One GCRA decision: ``(wait, new tat)``.

    ``tat`` is the theoretical arrival time of the next request: each admitted request moves
    it one emission interval (``1 / per_second``) on, and a request may go once ``now`` is
    within ``burst - 1`` intervals of it. So ``burst`` requests go at once, then one per
    interval. Admitted: ``(0.0, moved tat)``; refused: ``(seconds to wait, tat)``, where a
    ``tat`` further ahead than ``burst`` intervals (no admission moves it there; another
    client of the store may) is cut to that, so the wait is at most one interval.
    """
    interval = 1.0 / per_second
    if math.isnan(tat):
        tat = now
    tat = min(max(tat, now), now + interval * burst)
    wait = tat - interval * (burst - 1) - now
    if wait > EPSILON:
        return wait, tat
    return 0.0, tat + interval


def claim_wins(
    held_tick: int | None,
    held_until: float,
    tick: int,
    now: float,
    *,
    ttl: float = math.inf,
    latest: int | None = None,
    made: float = math.nan,
    held_at: float = math.nan,
    at: float | None = None,
    period: float | None = None,
) -> bool:
    """The claim rule: no claim in force, or a later tick than the one held. A claim ending
    more than ``ttl`` from now, or of a tick later than ``latest``, is not in force: no
    process of the app made it (:meth:`Backend.claim`). Nor is one made (at ``made`` on the
    backend's clock, when the claimant's wall clock read ``held_at``) before the caller's wall
    clock ``at`` stepped back, of a window before ``tick`` on it (:func:`lived_again`)."""
    if held_tick is None or now >= held_until or tick > held_tick:
        return True
    ends_in_time = held_until - now <= ttl  # (False for NaN)
    if not ends_in_time or (latest is not None and held_tick > latest):
        return True
    if at is None or not period:
        return False
    return lived_again(held_at, now - made, at, tick, period)


def lived_again(held_at: float, elapsed: float, at: float, tick: int, period: float) -> bool:
    """Whether a claim made ``elapsed`` seconds ago (on the backend's clock, which does not
    step), when the claimant's wall clock read ``held_at``, is of a window before ``tick`` on
    the present wall clock ``at``: that clock stepped back since the claim (by more than
    :data:`STEPPED_BACK`), and ``tick`` is a window lived again, not the one claimed. Only for
    wall clocks that are one clock (the same machine): another machine's differ by their skew."""
    made = at - elapsed  # when the claim was made, read on the present wall clock
    stepped = held_at - made > max(STEPPED_BACK, STEPPED_BACK_RATE * elapsed)
    return stepped and math.floor(made / period) < tick


def cut_pause(paused_until: float, now: float, longest: float) -> float:
    """A pause's end, at most ``longest`` from ``now`` (:meth:`Backend.paused_for`)."""
    return min(paused_until, now + longest)


def in_force(until: float, now: float, ttl: float) -> bool:
    """Whether a lease or heartbeat ending at ``until`` holds: not over, and not ending further
    ahead than ``ttl`` (none of the app's processes asks longer; NaN holds nothing)."""
    return now < until <= now + ttl


def new_lease_id() -> str:
    """A lease's id: 128 random bits, hex (unguessable, so no one frees another's place)."""
    return secrets.token_hex(16)


def usable_rate(value: object) -> float | None:
    """A stored rate as a float when it is one we would pace to, else None."""
    if isinstance(value, bytes | str):
        try:
            value = float(value)
        except ValueError:
            return None
    if isinstance(value, int | float) and not isinstance(value, bool) and 0 < value <= 1e6:
        return float(value)
    return None


def check_host(host: str) -> None:
    """A host is a non-empty string (any: the stores hash or quote it)."""
    if not isinstance(host, str) or not host:
        raise ValueError(f"host must be a non-empty string; got {host!r}")


def check_rate(per_second: float, burst: int) -> None:
    """``per_second`` a finite number > 0 (at most 1e6), ``burst`` an int >= 1."""
    if isinstance(per_second, bool) or not isinstance(per_second, int | float) or not 0 < per_second <= 1e6:
        raise ValueError(f"per_second must be a number > 0 and <= 1e6; got {per_second!r}")
    check_limit(burst, "burst")


def check_limit(value: int, name: str = "limit") -> None:
    """An int >= 1 (a count of slots or places)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be an int >= 1; got {value!r}")


def check_seconds(value: float, name: str, *, zero: bool = False) -> None:
    """A finite number of seconds, > 0 (>= 0 with ``zero``)."""
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or value < 0 or (value == 0 and not zero):
        allowed = ">= 0" if zero else "> 0"
        raise ValueError(f"{name} must be a finite number of seconds {allowed}; got {value!r}")


def check_latest(latest: int | None) -> None:
    """``latest`` is None or a tick (:func:`check_tick`)."""
    if latest is not None:
        check_tick(latest, "latest")


def check_tick(tick: int, name: str = "tick") -> None:
    """A tick is an int within +-2**53 (the schedule's tick number, e.g. ``int(time // interval)``)."""
    if isinstance(tick, bool) or not isinstance(tick, int) or not -MAX_TICK < tick < MAX_TICK:
        raise ValueError(f"{name} must be an int within +-2**53; got {tick!r}")
