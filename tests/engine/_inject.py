"""Fault injection *inside* the gateway, at each step of an attempt, for accounting tests.

The simulators fail the upstream; this fails our own code: building the request, sending
it, reading the body, decoding it, reading a stream before and after its first content.
A step can raise any exception, or hold (wait until the test cancels the call, or lets it
go on). Deployments are named by their simulator (`a`, `c`, ...).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any, Literal

import pytest

from turnout.core.events import Finish, PartStart, StreamEvent, TextDelta
from turnout.core.request import ChatRequest
from turnout.core.response import ChatResponse
from turnout.dialects.base import Dialect, HttpRequest, UpstreamTarget
from turnout.engine import upstream
from turnout.engine.upstream import UpstreamStream
from turnout.sim.server import RunningSimulator
from turnout.transport.http import HttpTransport

Step = Literal["build", "send", "read", "decode", "peek", "relay"]
HOLD = "hold"
"""Instead of an exception: the step waits until the call is cancelled."""

CHAT_STEPS: tuple[Step, ...] = ("build", "send", "read", "decode")
STREAM_STEPS: tuple[Step, ...] = ("build", "send", "peek", "relay")
SYNC_STEPS = frozenset({"build", "decode"})
"""Steps that cannot wait (plain functions): a cancellation there is raised instead."""

_CONTENT = (PartStart, TextDelta, Finish)


class Injector:
    """Which step of which deployment fails, and how; gates that hold a deployment's
    attempts just before sending until the test opens them."""

    def __init__(self, sims: Mapping[str, RunningSimulator]) -> None:
        self._urls = {sim.base_url: name for name, sim in sims.items()}
        self.failures: dict[tuple[str, Step], Callable[[], BaseException] | str] = {}
        self.gates: dict[str, asyncio.Event] = {}
        self.started: dict[str, asyncio.Event] = {n: asyncio.Event() for n in sims}
        """Set when an attempt on that deployment begins (its request is built)."""
        self.waiting: dict[str, asyncio.Event] = {n: asyncio.Event() for n in sims}
        """Set when an attempt waits at its gate."""
        self.fired = asyncio.Event()

    def fail(self, sim: str, step: Step, how: Callable[[], BaseException] | str) -> None:
        self.failures[(sim, step)] = how

    def gate(self, sim: str) -> asyncio.Event:
        self.gates[sim] = asyncio.Event()
        return self.gates[sim]

    def sim_of(self, url: str) -> str:
        base = url.rstrip("/")
        for prefix, name in self._urls.items():
            prefix = prefix.rstrip("/")
            if base == prefix or base.startswith(prefix + "/"):
                return name
        raise LookupError(url)

    def now(self, sim: str, step: Step) -> None:
        """A synchronous step: raise if told to (a cancellation is raised, not awaited)."""
        how = self.failures.get((sim, step))
        if how is None:
            return
        self.fired.set()
        if isinstance(how, str):
            raise asyncio.CancelledError()
        raise how()

    async def at(self, sim: str, step: Step) -> None:
        """An asynchronous step: wait at the gate (before sending), then fail or hold."""
        gate = self.gates.get(sim)
        if step == "send" and gate is not None:
            self.waiting[sim].set()
            await gate.wait()
        how = self.failures.get((sim, step))
        if how is None:
            return
        self.fired.set()
        if isinstance(how, str):
            await asyncio.Event().wait()  # held until cancelled
        else:
            raise how()


class InjectingTransport(HttpTransport):
    """The real transport, with the `send` step injected."""

    def __init__(self, injector: Injector) -> None:
        super().__init__()
        self.injector = injector

    async def send(self, request: HttpRequest, *,
                   connect_timeout_s: float | None = None) -> Any:
        await self.injector.at(self.injector.sim_of(request.url), "send")
        return await super().send(request, connect_timeout_s=connect_timeout_s)


class _InjectingDialect:
    """A dialect whose build and decode steps are injected. Each dialect serves a single
    simulator in these tests, so the one it last built a request for is the one it
    decodes for."""

    def __init__(self, inner: Dialect, injector: Injector) -> None:
        self._inner = inner
        self._injector = injector
        self._sim = ""

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def build_request(self, request: ChatRequest, target: UpstreamTarget) -> HttpRequest:
        self._sim = self._injector.sim_of(target.base_url)
        self._injector.started[self._sim].set()
        self._injector.now(self._sim, "build")
        return self._inner.build_request(request, target)

    def decode_response(self, body: bytes) -> ChatResponse:
        self._injector.now(self._sim, "decode")
        return self._inner.decode_response(body)


def install(monkeypatch: pytest.MonkeyPatch, injector: Injector) -> None:
    """Inject the steps the transport does not see: the dialect's build and decode, the
    body read, and the stream reads before (`peek`) and after (`relay`) the first content.
    """
    real_dialect, real_read, real_batches = (
        upstream.get_dialect, upstream.read_body, UpstreamStream.batches)

    def get_dialect(name: str) -> Any:
        return _InjectingDialect(real_dialect(name), injector)

    async def read_body(response: Any) -> bytes:
        await injector.at(injector.sim_of(str(response.url)), "read")
        return await real_read(response)

    def batches(self: UpstreamStream) -> AsyncIterator[list[StreamEvent]]:
        sim = self.deployment.id.split("/")[0]

        async def injected() -> AsyncIterator[list[StreamEvent]]:
            inner = real_batches(self)
            content = False
            try:
                while True:
                    await injector.at(sim, "relay" if content else "peek")
                    try:
                        batch = await anext(inner)
                    except StopAsyncIteration:
                        return
                    content = content or any(isinstance(e, _CONTENT) for e in batch)
                    yield batch
            finally:
                await inner.aclose()  # type: ignore[attr-defined]

        return injected()

    monkeypatch.setattr(upstream, "get_dialect", get_dialect)
    monkeypatch.setattr(upstream, "read_body", read_body)
    monkeypatch.setattr(UpstreamStream, "batches", batches)
