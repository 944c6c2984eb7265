"""The Redis backend's Lua scripts: each decision is one script, so one round trip, atomic.

Every time is the server's (``redis.call('TIME')``), so clients with skewed clocks agree.
A script's keys share one hash tag (``{host}``, ``{claim:key}``), so they sit in one slot
of a Redis Cluster too. ``redis.replicate_commands()`` lets a script that read the clock
write (needed before Redis 5, a no-op since). Replies are integers: Redis turns a Lua
number into an integer reply, cutting any fraction, so fractions are rounded up first.

Another client of the server may have written any value under our keys (issue 24, item 5),
so each script takes what it reads only as far as one of our processes could have set it
(``_base``): a pause is cut to the longest the caller follows, an arrival time to one burst
ahead, a place or heartbeat ending further ahead than the ttl asked is dropped, a claim
ending further ahead than its ttl or of a tick past ``latest`` is replaced, and a value that
is no number (or no finite one) counts as none. Every key a script writes gets an expiry.
"""

from __future__ import annotations

__all__ = ["ADMIT", "CLAIM", "HEARTBEAT", "LEASE", "LIFT", "LIVE", "PAUSE", "PAUSED", "RENEW"]

_NOW_US = """
if redis.replicate_commands then redis.replicate_commands() end
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
"""

#: ``number(x)``: ``x`` as a finite number, else nil (a string of ours, or anything else).
_NUMBER = """
local function number(x)
  x = tonumber(x)
  if x and x == x and x > -math.huge and x < math.huge then return x end
  return nil
end
"""

#: ``pause_left(key, longest)``: ms left of the pause, cut to ``longest`` (and kept cut).
_PAUSE_LEFT = """
local function pause_left(key, longest)
  local left = redis.call('PTTL', key)
  if left > longest then
    redis.call('PEXPIRE', key, longest)
    left = longest
  end
  return left
end
"""

#: ``in_force(key, now, ttl)`` (ms): drop from a sorted set scored by expiry the entries over
#: and those ending further ahead than ``ttl``; ``keep(key)``: the set expires with its last.
_SLOTS = """
local function in_force(key, now, ttl)
  redis.call('ZREMRANGEBYSCORE', key, '-inf', string.format('%.0f', now))
  redis.call('ZREMRANGEBYSCORE', key, string.format('(%.0f', now + ttl), '+inf')
end
local function keep(key)
  local last = redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')
  if last[2] then redis.call('PEXPIREAT', key, string.format('%.0f', math.ceil(tonumber(last[2])))) end
end
"""

#: GCRA with the host's pause. KEYS: the arrival time (µs), the pause (its PTTL is what is
#: left). ARGV: the emission interval (µs), the burst, the longest pause followed (ms). The
#: wait in ms (0: admitted). An arrival time further ahead than a burst of intervals is cut to
#: that and written back, as a pause longer than the longest is.
ADMIT = (
    _NOW_US
    + _NUMBER
    + _PAUSE_LEFT
    + """
local paused = pause_left(KEYS[2], tonumber(ARGV[3]))
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local stored = number(redis.call('GET', KEYS[1])) or now
local tat = math.min(math.max(stored, now), now + interval * burst)
local wait = tat - interval * (burst - 1) - now
if paused > 0 or wait > 0 then
  if wait > 0 and tat < stored then
    redis.call('SET', KEYS[1], string.format('%.0f', tat), 'PX', math.ceil((tat - now) / 1000) + 1)
  end
  return math.max(paused, math.ceil(wait / 1000))
end
tat = tat + interval
redis.call('SET', KEYS[1], string.format('%.0f', tat), 'PX', math.ceil((tat - now) / 1000) + 1)
return 0
"""
)

#: KEYS: the host's pause. ARGV: the longest pause followed (ms). The ms left of it.
PAUSED = (
    _PAUSE_LEFT
    + """
return math.max(0, pause_left(KEYS[1], tonumber(ARGV[1])))
"""
)

