"""`RedisQuota`: a call's rate limits, concurrency slots and budget reservation in ONE
round trip, and their release in one more.

The quota stage needs three things before a call goes upstream: its rate limits consumed,
its concurrency slots taken, its worst case reserved. Asked of `RedisRateLimiter`,
`RedisRateLimiter.enter` and `RedisBudgetLedger` separately, that is one script per limit
kind and slot, each a round trip and each a reply for redis-py to parse. `admit` runs them
as one script instead, all or nothing: it checks every limit, slot and budget first and
writes only when all of them pass, so a refused call consumes nothing anywhere (no undo
needed, no window in which a refused call holds a slot another call could have had).
`release` gives the slots back and settles the reservation in one script, and replies with
each budget's spent units, which is what budget alerts need.

The keys and the arithmetic are those of the two stores (see `turnout.state.redis_limits`
and `turnout.state.redis_budgets`; both scripts share `CLOSE_LUA` and GCRA's terms), so keys
written here are read and swept by them alike and the two kinds of call may be mixed.

A retried `admit` (redis-py retries once after a lost connection) must not take twice: a
call whose reservation record, or first slot, already exists was admitted by the first try,
and the script then answers "admitted" again without writing (its rate limits may count
twice, as with `RedisRateLimiter`: over-counting, never under).
"""

from __future__ import annotations

import itertools
import secrets
from collections.abc import Mapping, Sequence

from redis.asyncio import Redis

from turnout.resilience.clock import Clock
from turnout.state import gcra
from turnout.state.admission import Grant, Slot
from turnout.state.budgets import (
    DEFAULT_KEY_TTL_S,
    KEEP_AFTER_LEASE_S,
    BudgetDenied,
    Charge,
    Reservation,
    check_actual,
    check_charges,
    key_ttl_s,
)
from turnout.state.limits import Denied, Lease, Limit, check_lease, check_limits
from turnout.state.redis_base import LUA_NOW, TTL_SLACK_MS, RedisStore, text
from turnout.state.redis_budgets import CLOSE_LUA

