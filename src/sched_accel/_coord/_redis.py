"""The Redis backend: processes on any number of machines, through Redis (or a server that
speaks its protocol and runs Lua: Valkey, KeyDB), with redis-py (``sched-accel[redis]``).

Each decision that reads the clock is one Lua script (``_scripts``): one round trip, on the
server's clock. redis-py is imported when a backend is made, never at sched_accel's import,
so the extra stays optional. The client fails fast: connect and read time out after
``timeout`` (0.5 s), and redis-py's own retries are off (its default retries three times
with backoff), since the caller has a fallback and a request must not wait seconds for a
server that is gone. Every error of redis-py or the socket becomes
:class:`~sched_accel._exceptions.CoordinationUnavailable`.

``rediss://`` verifies the server's certificate and host name, unless the owner's environment
says otherwise (``SCHED_ACCEL_REDIS_TLS_INSECURE=1``); never the URL: redis-py takes any
query key of a URL as an option of its connections, over ours, so the keys that loosen TLS
or move the server off the URL's host and port are dropped from it first (:func:`own_url`).

Key names are ``<prefix>{<tag>}:<what>``, the tag (a host, a job, the heartbeats) keyed by
the app's secret when it has one (``_names``: how, and why that secret). Every key written
expires (the fencing counter a week after its job's last claim), and what is read back is
bounded by the caller (``_scripts``), whoever wrote it.
"""

from __future__ import annotations

import math
import os
import urllib.parse
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from .._exceptions import CoordinationUnavailable
from . import _scripts
from ._base import (
    LONGEST_PAUSE,
    MAX_AGE,
    STEPPED_BACK,
    STEPPED_BACK_RATE,
    check_host,
    check_latest,
    check_limit,
    check_rate,
    check_seconds,
    check_tick,
    new_lease_id,
    usable_rate,
)
from ._names import PREFIX, KeyNames
from ._store import boot_id

if TYPE_CHECKING:
    import redis

__all__ = ["FENCE_KEPT", "INSTALL", "TLS_INSECURE_ENV", "RedisBackend", "own_url", "tls_insecure", "where"]

T = TypeVar("T")
#: What to run when redis-py is missing.
INSTALL = "pip install 'sched-accel[redis]'"
_SCHEMES = ("redis", "rediss", "unix")
#: Set to 1 by the owner to connect to a ``rediss://`` server without verifying its certificate.
TLS_INSECURE_ENV = "SCHED_ACCEL_REDIS_TLS_INSECURE"
#: Query keys that are ours to set: how TLS is verified, and where the server is.
_OURS = frozenset({"ssl_cert_reqs", "ssl_check_hostname", "ssl_exclude_verify_flags", "host", "port", "path"})
#: Seconds a job's fencing counter is kept after its last claim (at least its claim's ttl):
#: a job idle longer starts its tokens at 1 again.
FENCE_KEPT = 7 * 86_400.0
_TAGS_KEPT = 4096  # tag names remembered by one backend (each is an HMAC)


