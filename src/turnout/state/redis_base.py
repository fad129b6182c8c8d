"""What the Redis stores share: key naming, time, error translation, a client factory.

Every operation of a Redis store is ONE round trip: a Lua script, registered once with
`register_script` (EVALSHA, and the script text again only when the server answers
NOSCRIPT), that reads and writes atomically on the server. Python never reads a counter to
write it back, so any number of replicas may share the same keys.

Time: by default each script reads the Redis server's own clock (`TIME`), so every replica
measures rate limits and leases on one clock and clock skew between replicas cannot grant
extra capacity. A store given a `Clock` passes its time in as an argument instead, and so
does an explicit `now`; that is for tests (deterministic, no sleeping) and for setups whose
replicas truly share a clock. Redis key TTLs always run on the server's clock, which only
bounds memory: a TTL never ends a key that still holds something.

Keys: `{prefix}:<kind>:<key>`. The braces are a Redis Cluster hash tag: every key of one
store lives in one slot, so one script may touch a call's several budgets, its reservation
record and the lease index together. A cluster then gives a store availability, not write
scaling; one primary runs far more of these scripts per second than a gateway fleet needs.
"""

from __future__ import annotations

from collections.abc import Awaitable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.commands.core import AsyncScript
from redis.exceptions import RedisClusterException, RedisError, ResponseError

from turnout.resilience.clock import Clock
from turnout.state.errors import StateUnavailable

T = TypeVar("T")

SCRIPT_ERROR = "TURNOUT"
"""Prefix of errors the scripts raise themselves (bad arguments), as opposed to Redis's."""

LUA_NOW = """
local now = tonumber(ARGV[1])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) + tonumber(t[2]) / 1000000
end
local function fmt(x) return string.format('%.17g', x) end
"""
"""The scripts' prologue: `now` from ARGV[1], or the server's clock when it is empty, and
`fmt` for doubles. Every double crosses the script boundary as a '%.17g' string: Redis
truncates a Lua number in a reply to an integer, and Lua's tostring keeps 14 digits."""

TTL_SLACK_MS = 5_000
"""Extra life of rate-limit keys past the moment they hold nothing. With the server's clock
it only delays freeing memory; with an injected clock (tests) it keeps a key alive while the
test's fake time lags behind the server's real time between two steps."""


class RedisStore:
    """Base of the Redis stores: the client, the key prefix and the time argument."""

    __slots__ = ("_clock", "_prefix", "client")

    def __init__(self, client: Redis, *, prefix: str = "turnout",
                 clock: Clock | None = None) -> None:
        if not prefix or any(c in prefix for c in "{}"):
            raise ValueError("the key prefix must be non-empty and without braces")
        self.client = client
        """The connection pool; the store never closes it (its owner does)."""
        self._prefix = f"{{{prefix}}}:"
        self._clock = clock

    def key(self, kind: str, name: str) -> str:
        """The Redis key of one of this store's objects."""
        return f"{self._prefix}{kind}:{name}"

    def now_arg(self, now: float | None) -> str:
        """The script's time argument; empty means "read the server's clock"."""
        if now is None and self._clock is not None:
            now = self._clock.monotonic()
        return "" if now is None else repr(float(now))

    async def run(self, script: AsyncScript, what: str, keys: Sequence[str],
                  args: Sequence[str | int | float]) -> Any:
        """Run a script; every failure of the server or the connection is `StateUnavailable`."""
        with translate_errors(what):
            return await script(keys=list(keys), args=list(args))

    async def run_command(self, what: str, command: Awaitable[T]) -> T:
        """Await one plain command, translating errors as `run` does."""
        with translate_errors(what):
            return await command


@contextmanager
def translate_errors(what: str) -> Iterator[None]:
    """Redis's and the connection's errors as `StateUnavailable`; a script's own argument
    check as `ValueError`."""
    try:
        yield
    except ResponseError as exc:
        message = str(exc)
        if message.startswith(SCRIPT_ERROR):
            raise ValueError(message.removeprefix(SCRIPT_ERROR).strip()) from None
        raise StateUnavailable(f"shared state: Redis refused {what}: {message}") from exc
    except (TimeoutError, RedisError, RedisClusterException, OSError) as exc:
        raise StateUnavailable(
            f"shared state: Redis unreachable during {what}: {type(exc).__name__}: {exc}"
        ) from exc


def redis_client(url: str, *, timeout_s: float = 0.5, retries: int = 1) -> Redis:
    """A client for the stores: short timeouts and one quick retry, because a call on the
    request path must not wait redis-py's default (5 s timeouts, 10 retries with backoff)
    before the stage can fall back or fail closed. Retrying a script is safe: reserving
    and entering are idempotent per id, and a rate-limit retry can only over-count."""
    return Redis.from_url(url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s,
                          retry=Retry(NoBackoff(), retries))


def text(value: bytes | str) -> str:
    """A reply string, whether or not the client decodes responses."""
    return value.decode() if isinstance(value, bytes) else value
