"""redis-py (sync, asyncio, cluster): every command goes through ``execute_command`` (a
pipeline's too, as it is queued). A command goes on only if it is a read (:data:`READS`:
those Redis flags ``readonly``, plus what only inspects the server or this connection);
anything else (``SET``, ``DEL``, ``INCR``, ``EXPIRE``, ``PUBLISH``, ``EVAL``, ``SELECT``...)
stops the shadow before it is sent or queued. A read is sent inside :func:`reading`, since it
may open a pooled connection (a ``socket.connect``). Supported: redis-py 4.2 and later
(tested on 8.2 against a real redis-server).
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any

from .._context import ACTING, reading, where
from .._wrapping import Args, Kwargs, wrap

__all__ = ["HOOKS", "READS", "SUPPORTED", "command_name"]

SUPPORTED = ">=4.2"

READS = frozenset({
    # flagged readonly by the server
    "BITCOUNT", "BITFIELD_RO", "BITPOS", "DBSIZE", "DUMP", "EXISTS", "EXPIRETIME", "GEODIST", "GEOHASH", "GEOPOS",
    "GEORADIUSBYMEMBER_RO", "GEORADIUS_RO", "GEOSEARCH", "GET", "GETBIT", "GETRANGE", "HEXISTS", "HEXPIRETIME",
    "HGET", "HGETALL", "HKEYS", "HLEN", "HMGET", "HPEXPIRETIME", "HPTTL", "HRANDFIELD", "HSCAN", "HSTRLEN", "HTTL",
    "HVALS", "KEYS", "LCS", "LINDEX", "LLEN", "LOLWUT", "LPOS", "LRANGE", "MGET", "PEXPIRETIME", "PFCOUNT", "PTTL",
    "RANDOMKEY", "SCAN", "SCARD", "SDIFF", "SINTER", "SINTERCARD", "SISMEMBER", "SMEMBERS", "SMISMEMBER",
    "SORT_RO", "SRANDMEMBER", "SSCAN", "STRALGO", "STRLEN", "SUBSTR", "SUNION", "TOUCH", "TTL", "TYPE", "XLEN",
    "XPENDING", "XRANGE", "XREAD", "XREVRANGE", "ZCARD", "ZCOUNT", "ZDIFF", "ZINTER", "ZINTERCARD", "ZLEXCOUNT",
    "ZMSCORE", "ZRANDMEMBER", "ZRANGE", "ZRANGEBYLEX", "ZRANGEBYSCORE", "ZRANK", "ZREVRANGE", "ZREVRANGEBYLEX",
    "ZREVRANGEBYSCORE", "ZREVRANK", "ZSCAN", "ZSCORE", "ZUNION", "EVAL_RO", "EVALSHA_RO", "FCALL_RO",
    # the server, this connection, a transaction of reads
    "PING", "ECHO", "TIME", "INFO", "ROLE", "LASTSAVE", "COMMAND", "READONLY", "MULTI", "EXEC", "DISCARD", "WATCH",
    "UNWATCH",
    "CLIENT LIST", "CLIENT INFO", "CLIENT GETNAME", "CLIENT ID", "CLIENT TRACKINGINFO", "CLIENT GETREDIR",
    "CONFIG GET", "MEMORY USAGE", "MEMORY STATS", "MEMORY DOCTOR", "OBJECT ENCODING", "OBJECT FREQ",
    "OBJECT IDLETIME", "OBJECT REFCOUNT", "XINFO STREAM", "XINFO GROUPS", "XINFO CONSUMERS", "SCRIPT EXISTS",
    "FUNCTION LIST", "FUNCTION DUMP", "FUNCTION STATS", "COMMAND COUNT", "COMMAND INFO", "COMMAND DOCS",
    "COMMAND LIST", "COMMAND GETKEYS", "CLUSTER INFO", "CLUSTER NODES", "CLUSTER SLOTS", "CLUSTER SHARDS",
    "CLUSTER KEYSLOT", "CLUSTER MYID", "CLUSTER COUNTKEYSINSLOT", "CLUSTER GETKEYSINSLOT", "PUBSUB CHANNELS",
    "PUBSUB NUMSUB", "PUBSUB NUMPAT", "PUBSUB SHARDCHANNELS", "PUBSUB SHARDNUMSUB", "ACL WHOAMI", "ACL LIST",
    "ACL USERS", "ACL CAT", "ACL GETUSER", "SLOWLOG GET", "SLOWLOG LEN", "LATENCY LATEST", "LATENCY HISTORY",
    # modules' reads
    "JSON.GET", "JSON.MGET", "JSON.TYPE", "JSON.STRLEN", "JSON.OBJKEYS", "JSON.OBJLEN", "JSON.ARRLEN",
    "JSON.ARRINDEX", "JSON.RESP", "FT.SEARCH", "FT.AGGREGATE", "FT.INFO", "FT._LIST", "FT.EXPLAIN", "TS.GET",
    "TS.MGET", "TS.RANGE", "TS.REVRANGE", "TS.MRANGE", "TS.MREVRANGE", "TS.INFO", "TS.QUERYINDEX", "BF.EXISTS",
    "BF.MEXISTS", "CF.EXISTS", "CF.MEXISTS", "CF.COUNT",
})  # fmt: skip
#: Commands whose second word says what they do.
_CONTAINERS = frozenset({
    "CLIENT", "CONFIG", "MEMORY", "OBJECT", "XINFO", "XGROUP", "SCRIPT", "FUNCTION", "COMMAND", "CLUSTER", "PUBSUB",
    "ACL", "SLOWLOG", "LATENCY", "MODULE", "DEBUG",
})  # fmt: skip


def _word(value: Any) -> str:
    return (value.decode("utf-8", "replace") if isinstance(value, (bytes, bytearray)) else str(value)).upper()


def command_name(args: Args) -> str:
    """``("client", "list")`` -> ``"CLIENT LIST"``, ``("GET", "k")`` -> ``"GET"``."""
    if not args:
        return ""
    name = _word(args[0])
    if name in _CONTAINERS and len(args) > 1:
        return f"{name} {_word(args[1])}"
    return name


def _check(args: Args) -> None:
    shadow = ACTING.get()
    if shadow is not None:
        shadow.check()
        name = command_name(args)
        if name not in READS:
            shadow.stop(f"a Redis write through redis-py: {name} ({where()})")


def _command(wrapped: Callable[..., Any], instance: Any, args: Args, kwargs: Kwargs) -> Any:
    _check(args)
    with reading():
        return wrapped(*args, **kwargs)


def _async_command(wrapped: Callable[..., Any], instance: Any, args: Args, kwargs: Kwargs) -> Any:
    _check(args)

    async def read() -> Any:
        with reading():
            return await wrapped(*args, **kwargs)

    return read()


def _execute(wrapped: Callable[..., Any], instance: Any, args: Args, kwargs: Kwargs) -> Any:
    """A pipeline's ``execute``: every queued command was a read (else it stopped when queued)."""
    _check(("EXEC",))
    with reading():
        return wrapped(*args, **kwargs)


def _async_execute(wrapped: Callable[..., Any], instance: Any, args: Args, kwargs: Kwargs) -> Any:
    _check(("EXEC",))

    async def read() -> Any:
        with reading():
            return await wrapped(*args, **kwargs)

    return read()


def _hooks(client: str, pipeline: str, is_async: bool) -> Callable[[ModuleType], None]:
    def install(module: ModuleType) -> None:
        wrap(getattr(module, client), "execute_command", _async_command if is_async else _command, ACTING.get)
        owner = getattr(module, pipeline, None)
        if owner is not None:
            wrap(owner, "execute_command", _command, ACTING.get)  # queued, or sent at once after WATCH
            wrap(owner, "execute", _async_execute if is_async else _execute, ACTING.get)

    return install


HOOKS: tuple[tuple[str, Callable[[ModuleType], None]], ...] = (
    ("redis.client", _hooks("Redis", "Pipeline", False)),
    ("redis.asyncio.client", _hooks("Redis", "Pipeline", True)),
    ("redis.cluster", _hooks("RedisCluster", "ClusterPipeline", False)),
    ("redis.asyncio.cluster", _hooks("RedisCluster", "ClusterPipeline", True)),
)