# KEYS: reservation record, lease index, then one key per rate limit, per slot, per charge.
# ARGV: now, slack ms, #limits, #slots, #charges, lease_s, reservation id, record TTL ms,
#   then (increment, tolerance) per limit, (limit, lease id) per slot,
#   (key, limit, amount, key TTL ms) per charge.
# Replies {admitted, now, tat per limit..., (taken, active, expiry) per slot...,
#   budget: (code, charge index, spent, reserved, expiry)} with code 1 reserved,
#   2 held already (a retry), 0 refused, -1 no budget.
_ADMIT = LUA_NOW + """
local slack = tonumber(ARGV[2])
local nl, nc, nb = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local lease, id = tonumber(ARGV[6]), ARGV[7]
local first_slot, first_charge = 9 + 2 * nl, 9 + 2 * nl + 2 * nc
local replayed = false
if nb > 0 then
  replayed = redis.call('EXISTS', KEYS[1]) == 1
elseif nc > 0 then
  replayed = redis.call('ZSCORE', KEYS[3 + nl], ARGV[first_slot + 1]) ~= false
end
local ok = 1
local reply = {0, fmt(now)}
local nexts = {}
for i = 1, nl do
  local tat = tonumber(redis.call('GET', KEYS[2 + i]))
  if tat == nil or tat < now then tat = now end
  local j = 7 + 2 * i
  local nt = tat + tonumber(ARGV[j])
  if nt - tonumber(ARGV[j + 1]) - now > 0 then ok = 0 end
  reply[#reply + 1] = fmt(tat)
  nexts[i] = nt
end
local expiry = fmt(now + lease)
for i = 1, nc do
  local key, j = KEYS[2 + nl + i], first_slot + 2 * (i - 1)
  redis.call('ZREMRANGEBYSCORE', key, '-inf', fmt(now))
  local active = redis.call('ZCARD', key)
  local mine = redis.call('ZSCORE', key, ARGV[j + 1])
  if mine or replayed then
    reply[#reply + 1] = 1; reply[#reply + 1] = active; reply[#reply + 1] = mine or expiry
  elseif active >= tonumber(ARGV[j]) then
    ok = 0
    local first = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
    reply[#reply + 1] = 0; reply[#reply + 1] = active; reply[#reply + 1] = first[2]
  else
    reply[#reply + 1] = 1; reply[#reply + 1] = active + 1; reply[#reply + 1] = expiry
  end
end
if nb == 0 then
  for _, v in ipairs({-1, 0, '0', '0', ''}) do reply[#reply + 1] = v end
elseif replayed then
  local held = redis.call('HGET', KEYS[1], 'e') or expiry
  for _, v in ipairs({2, 0, '0', '0', held}) do reply[#reply + 1] = v end
else
  local refused = 0
  for i = 1, nb do
    local j = first_charge + 4 * (i - 1)
    local v = redis.call('HMGET', KEYS[2 + nl + nc + i], 's', 'r')
    local spent, reserved = tonumber(v[1]) or 0, tonumber(v[2]) or 0
    if spent + reserved + tonumber(ARGV[j + 2]) > tonumber(ARGV[j + 1]) then
      refused = i
      for _, x in ipairs({0, i, v[1] or '0', v[2] or '0', ''}) do reply[#reply + 1] = x end
      break
    end
  end
  if refused == 0 then
    for _, x in ipairs({1, 0, '0', '0', expiry}) do reply[#reply + 1] = x end
  else
    ok = 0
  end
end
if replayed then ok = 1 end
reply[1] = ok
if ok == 0 or replayed then return reply end
for i = 1, nl do
  local ttl = math.ceil((nexts[i] - now) * 1000) + slack
  redis.call('SET', KEYS[2 + i], fmt(nexts[i]), 'PX', ttl)
end
local keep = math.ceil(lease * 1000) + slack
for i = 1, nc do
  local key, j = KEYS[2 + nl + i], first_slot + 2 * (i - 1)
  redis.call('ZADD', key, expiry, ARGV[j + 1])
  if redis.call('PTTL', key) < keep then redis.call('PEXPIRE', key, keep) end
end
if nb > 0 then
  local fields = {'e', expiry}
  for i = 1, nb do
    local j, key = first_charge + 4 * (i - 1), KEYS[2 + nl + nc + i]
    local ttl = tonumber(ARGV[j + 3])
    redis.call('HINCRBY', key, 'r', ARGV[j + 2])
    if redis.call('PTTL', key) < ttl then redis.call('PEXPIRE', key, ttl) end
    table.insert(fields, 'a' .. ARGV[j]); table.insert(fields, ARGV[j + 2])
    table.insert(fields, 't' .. ARGV[j]); table.insert(fields, ARGV[j + 3])
  end
  redis.call('HSET', KEYS[1], unpack(fields))
  redis.call('PEXPIRE', KEYS[1], ARGV[8])
  redis.call('ZADD', KEYS[2], expiry, id)
end
return reply
"""

# KEYS: reservation record, lease index, then one key per lease.
# ARGV: budget key prefix, reservation id ('' for none), then the lease ids, then
#   (key, actual) per reserved budget. Replies {settled, key, spent, key, spent...}.
_RELEASE = CLOSE_LUA + """
local nc = #KEYS - 2
for i = 1, nc do redis.call('ZREM', KEYS[2 + i], ARGV[2 + i]) end
if ARGV[2] == '' then return {0} end
local found, amounts, ttls, n = record(KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[2])
if not found then return {0} end
local actual, named = {}, 0
for i = 3 + nc, #ARGV, 2 do
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
local reply = {1}
for raw, amount in pairs(amounts) do
  reply[#reply + 1] = raw
  reply[#reply + 1] = close(ARGV[1] .. raw, amount, actual[raw], ttls[raw])
end
redis.call('DEL', KEYS[1])
return reply
"""


