"""`RedisRateLimiter`: rate and concurrency limits shared by several replicas through Redis.

Each operation is one Lua script call (see `turnout.state.redis_base`). The rate-limit
script evaluates GCRA's inequality on the very increment and tolerance that
`turnout.state.gcra.terms` computed, and sends back each key's TAT; the `Admission` (its
`remaining`, `reset_after` and `retry_after`) is then derived in Python by the same function
the in-process limiter uses, so both stores answer identically.

Keys: `{prefix}:rl:<key>` holds a TAT (a string, full double precision) that expires once
the bucket is full again; `{prefix}:cc:<key>` is a sorted set of lease ids scored by expiry.
"""

from __future__ import annotations

import itertools
import secrets
from collections.abc import Sequence

from redis.asyncio import Redis

from turnout.resilience.clock import Clock
from turnout.state import gcra
from turnout.state.limits import Admission, Denied, Lease, Limit, check_lease, check_limits
from turnout.state.redis_base import LUA_NOW, TTL_SLACK_MS, RedisStore

# KEYS: one TAT per limit. ARGV: now, slack ms, then (increment, tolerance) per limit.
# Replies {admitted, now, tat_1, ..., tat_n}, each tat raised to now and before this call.
_ACQUIRE = LUA_NOW + """
local slack = tonumber(ARGV[2])
local tats, nexts, admitted = {}, {}, 1
for i = 1, #KEYS do
  local tat = tonumber(redis.call('GET', KEYS[i]))
  if tat == nil or tat < now then tat = now end
  local nt = tat + tonumber(ARGV[1 + 2 * i])
  if nt - tonumber(ARGV[2 + 2 * i]) - now > 0 then admitted = 0 end
  tats[i] = fmt(tat)
  nexts[i] = nt
end
if admitted == 1 then
  for i = 1, #KEYS do
    local ttl = math.ceil((nexts[i] - now) * 1000) + slack
    redis.call('SET', KEYS[i], fmt(nexts[i]), 'PX', ttl)
  end
end
return {admitted, fmt(now), unpack(tats)}
"""

# KEYS[1]: the key's leases (id -> expiry). ARGV: now, limit, lease_s, lease id, slack ms.
# Replies {admitted, now, active, expiry}: the new lease's expiry, or the earliest one.
_ENTER = LUA_NOW + """
local limit, lease, id = tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', fmt(now))
local mine = redis.call('ZSCORE', KEYS[1], id)
local active = redis.call('ZCARD', KEYS[1])
if mine then return {1, fmt(now), active, mine} end  -- a retry of an admitted call
if active >= limit then
  local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return {0, fmt(now), active, first[2]}
end
local expiry = now + lease
redis.call('ZADD', KEYS[1], fmt(expiry), id)
local keep = math.ceil(lease * 1000) + tonumber(ARGV[5])
if redis.call('PTTL', KEYS[1]) < keep then redis.call('PEXPIRE', KEYS[1], keep) end
return {1, fmt(now), active + 1, fmt(expiry)}
"""


class RedisRateLimiter(RedisStore):
    """GCRA rate limits and leased concurrency slots in Redis (see the module docstring).

    `client` is a `redis.asyncio.Redis` (see `turnout.state.redis_base.redis_client` for
    timeouts fit for the request path); `clock=None` means the Redis server's clock.
    """

    __slots__ = ("_acquire", "_enter", "_ids")

    def __init__(self, client: Redis, *, prefix: str = "turnout",
                 clock: Clock | None = None) -> None:
        super().__init__(client, prefix=prefix, clock=clock)
        self._acquire = client.register_script(_ACQUIRE)
        self._enter = client.register_script(_ENTER)
        # Lease ids unique across replicas without a system call per lease.
        self._ids = (f"{secrets.token_hex(8)}-{n}" for n in itertools.count(1))

    async def acquire(self, limits: Sequence[Limit], now: float | None = None) -> Admission:
        check_limits(limits)
        if not limits:
            return Admission(True, ())
        args: list[str | int | float] = [self.now_arg(now), TTL_SLACK_MS]
        for limit in limits:
            args.extend(repr(x) for x in gcra.terms(limit))
        keys = [self.key("rl", limit.key) for limit in limits]
        reply = await self.run(self._acquire, "a rate-limit check", keys, args)
        at = float(reply[1])
        admission, _ = gcra.decide(limits, [float(t) for t in reply[2:]], at)
        if admission.allowed != bool(reply[0]):  # the same doubles on both sides
            raise AssertionError("GCRA decided differently in Redis and in Python")
        return admission

    async def enter(self, key: str, limit: int, lease_s: float,
                    now: float | None = None) -> Lease | Denied:
        check_lease(key, limit, lease_s)
        lease_id = next(self._ids)
        args: list[str | int | float] = [self.now_arg(now), limit, repr(float(lease_s)),
                                         lease_id, TTL_SLACK_MS]
        reply = await self.run(self._enter, "a concurrency check", [self.key("cc", key)], args)
        at, active, expiry = float(reply[1]), int(reply[2]), float(reply[3])
        if not reply[0]:
            return Denied(key, limit, active, max(expiry - at, 0.0))
        return Lease(key, lease_id, expiry)

    async def leave(self, lease: Lease) -> None:
        # One command is atomic by itself: no script needed.
        await self.run_command("giving a concurrency slot back",
                               self.client.zrem(self.key("cc", lease.key), lease.lease_id))
