"""Deployment health shared through Redis: a stored copy, and a channel to hear changes.

Storage: one hash, `{prefix}:health:deployments`, with a field per ejected or cooling-down
deployment, `b:<deployment id>` (breaker) or `c:<deployment id>` (cooldown), whose value is
`"<until, ms on the Redis server's clock> <ejections counted>"`. Each write is one Lua
script (one round trip, atomic, no read-modify-write from Python): it keeps the later of
the stored and the new deadline, drops entries already over, sets the key's expiry just
past the latest deadline (an idle fleet leaves nothing behind), and PUBLISHes the event on
the channel `{prefix}:health` in the same step.

Time: the sender turns its local deadline into seconds remaining; the script anchors them
to the *server's* clock (`TIME`) for storage; a replica that loads the hash reads `TIME`
in the same script and turns each entry back into seconds remaining. So no replica's wall
clock is ever compared with another's: skew between replicas changes nothing, and only
the Redis server's clock (one clock) is used for stored deadlines.

Hearing: a background task subscribes to the channel and applies peers' events as they
come. After every (re)subscription, including the silent reconnections redis-py makes on
its own, it loads the hash, so a replica that started later, or lost Redis for a while,
catches up on what it missed. While Redis is away the task retries with capped, jittered
exponential backoff, `connected` is False, and routing goes on with per-process state.

Telling: `breaker_opened`, `breaker_closed` and `cooled_down` only put the change in a
queue with one slot per (deployment, breaker | cooldown), newest wins, and wake a
background task that runs the scripts. The queue is bounded by the number of
deployments, a storm of 429s is coalesced, and a request never waits for Redis. Changes
made while Redis was away are sent when it returns (ejections and cooldowns still
running, merged by the script), except closings: the state loaded from Redis on return
supersedes them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import random
import re
import socket
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.exceptions import RedisError

from turnout.resilience.clock import Clock, RandomSource
from turnout.state.errors import StateUnavailable
from turnout.state.health import (
    Applied,
    EventKind,
    HealthEvent,
    HealthStats,
    MalformedEvent,
    decode_event,
    encode_event,
)
from turnout.state.redis_base import RedisStore

_log = logging.getLogger("turnout.state")

ApplyFn = Callable[[HealthEvent], Applied]

EXPIRY_SLACK_MS = 1_000
"""The hash outlives its latest deadline by this much (it only bounds memory)."""

_WRITE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local key, field = KEYS[1], ARGV[2]
if ARGV[3] == 'del' then
  redis.call('HDEL', key, field)
else
  local deadline = now + tonumber(ARGV[4])
  local times = tonumber(ARGV[5])
  local old = redis.call('HGET', key, field)
  if old then
    local old_until, old_times = string.match(old, '^(%d+) (%d+)$')
    old_until, old_times = tonumber(old_until) or 0, tonumber(old_times) or 0
    if old_until > deadline then deadline = old_until end
    if old_times > times then times = old_times end
  end
  redis.call('HSET', key, field, string.format('%d %d', deadline, times))
end
local entries = redis.call('HGETALL', key)
local latest = 0
for i = 1, #entries, 2 do
  local deadline = tonumber(string.match(entries[i + 1], '^(%d+)')) or 0
  if deadline <= now then
    redis.call('HDEL', key, entries[i])
  elseif deadline > latest then
    latest = deadline
  end
end
if latest > 0 then redis.call('PEXPIREAT', key, latest + tonumber(ARGV[7])) end
return redis.call('PUBLISH', ARGV[1], ARGV[6])
"""
"""KEYS: the hash. ARGV: channel, field, `set` or `del`, ms remaining, ejections counted,
the message to publish, expiry slack (ms). Returns the subscribers that got it."""

_LOAD = """
local t = redis.call('TIME')
return {t[1], t[2], redis.call('HGETALL', KEYS[1])}
"""
"""The server's time (seconds, microseconds) and every stored entry."""

_FIELD_KIND: dict[str, EventKind] = {"b": "open", "c": "cooldown"}
_STORED = re.compile(r"([0-9]{1,18}) ([0-9]{1,9})")
"""A stored value: deadline (ms, server clock) and ejections counted."""


@dataclass(frozen=True, slots=True)
class _Change:
    """A local change waiting to be published."""

    kind: EventKind
    until: float
    """Monotonic deadline (0 for `closed`)."""
    times_ejected: int = 0


def replica_id() -> str:
    """A fresh id for one engine: host and pid for whoever reads it, and random bits
    because several engines may share a process."""
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


