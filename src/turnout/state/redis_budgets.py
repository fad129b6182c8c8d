"""`RedisBudgetLedger`: budgets shared by several replicas through Redis.

Each operation is one Lua script call (see `turnout.state.redis_base`). Keys:

- `{prefix}:b:<key>`: a budget, a hash of integer counters `s` (spent) and `r` (reserved),
  kept at least `Charge.ttl_s` (or the ledger's default) after its last reservation;
- `{prefix}:res:<id>`: a live reservation, a hash of its expiry `e` and, per budget key,
  `a<key>` (amount) and `t<key>` (the key's TTL in ms, to recreate it if it expired);
- `{prefix}:leases`: a sorted set of live reservation ids scored by lease expiry, which
  `sweep` reads.

`settle` and `sweep` find a reservation's budget keys in its record, so they touch keys the
caller did not name. All of them share the store's hash tag (one cluster slot), which is
what lets a script do so.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from redis.asyncio import Redis

from turnout.resilience.clock import Clock
from turnout.state.budgets import (
    DEFAULT_KEY_TTL_S,
    KEEP_AFTER_LEASE_S,
    BudgetDenied,
    BudgetUsage,
    Charge,
    Reservation,
    check_actual,
    check_charges,
    key_ttl_s,
)
from turnout.state.redis_base import LUA_NOW, RedisStore, text

# Shared by settle and sweep: read a record; end one budget's part of a reservation.
# Counters are passed to HINCRBY as the decimal strings they were stored as: Lua would
# print a large number in exponent notation, which HINCRBY refuses.
CLOSE_LUA = """
local function record(key)
  local rec = redis.call('HGETALL', key)
  local amounts, ttls, n = {}, {}, 0
  for i = 1, #rec, 2 do
    local kind, raw = string.sub(rec[i], 1, 1), string.sub(rec[i], 2)
    if kind == 'a' then amounts[raw] = rec[i + 1]; n = n + 1
    elseif kind == 't' then ttls[raw] = rec[i + 1] end
  end
  return #rec > 0, amounts, ttls, n
end
local function close(key, amount, actual, ttl)  -- returns the budget's spent units
  if redis.call('EXISTS', key) == 1 then
    if amount ~= '0' then redis.call('HINCRBY', key, 'r', '-' .. amount) end
    return redis.call('HINCRBY', key, 's', actual)
  end
  -- the key expired before the reservation ended: start it again
  redis.call('HSET', key, 's', actual, 'r', 0)
  redis.call('PEXPIRE', key, ttl)
  return tonumber(actual)
end
"""

# KEYS: record, lease index, then one budget per charge. ARGV: now, lease_s, id,
# record TTL ms, then (key, limit, amount, key TTL ms) per charge.
# Replies {1, expiry} | {2, expiry} (already held) | {0, charge index, spent, reserved}.
_RESERVE = LUA_NOW + """
local held = redis.call('HGET', KEYS[1], 'e')
if held then return {2, held} end
local n = #KEYS - 2
for i = 1, n do
  local j = 1 + 4 * i
  local v = redis.call('HMGET', KEYS[i + 2], 's', 'r')
  local spent, reserved = tonumber(v[1]) or 0, tonumber(v[2]) or 0
  if spent + reserved + tonumber(ARGV[j + 2]) > tonumber(ARGV[j + 1]) then
    return {0, i, v[1] or '0', v[2] or '0'}
  end
end
local expiry = fmt(now + tonumber(ARGV[2]))
local fields = {'e', expiry}
for i = 1, n do
  local j, key = 1 + 4 * i, KEYS[i + 2]
  local ttl = tonumber(ARGV[j + 3])
  redis.call('HINCRBY', key, 'r', ARGV[j + 2])
  if redis.call('PTTL', key) < ttl then redis.call('PEXPIRE', key, ttl) end
  table.insert(fields, 'a' .. ARGV[j]); table.insert(fields, ARGV[j + 2])
  table.insert(fields, 't' .. ARGV[j]); table.insert(fields, ARGV[j + 3])
end
redis.call('HSET', KEYS[1], unpack(fields))
redis.call('PEXPIRE', KEYS[1], ARGV[4])
redis.call('ZADD', KEYS[2], expiry, ARGV[3])
return {1, expiry}
"""

# KEYS: record, lease index. ARGV: budget key prefix, id, 'one' amount | 'each' (key, amount)...
# Replies 1 (settled) or 0 (nothing to settle).
_SETTLE = CLOSE_LUA + """
local found, amounts, ttls, n = record(KEYS[1])
if not found then redis.call('ZREM', KEYS[2], ARGV[2]); return 0 end
local actual = {}
if ARGV[3] == 'one' then
  for raw in pairs(amounts) do actual[raw] = ARGV[4] end
