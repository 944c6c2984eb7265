"""The machine backend: every process of this user on this machine, with no server.

Each fact is a small binary record file in the owner-only store folder (``_store``: why
``flock``-ed files rather than SQLite, and how the trust rule is kept), changed in one
locked read-modify-write:

- ``host-<hash>``: the host's GCRA arrival time, its pause, the rate it told and when;
- ``lease-<hash>``: the host's leases, one (expiry, id) slot each, expired ones dropped;
- ``processes``: the heartbeats, a slot each;
- ``claim-<hash>``: a job's fencing counter, and the tick it holds until when.

Times are the machine's monotonic clock, which every process reads alike (the store folder
is per boot, as that clock restarts at boot); so the rate, the leases and the pauses agree
whatever the processes' wall clocks say.

Only the owner can write these files (the trust rule), so no outsider can set a pause a day
ahead or fill a host's places; what is read back is bounded all the same (``_base``: the
pause cut to ``longest``, places and heartbeats ending further ahead than their ``ttl``
dropped, a claim past its ``ttl`` or ``latest`` tick not in force), as on Redis.
"""

from __future__ import annotations

import hashlib
import math
import os
import struct
import time
from collections.abc import Callable

from ._base import (
    LONGEST_PAUSE,
    MAX_AGE,
    check_host,
    check_latest,
    check_limit,
    check_rate,
    check_seconds,
    check_tick,
    claim_wins,
    cut_pause,
    gcra,
    in_force,
    new_lease_id,
)
from ._store import Store, boot_id

__all__ = ["MachineBackend", "store_folder"]

_HOST = struct.Struct("<dddd")  # tat, paused until, told rate (0: none), told at
_SLOT = struct.Struct("<d16s")  # expiry, id
_CLAIM = struct.Struct("<qqd")  # last fencing token, tick held, held until (0: none)
_CLAIMED = struct.Struct("<dd")  # after it: when the claim was made, and the claimant's wall clock then (NaN: unknown)
_NO_HOST = (0.0, 0.0, 0.0, 0.0)


def store_folder(state_dir: str) -> str:
    """Where the machine backend of a state folder keeps its records (this boot's)."""
    return os.path.join(state_dir, "coord", boot_id())


def _unpack(layout: struct.Struct, data: bytes, empty: tuple[float, ...]) -> tuple[float, ...]:
    return layout.unpack(data[: layout.size]) if len(data) >= layout.size else empty


def _slots(data: bytes, now: float, ttl: float = math.inf) -> list[tuple[float, bytes]]:
    """The slots still in force, none ending further ahead than ``ttl`` (a torn tail, from a
    process killed mid-write, is dropped)."""
    whole = len(data) - len(data) % _SLOT.size
    return [(until, ident) for until, ident in _SLOT.iter_unpack(data[:whole]) if in_force(until, now, ttl)]


def _ident(lease_id: str) -> bytes | None:
    """A lease id as its record holds it; None for what is not one of ours."""
    try:
        return bytes.fromhex(lease_id)
    except (ValueError, TypeError):
        return None


def _pack_slots(slots: list[tuple[float, bytes]]) -> bytes:
    return b"".join(_SLOT.pack(until, ident) for until, ident in slots)