class RedisSharedHealth(RedisStore):
    """`SharedHealth` over Redis (see the module's docstring for the protocol)."""

    __slots__ = ("_apply", "_backoff", "_channel", "_connected", "_down_logged", "_hash",
                 "_load", "_monotonic", "_pending", "_ping_s", "_poll_s", "_pubsub", "_ready",
                 "_reason", "_resync_wanted", "_resynced", "_rng", "_tasks", "_wake",
                 "_warned", "_write", "replica", "stats")

    def __init__(self, client: Redis, apply: ApplyFn, *, prefix: str = "turnout",
                 clock: Clock, rng: RandomSource | None = None, replica: str | None = None,
                 backoff: tuple[float, float] = (0.05, 5.0), ping_s: float = 5.0,
                 poll_s: float = 1.0) -> None:
        super().__init__(client, prefix=prefix)
        self._monotonic = clock.monotonic
        self._apply = apply
        self._rng: RandomSource = rng or random.Random()
        self.replica = replica or replica_id()
        """Our id in the events we publish, to recognise them when they come back."""
        self.stats = HealthStats()
        self._hash = self.key("health", "deployments")
        self._channel = f"{self._prefix}health"
        self._write = client.register_script(_WRITE)
        self._load = client.register_script(_LOAD)
        self._backoff = backoff
        """First and longest wait between two connection attempts."""
        self._ping_s = ping_s
        """A quiet subscription PINGs this often; three periods without an answer count
        as a lost connection (a peer that vanished without closing the socket)."""
        self._poll_s = poll_s
        self._pending: dict[tuple[str, str], _Change] = {}
        self._wake = asyncio.Event()
        self._ready = asyncio.Event()
        """Set while subscribed and resynchronised: the publisher may send."""
        self._connected = False
        self._reason = "connecting"
        self._warned: set[str] = set()
        """Kinds of ignored message already logged (each is logged once)."""
        self._down_logged = False
        """A loss was logged as a warning; the next resync is logged as the return."""
        self._resync_wanted = False
        self._resynced = False
        """The current subscription got as far as a resync (the backoff starts over)."""
        self._tasks: list[asyncio.Task[None]] = []
        self._pubsub: PubSub | None = None
        """The current subscription (its connection is held out of the pool)."""

    # -- state ---------------------------------------------------------------------------
    @property
    def connected(self) -> bool:
        return self._connected

    @property
    def status(self) -> str:
        if self._connected:
            return "ready"
        return self._reason

    @property
    def channel(self) -> str:
        return self._channel

    @property
    def hash_key(self) -> str:
        return self._hash

    # -- lifecycle -----------------------------------------------------------------------
    async def start(self) -> None:
        if self._tasks:
            return
        self._tasks = [asyncio.create_task(self._subscribe_loop(), name="health-subscriber"),
                       asyncio.create_task(self._publish_loop(), name="health-publisher")]

    def resync(self) -> None:
        self._resync_wanted = True

    async def aclose(self) -> None:
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._connected = False
        self._ready.clear()
        self._reason = "stopped"

    # -- telling (request path: never waits) --------------------------------------------
    def breaker_opened(self, deployment: str, until: float, times_ejected: int) -> None:
        self._queue(("b", deployment), _Change("open", until, times_ejected))

    def breaker_closed(self, deployment: str) -> None:
        self._queue(("b", deployment), _Change("closed", 0.0))

    def cooled_down(self, deployment: str, until: float) -> None:
        self._queue(("c", deployment), _Change("cooldown", until))

    def _queue(self, slot: tuple[str, str], change: _Change) -> None:
        self._pending[slot] = change
        self._wake.set()

    async def _publish_loop(self) -> None:
        failures = 0
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._pending:
                await self._ready.wait()
                slot = next(iter(self._pending))
                change = self._pending.pop(slot)
                try:
                    await self._publish(slot, change)
                    failures = 0
                except StateUnavailable as exc:
                    self.stats.publish_failures += 1
                    self._pending.setdefault(slot, change)  # unless a newer one came
                    _log.debug("shared health: publishing failed: %s", exc)
                    # Usually the subscriber notices the loss too, and `_ready` holds the
                    # next try; if only publishing fails, back off like reconnecting.
                    await asyncio.sleep(self._backoff_s(failures))
                    failures += 1
                except Exception:  # a bug: drop the change, keep the loop
                    self.stats.publish_failures += 1
                    _log.exception("shared health: could not publish %s for %s",
                                   change.kind, slot[1])

    async def _publish(self, slot: tuple[str, str], change: _Change) -> None:
        letter, deployment = slot
        seconds = 0.0
        if change.kind != "closed":
            seconds = change.until - self._monotonic()
            if seconds <= 0:
                return  # over while it waited: nothing to tell
        event = HealthEvent(change.kind, deployment, seconds, change.times_ejected,
                            self.replica)
        await self.run(self._write, "publishing deployment health", [self._hash], [
            self._channel, f"{letter}:{deployment}",
            "del" if change.kind == "closed" else "set", math.ceil(seconds * 1000),
            change.times_ejected, encode_event(event).decode(), EXPIRY_SLACK_MS])
        self.stats.published += 1

    # -- hearing -------------------------------------------------------------------------
    async def _subscribe_loop(self) -> None:
        attempt = 0
        while True:
            pubsub = self._pubsub = self.client.pubsub()
            try:
                await pubsub.subscribe(self._channel)
                await self._listen(pubsub)
            except (RedisError, OSError, TimeoutError, StateUnavailable) as exc:
                self._lost(exc)
            except Exception as exc:  # a bug: log it, and start over like after a loss
                _log.exception("shared health: the subscription failed")
                self._lost(exc)
            finally:
                with contextlib.suppress(RedisError, OSError, TimeoutError):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]
            if self._resynced:
                self._resynced, attempt = False, 0
            await asyncio.sleep(self._backoff_s(attempt))
            attempt += 1

    def _backoff_s(self, attempt: int) -> float:
        """The wait before retry `attempt` (from 0): doubling, capped, half jittered."""
        first, longest = self._backoff
        wait = min(longest, first * 2.0 ** min(attempt, 30))
        return wait * (0.5 + 0.5 * self._rng.random())

    async def _listen(self, pubsub: PubSub) -> None:
        loop = asyncio.get_running_loop()
        last_heard = next_ping = loop.time()
        while True:
            if self._resync_wanted and self._connected:
                await self._resync()
            message = await pubsub.get_message(timeout=self._poll_s)
            now = loop.time()
            if message is None:
                if now - last_heard > 3 * self._ping_s:
                    raise TimeoutError("no answer from Redis to PING on the subscription")
                if now >= next_ping:
                    await pubsub.ping()
                    next_ping = now + self._ping_s
                continue
            last_heard = now
            kind = message.get("type")
            if kind == "subscribe":  # a first subscription, or redis-py's reconnection
                await self._resync()
            elif kind == "message":
                self._hear(message.get("data", b""))

    def _hear(self, data: Any) -> None:
        try:
            event = decode_event(data)
        except MalformedEvent as exc:
            self.stats.malformed += 1
            self._warn_once("malformed", "shared health: ignoring a message on %s that is "
                            "not a health event (%s); further ones are only counted",
                            self._channel, exc)
            return
        if event.replica == self.replica:
            self.stats.echoes += 1
            return
        self._applied(event)

    def _applied(self, event: HealthEvent) -> None:
        try:
            result = self._apply(event)
        except Exception:  # a bug applying one event must not end the subscription
            self.stats.malformed += 1
            if "apply" not in self._warned:
                self._warned.add("apply")
                _log.exception("shared health: could not apply %s (further failures "
                               "are only counted)", event)
            return
        if result == "applied":
            self.stats.applied += 1
        elif result == "unknown":
            self.stats.unknown += 1
            self._warn_once("unknown", "shared health: ignoring events for deployment %r, "
                            "which this replica's config does not have (further unknown "
                            "ids are only counted)", event.deployment)

    async def _resync(self) -> None:
        """Load the stored state and apply it; then we are connected."""
        self._resync_wanted = False
        reply = await self.run(self._load, "loading deployment health", [self._hash], [])
        server_ms = int(reply[0]) * 1000 + int(reply[1]) // 1000
        entries = reply[2]
        loaded = 0
        for i in range(0, len(entries) - 1, 2):
            event = self._stored_event(_decoded(entries[i]), _decoded(entries[i + 1]),
                                       server_ms)
            if event is not None:
                loaded += 1
                self._applied(event)
        # Closings queued while away are superseded by what was just loaded.
        for slot in [s for s, c in self._pending.items() if c.kind == "closed"]:
            del self._pending[slot]
        self.stats.resyncs += 1
        self._resynced = True
        if self._down_logged:
            _log.info("shared health: Redis is back; resynchronised %d ejections and "
                      "cooldowns from it", loaded)
        elif self.stats.resyncs == 1:
            _log.info("shared health: sharing breakers and cooldowns through Redis as "
                      "replica %s (%d loaded)", self.replica, loaded)
        self._down_logged = False
        self._connected = True
        self._ready.set()

    def _stored_event(self, field: str, value: str, server_ms: int) -> HealthEvent | None:
        kind = _FIELD_KIND.get(field[:1])
        found = _STORED.fullmatch(value)
        if kind is None or field[1:2] != ":" or len(field) < 3 or found is None:
            self.stats.malformed += 1
            self._warn_once("stored", "shared health: ignoring stored entry %r=%r", field,
                            value)
            return None
        seconds = (int(found[1]) - server_ms) / 1000
        if seconds <= 0:
            return None
        return HealthEvent(kind, field[2:], seconds, int(found[2]))

    def _lost(self, exc: BaseException) -> None:
        self._ready.clear()
        was_connected, self._connected = self._connected, False
        self._reason = (f"degraded: Redis unreachable ({type(exc).__name__}); breakers "
                        "and cooldowns are per-process until it returns")
        if was_connected:
            self.stats.disconnects += 1
        if not self._down_logged:
            self._down_logged = True
            _log.warning("shared health: Redis unreachable (%s); breakers and cooldowns "
                         "are per-process until it is back, retrying", exc)
        else:
            _log.debug("shared health: Redis still unreachable: %s", exc)

    def _warn_once(self, what: str, message: str, *args: object) -> None:
        if what not in self._warned:
            self._warned.add(what)
            _log.warning(message, *args)


def _decoded(value: bytes | str) -> str:
    """A stored string; bytes that are not UTF-8 become replacement characters (and the
    entry is then refused as malformed, rather than ending the subscription)."""
    return value.decode(errors="replace") if isinstance(value, bytes) else value