class RedisQuota(RedisStore):
    """Rate limits, concurrency slots and budgets in one script (see the module docstring).

    Uses the keys of `RedisRateLimiter` and `RedisBudgetLedger` with the same prefix.
    """

    __slots__ = ("_admit", "_default_ttl_s", "_ids", "_leases", "_release")

    def __init__(self, client: Redis, *, prefix: str = "turnout", clock: Clock | None = None,
                 default_ttl_s: float = DEFAULT_KEY_TTL_S) -> None:
        super().__init__(client, prefix=prefix, clock=clock)
        self._default_ttl_s = default_ttl_s
        self._leases = self.key("leases", "all")
        self._admit = client.register_script(_ADMIT)
        self._release = client.register_script(_RELEASE)
        self._ids = (f"{secrets.token_hex(8)}-q{n}" for n in itertools.count(1))

    async def admit(self, reservation_id: str, limits: Sequence[Limit], slots: Sequence[Slot],
                    charges: Sequence[Charge], lease_s: float,
                    now: float | None = None) -> Grant:
        """Consume every limit, take every slot and reserve every charge, or none."""
        check_limits(limits)
        for slot in slots:
            check_lease(slot.key, slot.limit, lease_s)
        if charges:
            check_charges(charges, lease_s)
        lease_ids = [next(self._ids) for _ in slots]
        keys = [self.key("res", reservation_id), self._leases]
        args: list[str | int | float] = [
            self.now_arg(now), TTL_SLACK_MS, len(limits), len(slots), len(charges),
            repr(float(lease_s)), reservation_id, _ms(lease_s + KEEP_AFTER_LEASE_S)]
        for limit in limits:
            keys.append(self.key("rl", limit.key))
            args.extend(repr(x) for x in gcra.terms(limit))
        for slot, lease_id in zip(slots, lease_ids, strict=True):
            keys.append(self.key("cc", slot.key))
            args += [slot.limit, lease_id]
        for charge in charges:
            keys.append(self.key("b", charge.key))
            args += [charge.key, charge.limit, charge.amount,
                     _ms(key_ttl_s(charge, self._default_ttl_s, lease_s))]
        reply = await self.run(self._admit, "a quota check", keys, args)
        at = float(reply[1])
        admission = None
        if limits:
            admission, _ = gcra.decide(limits, [float(t) for t in reply[2:2 + len(limits)]],
                                       at)
        taken: list[Lease | Denied] = []
        at_slot = 2 + len(limits)
        for i, (slot, lease_id) in enumerate(zip(slots, lease_ids, strict=True)):
            granted, active, expiry = reply[at_slot + 3 * i:at_slot + 3 * i + 3]
            expiry_s = float(expiry)
            taken.append(Lease(slot.key, lease_id, expiry_s) if int(granted) else
                         Denied(slot.key, slot.limit, int(active), max(expiry_s - at, 0.0)))
        code, index, spent, reserved, held = reply[at_slot + 3 * len(slots):]
        budget: Reservation | BudgetDenied | None = None
        if int(code) == 0:
            budget = BudgetDenied(charges[int(index) - 1], int(spent), int(reserved))
        elif int(code) > 0:
            budget = Reservation(reservation_id, tuple(charges), float(held))
        return Grant(bool(reply[0]), admission, tuple(taken), budget)

    async def release(self, leases: Sequence[Lease], reservation_id: str | None,
                      actual: Mapping[str, int] | None = None) -> dict[str, int]:
        """Give `leases` back and settle the reservation (if any) at `actual`, naming each
        of its keys. Returns each settled budget's spent units after it (empty when there
        was nothing to settle: already settled, swept, or no reservation)."""
        if reservation_id is not None:
            check_actual(actual or {})
        keys = [self.key("res", reservation_id or ""), self._leases,
                *(self.key("cc", lease.key) for lease in leases)]
        args: list[str | int | float] = [self.key("b", ""), reservation_id or "",
                                         *(lease.lease_id for lease in leases)]
        for key, amount in (actual or {}).items():
            args += [key, amount]
        reply = await self.run(self._release, "a quota release", keys, args)
        return {text(reply[i]): int(reply[i + 1]) for i in range(1, len(reply), 2)}


def _ms(seconds: float) -> int:
    return max(int(seconds * 1000), 1)
