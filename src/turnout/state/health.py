"""Deployment health shared across replicas: circuit-breaker ejections and the cooldowns
that an upstream's `Retry-After` asks for.

The executor never waits for this: routing reads the local `ResilienceState` only. A
replica *mirrors* its peers instead. When one of its breakers opens or closes, or a 429
sets a cooldown, it hands a `HealthEvent` to its `SharedHealth` (a synchronous call that
only queues it); the shared implementation stores it and tells every other replica,
which applies it to its own local state. The embedded default, `LocalHealth`, shares
nothing and costs nothing.

Events carry *durations*, never clock readings: "ejected for the next 29.7 s", measured
by the sender on its own monotonic clock and turned back into a deadline by each receiver
on its own. Replicas share no monotonic clock and need not agree on the wall-clock time;
the error is the message's transit time (milliseconds, and it errs on the long side).

The wire format (`encode_event` / `decode_event`) is one small JSON object:

    {"v": 1, "r": "<replica id>", "d": "<deployment id>", "k": "open", "s": 29.7, "n": 2}

`k` is `open` (breaker ejected for `s` seconds, `n` ejections counted), `closed` (a probe
succeeded: breaker closed; `s` and `n` are 0) or `cooldown` (no calls for `s` seconds
after a 429). A receiver ignores its own events (`r`), and any it cannot decode.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, Protocol

import orjson

EventKind = Literal["open", "closed", "cooldown"]
Applied = Literal["applied", "unchanged", "unknown"]
"""What mirroring a peer's event did: changed the local state, nothing, or nothing because
it names a deployment this replica's config does not have."""
KINDS: frozenset[str] = frozenset({"open", "closed", "cooldown"})
VERSION = 1
"""The wire format's version; a message of another version is ignored (malformed)."""
MAX_SECONDS = 86_400.0
"""The longest ejection or cooldown a message may ask for: a day. A longer one (a bug, a
hostile publisher) is not applied as it is: it is cut to this."""
MAX_ID_LENGTH = 512


class MalformedEvent(ValueError):
    """A message on the health channel that is not a `HealthEvent` this replica reads."""


@dataclass(frozen=True, slots=True)
class HealthEvent:
    """One change of a deployment's health, as replicas tell each other."""

    kind: EventKind
    deployment: str
    """`Deployment.id`: stable across replicas that load the same config."""
    seconds: float = 0.0
    """How long from now the ejection or cooldown lasts (0 for `closed`)."""
    times_ejected: int = 0
    """For `open`: the ejections counted, so the next ejection's length agrees."""
    replica: str = ""
    """The sending replica's id (its own events come back to it)."""


def encode_event(event: HealthEvent) -> bytes:
    """The event as the JSON message published on the health channel."""
    return orjson.dumps({"v": VERSION, "r": event.replica, "d": event.deployment,
                         "k": event.kind, "s": round(event.seconds, 3),
                         "n": event.times_ejected})


def decode_event(data: bytes | str) -> HealthEvent:
    """A message from the health channel; `MalformedEvent` for anything else (bad JSON,
    another version, a missing or ill-typed field, a negative or non-finite duration).
    A duration over `MAX_SECONDS` is cut to it."""
    try:
        fields = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise MalformedEvent(f"not JSON: {exc}") from None
    if not isinstance(fields, dict):
        raise MalformedEvent("not a JSON object")
    if fields.get("v") != VERSION:
        raise MalformedEvent(f"unknown version {fields.get('v')!r}")
    replica, deployment, kind = fields.get("r"), fields.get("d"), fields.get("k")
    seconds, times = fields.get("s", 0), fields.get("n", 0)
    if not isinstance(replica, str) or not isinstance(deployment, str):
        raise MalformedEvent("`r` and `d` must be strings")
    if not deployment or len(deployment) > MAX_ID_LENGTH or len(replica) > MAX_ID_LENGTH:
        raise MalformedEvent("`d` must be a deployment id")
    if kind not in KINDS:
        raise MalformedEvent(f"unknown kind {kind!r}")
    if isinstance(seconds, bool) or not isinstance(seconds, int | float):
        raise MalformedEvent("`s` must be a number")
    if not math.isfinite(seconds) or seconds < 0:
        raise MalformedEvent("`s` must be a finite number of seconds >= 0")
    if isinstance(times, bool) or not isinstance(times, int) or times < 0:
        raise MalformedEvent("`n` must be a count >= 0")
    return HealthEvent(kind=kind, deployment=deployment,
                       seconds=min(float(seconds), MAX_SECONDS), times_ejected=times,
                       replica=replica)


@dataclass(slots=True)
class HealthStats:
    """What a shared implementation did, for tests, logs and operators."""

    published: int = 0
    """Events stored and published."""
    publish_failures: int = 0
    """Attempts to publish that Redis did not take (the event stays queued)."""
    applied: int = 0
    """Peers' events (and stored entries on resync) that changed the local state."""
    echoes: int = 0
    """Our own events heard back (ignored)."""
    unknown: int = 0
    """Events for a deployment this replica's config does not have (ignored)."""
    malformed: int = 0
    """Messages that are not events (ignored)."""
    resyncs: int = 0
    """Times the stored state was loaded: the first connection and each reconnection."""
    disconnects: int = 0


class HealthSink(Protocol):
    """Where `ResilienceState` reports its own health changes. Every method returns at
    once, never raises and never waits for a server: the call is on the request path."""

    def breaker_opened(self, deployment: str, until: float, times_ejected: int) -> None:
        """A local breaker opened until `until` (the engine's monotonic clock)."""
        ...

    def breaker_closed(self, deployment: str) -> None:
        """A local breaker closed (a probe succeeded)."""
        ...

    def cooled_down(self, deployment: str, until: float) -> None:
        """A 429 set a cooldown until `until` (monotonic)."""
        ...


class SharedHealth(HealthSink, Protocol):
    """A `HealthSink` that shares with other replicas, with a lifecycle the engine owns."""

    @property
    def connected(self) -> bool:
        """Whether peers' changes are reaching this replica now (always True when there
        are no peers to hear from)."""
        ...

    @property
    def status(self) -> str:
        """For readiness: `ready`, `connecting`, or `degraded: <why>` (still serving)."""
        ...

    stats: HealthStats

    async def start(self) -> None:
        """Start the background work (idempotent)."""
        ...

    def resync(self) -> None:
        """Load the stored state again soon (after a config reload, say)."""
        ...

    async def aclose(self) -> None:
        """Stop the background work. Events not yet published are dropped."""
        ...


class LocalHealth:
    """The embedded default: nothing to share, nothing to do."""

    __slots__ = ("stats",)

    def __init__(self) -> None:
        self.stats = HealthStats()

    @property
    def connected(self) -> bool:
        return True

    @property
    def status(self) -> str:
        return "ready"

    def breaker_opened(self, deployment: str, until: float, times_ejected: int) -> None:
        return None

    def breaker_closed(self, deployment: str) -> None:
        return None

    def cooled_down(self, deployment: str, until: float) -> None:
        return None

    async def start(self) -> None:
        return None

    def resync(self) -> None:
        return None

    async def aclose(self) -> None:
        return None
