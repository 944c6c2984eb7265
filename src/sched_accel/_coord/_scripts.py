"""The Redis backend's Lua scripts: each decision is one script, so one round trip, atomic.

Every time is the server's (``redis.call('TIME')``), so clients with skewed clocks agree.
A script's keys share one hash tag (``{host}``, ``{claim:key}``), so they sit in one slot
of a Redis Cluster too. ``redis.replicate_commands()`` lets a script that read the clock
write (needed before Redis 5, a no-op since). Replies are integers: Redis turns a Lua
number into an integer reply, cutting any fraction, so fractions are rounded up first.
"""

from __future__ import annotations

__all__ = ["ADMIT", "CLAIM", "HEARTBEAT", "LEASE", "LIFT", "LIVE", "PAUSE", "RENEW"]

_NOW_US = """
if redis.replicate_commands then redis.replicate_commands() end
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
"""

#: GCRA with the host's pause. KEYS: the arrival time (µs), the pause (its PTTL is what is
#: left). ARGV: the emission interval (µs), the burst. The wait in ms (0: admitted).
ADMIT = _NOW_US + """
local paused = redis.call('PTTL', KEYS[2])
local interval = tonumber(ARGV[1])
local tat = tonumber(redis.call('GET', KEYS[1])) or now
if tat < now then tat = now end
local wait = tat - interval * (tonumber(ARGV[2]) - 1) - now
if paused > 0 or wait > 0 then
  return math.max(paused, math.ceil(wait / 1000))
end
tat = tat + interval
redis.call('SET', KEYS[1], string.format('%.0f', tat), 'PX', math.ceil((tat - now) / 1000) + 1)
return 0
"""

#: KEYS: the host's leases (a sorted set of ids scored by their expiry, ms). ARGV: limit,
#: ttl (ms), the new lease's id. 1 when taken, 0 when every place is held. The set expires
#: with its last lease, so an idle host leaves nothing behind.
LEASE = _NOW_US + """
now = math.floor(now / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then return 0 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[3])
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
redis.call('PEXPIREAT', KEYS[1], math.ceil(tonumber(last[2])))
return 1
"""

#: KEYS: the host's leases. ARGV: ttl (ms), then the ids to hold that much longer (those
#: still held). The set's own expiry follows its last lease.
RENEW = _NOW_US + """
now = math.floor(now / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
for i = 2, #ARGV do
  redis.call('ZADD', KEYS[1], 'XX', now + tonumber(ARGV[1]), ARGV[i])
end
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
if last[2] then redis.call('PEXPIREAT', KEYS[1], math.ceil(tonumber(last[2]))) end
return 0
"""

#: KEYS: the host's pause. ARGV: at most this much of it left (ms): then it ends now.
LIFT = """
local left = redis.call('PTTL', KEYS[1])
if left > 0 and left <= tonumber(ARGV[1]) then redis.call('DEL', KEYS[1]) end
return 0
"""

#: KEYS: the host's pause. ARGV: its length (ms, >= 1). Never shortens a longer pause.
PAUSE = """
local ms = tonumber(ARGV[1])
if redis.call('PTTL', KEYS[1]) < ms then redis.call('SET', KEYS[1], '1', 'PX', ms) end
return 0
"""

#: KEYS: the heartbeats (a sorted set of process ids scored by expiry, ms). ARGV: the
#: process id, ttl (ms).
HEARTBEAT = _NOW_US + """
now = math.floor(now / 1000)
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
redis.call('PEXPIREAT', KEYS[1], math.ceil(tonumber(last[2])))
return 0
"""

#: KEYS: the heartbeats. How many are in force (expired ones are dropped).
LIVE = _NOW_US + """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', math.floor(now / 1000))
return redis.call('ZCARD', KEYS[1])
"""

#: KEYS: the tick held (expires after the claim's ttl), the fencing counter (kept).
#: ARGV: the tick, ttl (ms). The fencing token to the winner, 0 to the others.
CLAIM = """
local held = redis.call('GET', KEYS[1])
if held and tonumber(held) >= tonumber(ARGV[1]) then return 0 end
local token = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return token
"""