#: KEYS: the host's leases (a sorted set of ids scored by their expiry, ms). ARGV: limit,
#: ttl (ms), the new lease's id. 1 when taken, 0 when every place is held. The set expires
#: with its last lease, so an idle host leaves nothing behind.
LEASE = (
    _NOW_US
    + _SLOTS
    + """
now = math.floor(now / 1000)
local ttl = tonumber(ARGV[2])
in_force(KEYS[1], now, ttl)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then return 0 end
redis.call('ZADD', KEYS[1], string.format('%.0f', now + ttl), ARGV[3])
keep(KEYS[1])
return 1
"""
)

#: KEYS: the host's leases. ARGV: ttl (ms), then the ids to hold that much longer (those
#: still held). The set's own expiry follows its last lease.
RENEW = (
    _NOW_US
    + _SLOTS
    + """
now = math.floor(now / 1000)
local ttl = tonumber(ARGV[1])
in_force(KEYS[1], now, ttl)
for i = 2, #ARGV do
  redis.call('ZADD', KEYS[1], 'XX', string.format('%.0f', now + ttl), ARGV[i])
end
keep(KEYS[1])
return 0
"""
)

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
HEARTBEAT = (
    _NOW_US
    + _SLOTS
    + """
now = math.floor(now / 1000)
local ttl = tonumber(ARGV[2])
in_force(KEYS[1], now, ttl)
redis.call('ZADD', KEYS[1], string.format('%.0f', now + ttl), ARGV[1])
keep(KEYS[1])
return 0
"""
)

#: KEYS: the heartbeats. How many are in force (expired ones are dropped).
LIVE = (
    _NOW_US
    + """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', math.floor(now / 1000))
return redis.call('ZCARD', KEYS[1])
"""
)

#: KEYS: the tick held (expires after the claim's ttl), the fencing counter (kept for
#: ARGV[4] ms after the last claim), the claimant's wall clock (``"<ms> <ttl ms> <machine>"``,
#: expiring with the tick). ARGV: the tick, ttl (ms), the latest tick a claim in force may hold
#: ('': any), how long the counter is kept (ms), the caller's wall clock (ms, '': unknown), the
#: tick's length (ms), the caller's machine, how far a wall clock must have stepped back (ms, and
#: per ms since the claim).
#: The fencing token to the winner, 0 to the others. A held tick is in force only while it ends
#: within the ttl and is no later than the latest, and unless this machine made it before its
#: wall clock stepped back and the caller's tick is later than the window it then fell in
#: (``_base.lived_again``); a counter that is no whole number below 2**53 starts again.
CLAIM = (
    _NUMBER
    + """
local tick, ttl, latest = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local held = number(redis.call('GET', KEYS[1]))
local left = redis.call('PTTL', KEYS[1])
if held and held >= tick and left > 0 and left <= ttl and not (latest and held > latest) then
  local at, period, was = number(ARGV[5]), number(ARGV[6]), redis.call('GET', KEYS[3])
  local held_at, held_ttl, machine
  if type(was) == 'string' then held_at, held_ttl, machine = string.match(was, '^(%-?%d+) (%d+) (%S+)$') end
  if not (at and period and period > 0 and held_at and machine == ARGV[7]) then return 0 end
  local elapsed = tonumber(held_ttl) - left
  local made = at - elapsed
  local stepped = tonumber(held_at) - made > math.max(tonumber(ARGV[8]), elapsed * tonumber(ARGV[9]))
  if not (stepped and math.floor(made / period) < tick) then return 0 end
end
if ARGV[5] ~= '' then
  redis.call('SET', KEYS[3], ARGV[5] .. ' ' .. ARGV[2] .. ' ' .. ARGV[7], 'PX', ttl)
else
  redis.call('DEL', KEYS[3])
end
local fence = number(redis.call('GET', KEYS[2]))
if fence and (fence < 0 or fence >= 9007199254740992 or fence % 1 ~= 0) then fence = nil end
if not fence then redis.call('DEL', KEYS[2]) end
local token = redis.call('INCR', KEYS[2])
redis.call('PEXPIRE', KEYS[2], ARGV[4])
redis.call('SET', KEYS[1], ARGV[1], 'PX', ttl)
return token
"""
)