def where(url: str) -> str:
    """The server a URL names, without its credentials (for messages and log lines)."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or parts.path or "?"
    return f"{parts.scheme}://{host}" + (f":{parts.port}" if parts.port else "")


def tls_insecure() -> bool:
    """Whether the owner's environment turns off the check of a ``rediss://`` server's certificate."""
    return os.environ.get(TLS_INSECURE_ENV, "").strip() == "1"


def own_url(url: str) -> str:
    """``url`` without the query keys that are ours to set (:data:`_OURS`), otherwise as it is."""
    parts = urllib.parse.urlsplit(url)
    pairs = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    kept = [(key, value) for key, value in pairs if key not in _OURS]
    return (
        url if len(kept) == len(pairs) else urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(kept)))
    )


#: This machine's boot (a claim's wall clock is compared only with the same machine's clock).
_MACHINE = boot_id()


def _ms(seconds: float) -> int:
    """Seconds as whole milliseconds, rounded up (an expiry never comes early), at least 1."""
    return max(1, math.ceil(seconds * 1000))


class RedisBackend:
    """Shared by every process that uses the same Redis, ``prefix`` and ``key`` (the app's key
    names, ``_names.key_names``; without a key, the tags are named as they are); thread-safe
    and fork-safe (redis-py's pool makes new connections in a forked child)."""

    kind = "redis"

    def __init__(
        self,
        url: str,
        *,
        prefix: str = PREFIX,
        key: bytes | None = None,
        timeout: float = 0.5,
        password: str | None = None,
    ) -> None:
        if not isinstance(url, str) or urllib.parse.urlsplit(url).scheme not in _SCHEMES:
            raise ValueError("url must be a redis://, rediss:// or unix:// URL")  # it may hold a password
        check_seconds(timeout, "timeout")
        self.prefix = prefix
        self._names = KeyNames(prefix, key)
        self._tags: dict[str, str] = {}
        try:
            import redis
            from redis.backoff import NoBackoff
            from redis.retry import Retry
        except ImportError as exc:
            raise CoordinationUnavailable(
                f"the redis backend needs redis-py, which is not installed: {INSTALL}"
            ) from exc
        self._errors: tuple[type[BaseException], ...] = (redis.RedisError, OSError)
        tls: dict[str, Any] = {}
        if urllib.parse.urlsplit(url).scheme == "rediss":  # plain connections take no ssl_* option
            insecure = tls_insecure()
            tls = {"ssl_cert_reqs": "none" if insecure else "required", "ssl_check_hostname": not insecure}
        try:
            self.where = where(url)
            self._client: redis.Redis = redis.Redis.from_url(
                own_url(url),
                password=password,  # a password in the URL wins (redis-py's rule): the config refuses both
                socket_timeout=timeout,
                socket_connect_timeout=timeout,
                retry=Retry(NoBackoff(), 0),
                retry_on_timeout=False,
                health_check_interval=0,
                **tls,
            )
        except ValueError as exc:
            raise ValueError(f"url cannot be used: {exc}") from None
        register = self._client.register_script
        self._admit, self._lease, self._pause = (register(s) for s in (_scripts.ADMIT, _scripts.LEASE, _scripts.PAUSE))
        self._beat, self._live, self._claim = (register(s) for s in (_scripts.HEARTBEAT, _scripts.LIVE, _scripts.CLAIM))
        self._renew, self._lift, self._paused = (register(s) for s in (_scripts.RENEW, _scripts.LIFT, _scripts.PAUSED))
        self._closed = False

    def _key(self, tag: str, what: str) -> str:
        """The name of ``tag``'s key ``what`` (its tag's name, an HMAC, remembered)."""
        name = self._tags.get(tag)
        if name is None:
            if len(self._tags) >= _TAGS_KEPT:
                self._tags.clear()
            name = self._tags[tag] = self._names.tag(tag)
        return f"{self.prefix}{{{name}}}:{what}"

    def _call(self, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """One command or script; any failure below us as CoordinationUnavailable."""
        if self._closed:
            raise CoordinationUnavailable("the redis backend is closed")
        try:
            return function(*args, **kwargs)
        except self._errors as exc:
            raise CoordinationUnavailable(f"redis at {self.where}: {type(exc).__name__}: {exc}") from exc

    def admit(self, host: str, *, per_second: float, burst: int, longest: float = LONGEST_PAUSE) -> float:
        check_host(host)
        check_rate(per_second, burst)
        check_seconds(longest, "longest")
        keys = [self._key(host, "tat"), self._key(host, "pause")]
        waited = self._call(self._admit, keys=keys, args=[repr(1e6 / per_second), burst, _ms(longest)])
        return int(waited) / 1000

    def lease(self, host: str, *, limit: int, ttl: float) -> str | None:
        check_host(host)
        check_limit(limit)
        check_seconds(ttl, "ttl")
        lease_id = new_lease_id()
        taken = self._call(self._lease, keys=[self._key(host, "leases")], args=[limit, _ms(ttl), lease_id])
        return lease_id if int(taken) else None

    def release(self, host: str, lease_id: str) -> None:
        self._call(self._client.zrem, self._key(host, "leases"), lease_id)

    def renew(self, host: str, lease_ids: list[str], *, ttl: float) -> None:
        check_seconds(ttl, "ttl")
        if lease_ids:
            self._call(self._renew, keys=[self._key(host, "leases")], args=[_ms(ttl), *lease_ids])

    def lift(self, host: str, *, at_most: float) -> None:
        check_seconds(at_most, "at_most", zero=True)
        self._call(self._lift, keys=[self._key(host, "pause")], args=[_ms(at_most)])

    def pause(self, host: str, seconds: float) -> None:
        check_host(host)
        check_seconds(seconds, "seconds", zero=True)
        if seconds > 0:
            self._call(self._pause, keys=[self._key(host, "pause")], args=[_ms(seconds)])

    def paused_for(self, host: str, *, longest: float = LONGEST_PAUSE) -> float:
        check_seconds(longest, "longest")
        left = int(self._call(self._paused, keys=[self._key(host, "pause")], args=[_ms(longest)]))
        return max(0, left) / 1000

    def learn_rate(self, host: str, per_second: float) -> None:
        check_host(host)
        check_rate(per_second, 1)
        self._call(self._client.set, self._key(host, "rate"), repr(float(per_second)), ex=int(MAX_AGE))

    def learned_rate(self, host: str) -> float | None:
        return usable_rate(self._call(self._client.get, self._key(host, "rate")))

    def heartbeat(self, process_id: str, *, ttl: float) -> None:
        check_seconds(ttl, "ttl")
        self._call(self._beat, keys=[self._key("processes", "beats")], args=[process_id, _ms(ttl)])

    def live_processes(self) -> int:
        return int(self._call(self._live, keys=[self._key("processes", "beats")]))

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
        keys = [self._key(f"claim:{key}", name) for name in ("tick", "fence", "at")]
        kept = max(_ms(ttl), _ms(FENCE_KEPT))
        wall = "" if at is None or not math.isfinite(at) or not period else str(round(at * 1000))
        args = [
            tick,
            _ms(ttl),
            "" if latest is None else latest,
            kept,
            wall,
            _ms(period or 1.0),
            _MACHINE,
            _ms(STEPPED_BACK),
            repr(STEPPED_BACK_RATE),
        ]
        token = int(self._call(self._claim, keys=keys, args=args))
        return token or None

    def held(self, key: str) -> tuple[int, int] | None:
        keys = [self._key(f"claim:{key}", "tick"), self._key(f"claim:{key}", "fence")]
        tick, fence = self._call(self._client.mget, keys)  # one slot (one hash tag): one round trip
        try:
            return (int(tick), int(fence)) if tick is not None and fence is not None else None
        except ValueError:  # not numbers of ours: no claim we can name
            return None

    @property
    def client(self) -> redis.Redis:
        """The redis-py client (tests and benchmarks; the backend's methods are the interface)."""
        return self._client

    def close(self) -> None:
        self._closed = True
        try:
            self._client.close()
        except self._errors:  # pragma: no cover - closing sockets of a pool
            pass