class MachineBackend:
    """Shared by the processes using the same state folder on this machine.

    ``clock`` must be one every process reads alike (the default, ``time.monotonic``, is);
    tests inject a fake one. Waiting longer than ``lock_timeout`` for a record's lock raises
    :class:`~sched_accel._exceptions.CoordinationUnavailable`, as a refused store does.
    """

    kind = "machine"

    def __init__(
        self,
        state_dir: str,
        *,
        clock: Callable[[], float] = time.monotonic,
        lock_timeout: float = 0.5,
    ) -> None:
        check_seconds(lock_timeout, "lock_timeout")
        self._clock = clock
        self._store = Store(store_folder(state_dir), lock_timeout=lock_timeout)

    @property
    def folder(self) -> str:
        """The store folder (``<state>/coord/<boot id>``)."""
        return self._store.folder

    def admit(self, host: str, *, per_second: float, burst: int, longest: float = LONGEST_PAUSE) -> float:
        check_host(host)
        check_rate(per_second, burst)
        check_seconds(longest, "longest")
        with self._store.record("host", host) as record:
            tat, paused, rate, told_at = _unpack(_HOST, record.read(_HOST.size), _NO_HOST)
            now = self._clock()
            wait, new = gcra(tat, now, per_second, burst)
            cut = cut_pause(paused, now, longest)
            if cut - now > 0 or wait > 0:
                if cut < paused or new < tat:  # a pause or an arrival time further ahead than ours: kept cut
                    record.write(_HOST.pack(new if wait > 0 else tat, cut, rate, told_at))
                return max(cut - now, wait)
            record.write(_HOST.pack(new, cut, rate, told_at))
            return 0.0

    def lease(self, host: str, *, limit: int, ttl: float) -> str | None:
        check_host(host)
        check_limit(limit)
        check_seconds(ttl, "ttl")
        with self._store.record("lease", host) as record:
            now = self._clock()
            held = _slots(record.read(), now, ttl)
            if len(held) >= limit:
                record.write(_pack_slots(held))
                return None
            lease_id = new_lease_id()
            held.append((now + ttl, bytes.fromhex(lease_id)))
            record.write(_pack_slots(held))
            return lease_id

    def release(self, host: str, lease_id: str) -> None:
        try:
            ident = bytes.fromhex(lease_id)
        except (ValueError, TypeError):
            return  # never one of ours
        with self._store.record("lease", host) as record:
            held = _slots(record.read(), self._clock())
            record.write(_pack_slots([slot for slot in held if slot[1] != ident]))

    def renew(self, host: str, lease_ids: list[str], *, ttl: float) -> None:
        check_seconds(ttl, "ttl")
        idents = {ident for lease_id in lease_ids if (ident := _ident(lease_id)) is not None}
        with self._store.record("lease", host) as record:
            now = self._clock()
            held = _slots(record.read(), now, ttl)
            record.write(_pack_slots([(now + ttl if ident in idents else until, ident) for until, ident in held]))

    def lift(self, host: str, *, at_most: float) -> None:
        check_seconds(at_most, "at_most", zero=True)
        with self._store.record("host", host) as record:
            tat, paused, rate, told_at = _unpack(_HOST, record.read(_HOST.size), _NO_HOST)
            if 0.0 < paused - self._clock() <= at_most:
                record.write(_HOST.pack(tat, 0.0, rate, told_at))

    def pause(self, host: str, seconds: float) -> None:
        check_host(host)
        check_seconds(seconds, "seconds", zero=True)
        with self._store.record("host", host) as record:
            tat, paused, rate, told_at = _unpack(_HOST, record.read(_HOST.size), _NO_HOST)
            until = self._clock() + seconds
            if until > paused:
                record.write(_HOST.pack(tat, until, rate, told_at))

    def paused_for(self, host: str, *, longest: float = LONGEST_PAUSE) -> float:
        check_seconds(longest, "longest")
        with self._store.record("host", host) as record:
            tat, paused, rate, told_at = _unpack(_HOST, record.read(_HOST.size), _NO_HOST)
            now = self._clock()
            cut = cut_pause(paused, now, longest)
            if cut < paused:
                record.write(_HOST.pack(tat, cut, rate, told_at))
            return max(0.0, cut - now)

    def learn_rate(self, host: str, per_second: float) -> None:
        check_host(host)
        check_rate(per_second, 1)
        with self._store.record("host", host) as record:
            tat, paused, _, _ = _unpack(_HOST, record.read(_HOST.size), _NO_HOST)
            record.write(_HOST.pack(tat, paused, float(per_second), self._clock()))

    def learned_rate(self, host: str) -> float | None:
        with self._store.record("host", host) as record:
            _, _, rate, told_at = _unpack(_HOST, record.read(_HOST.size), _NO_HOST)
            return rate if rate > 0 and self._clock() - told_at <= MAX_AGE else None

    def heartbeat(self, process_id: str, *, ttl: float) -> None:
        check_seconds(ttl, "ttl")
        ident = hashlib.blake2b(process_id.encode("utf-8", "surrogatepass"), digest_size=16).digest()
        with self._store.record("processes") as record:
            now = self._clock()
            beats = [slot for slot in _slots(record.read(), now, ttl) if slot[1] != ident]
            beats.append((now + ttl, ident))
            record.write(_pack_slots(beats))

    def live_processes(self) -> int:
        with self._store.record("processes") as record:
            return len(_slots(record.read(), self._clock()))

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
        check_tick(tick)
        check_seconds(ttl, "ttl")
        check_latest(latest)
        whole = _CLAIM.size + _CLAIMED.size
        with self._store.record("claim", key) as record:
            data = record.read(whole)
            fence, held_tick, held_until = (
                _CLAIM.unpack(data[: _CLAIM.size]) if len(data) >= _CLAIM.size else (0, 0, 0.0)
            )
            made, held_at = _CLAIMED.unpack(data[_CLAIM.size : whole]) if len(data) >= whole else (0.0, math.nan)
            now = self._clock()
            if not claim_wins(
                held_tick if held_until > 0 else None,
                held_until,
                tick,
                now,
                ttl=ttl,
                latest=latest,
                made=made,
                held_at=held_at,
                at=at,
                period=period,
            ):
                return None
            record.write(_CLAIM.pack(fence + 1, tick, now + ttl) + _CLAIMED.pack(now, math.nan if at is None else at))
            return int(fence + 1)

    def held(self, key: str) -> tuple[int, int] | None:
        with self._store.record("claim", key) as record:
            data = record.read(_CLAIM.size)
            if len(data) < _CLAIM.size:
                return None
            fence, tick, until = _CLAIM.unpack(data[: _CLAIM.size])
            return (int(tick), int(fence)) if until > self._clock() else None

    def close(self) -> None:
        self._store.close()
