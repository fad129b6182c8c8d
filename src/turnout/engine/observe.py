"""Typed events the engine emits for logs, metrics, traces and audit. Control flow never
depends on them: observers only consume."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from turnout.core.errors import AttemptKind
from turnout.core.response import Usage


@dataclass(frozen=True, slots=True)
class AttemptEvent:
    """One upstream attempt ended."""

    request_id: str
    route: str
    deployment: str
    provider: str
    kind: AttemptKind
    outcome: Literal["ok", "error", "cancelled"]
    latency_s: float
    error_code: str | None = None
    reason: str | None = None
    """The error's failover class (`rate_limited`, `timeout`, ...), if any."""
    stream: bool = False


@dataclass(frozen=True, slots=True)
class FailoverEvent:
    """A request moved on from one deployment to the next."""

    request_id: str
    route: str
    from_deployment: str
    to_deployment: str
    reason: str


@dataclass(frozen=True, slots=True)
class RequestEvent:
    """A client request ended (for a stream: when its last event was relayed)."""

    request_id: str
    route: str
    principal: str | None
    stream: bool
    status: int
    latency_s: float
    attempts: int
    deployment: str | None = None
    error_code: str | None = None
    ttft_s: float | None = None
    usage: Usage | None = None


class Observer(Protocol):
    """Receives engine events. Must be fast and must not raise."""

    def on_attempt(self, event: AttemptEvent) -> None: ...

    def on_failover(self, event: FailoverEvent) -> None: ...

    def on_request(self, event: RequestEvent) -> None: ...


class Observers:
    """Fan-out to every observer; with none registered, emitting costs one branch."""

    __slots__ = ("_all",)

    def __init__(self, observers: Sequence[Observer] = ()) -> None:
        self._all: tuple[Observer, ...] = tuple(observers)

    def __bool__(self) -> bool:
        return bool(self._all)

    def add(self, observer: Observer) -> None:
        self._all = (*self._all, observer)

    def attempt(self, event: AttemptEvent) -> None:
        for observer in self._all:
            observer.on_attempt(event)

    def failover(self, event: FailoverEvent) -> None:
        for observer in self._all:
            observer.on_failover(event)

    def request(self, event: RequestEvent) -> None:
        for observer in self._all:
            observer.on_request(event)