else
  local named = 0
  for i = 4, #ARGV, 2 do
    if not amounts[ARGV[i]] then
      return redis.error_reply('TURNOUT settling ' .. ARGV[2] .. ': ' .. ARGV[i] ..
                               ' was not reserved')
    end
    actual[ARGV[i]] = ARGV[i + 1]; named = named + 1
  end
  if named ~= n then
    return redis.error_reply('TURNOUT settling ' .. ARGV[2] ..
                             ': the actual amounts must name every reserved key')
  end
end
for raw, amount in pairs(amounts) do close(ARGV[1] .. raw, amount, actual[raw], ttls[raw]) end
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[2])
return 1
"""

# KEYS: lease index. ARGV: now, budget key prefix, record key prefix, batch size.
# Replies {ids looked at, swept id...}; an id whose record is gone is dropped, not swept.
_SWEEP = LUA_NOW + CLOSE_LUA + """
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', fmt(now), 'LIMIT', 0, ARGV[4])
local reply = {#ids}
for _, id in ipairs(ids) do
  local found, amounts, ttls = record(ARGV[3] .. id)
  if found then
    for raw, amount in pairs(amounts) do close(ARGV[2] .. raw, amount, amount, ttls[raw]) end
    table.insert(reply, id)
  end
  redis.call('DEL', ARGV[3] .. id)
  redis.call('ZREM', KEYS[1], id)
end
return reply
"""

_SWEEP_BATCH = 500
"""Reservations one sweep script settles: enough to keep up, few enough that Redis (one
thread) never stalls other callers for long."""


class RedisBudgetLedger(RedisStore):
    """Budgets, reservations and their leases in Redis (see the module docstring).

    `client` is a `redis.asyncio.Redis` (see `turnout.state.redis_base.redis_client`);
    `clock=None` means the Redis server's clock.
    """

    __slots__ = ("_default_ttl_s", "_leases", "_reserve", "_settle", "_sweep")

    def __init__(self, client: Redis, *, prefix: str = "turnout", clock: Clock | None = None,
                 default_ttl_s: float = DEFAULT_KEY_TTL_S) -> None:
        super().__init__(client, prefix=prefix, clock=clock)
        self._default_ttl_s = default_ttl_s
        self._leases = self.key("leases", "all")
        self._reserve = client.register_script(_RESERVE)
        self._settle = client.register_script(_SETTLE)
        self._sweep = client.register_script(_SWEEP)

    async def reserve(self, reservation_id: str, charges: Sequence[Charge], lease_s: float,
                      now: float | None = None) -> Reservation | BudgetDenied:
        check_charges(charges, lease_s)
        keys = [self.key("res", reservation_id), self._leases]
        record_ms = _ms(lease_s + KEEP_AFTER_LEASE_S)
        args: list[str | int | float] = [self.now_arg(now), repr(float(lease_s)),
                                         reservation_id, record_ms]
        for charge in charges:
            keys.append(self.key("b", charge.key))
            args += [charge.key, charge.limit, charge.amount,
                     _ms(key_ttl_s(charge, self._default_ttl_s, lease_s))]
        reply = await self.run(self._reserve, "a budget reservation", keys, args)
        if reply[0] == 0:
            return BudgetDenied(charges[int(reply[1]) - 1], int(reply[2]), int(reply[3]))
        return Reservation(reservation_id, tuple(charges), float(reply[1]))

    async def settle(self, reservation_id: str, actual: Mapping[str, int] | int) -> bool:
        check_actual(actual)
        args: list[str | int | float] = [self.key("b", ""), reservation_id]
        if isinstance(actual, Mapping):
            args.append("each")
            for key, amount in actual.items():
                args += [key, amount]
        else:
            args += ["one", actual]
        keys = [self.key("res", reservation_id), self._leases]
        return bool(await self.run(self._settle, "a budget settlement", keys, args))

    async def sweep(self, now: float | None = None) -> list[str]:
        args: list[str | int | float] = [self.now_arg(now), self.key("b", ""),
                                         self.key("res", ""), _SWEEP_BATCH]
        swept: list[str] = []
        while True:  # one round trip unless more than a batch has expired
            reply = await self.run(self._sweep, "a reservation sweep", [self._leases], args)
            swept += [text(i) for i in reply[1:]]
            if int(reply[0]) < _SWEEP_BATCH:
                return swept

    async def usage(self, key: str) -> BudgetUsage:
        spent, reserved = await self.run_command(
            "reading a budget", self.client.hmget(self.key("b", key), ["s", "r"]))
        return BudgetUsage(int(spent or 0), int(reserved or 0))


def _ms(seconds: float) -> int:
    return max(int(seconds * 1000), 1)
