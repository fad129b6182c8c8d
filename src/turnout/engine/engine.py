"""The engine: the library core that both `turnout.Client` and the HTTP gateway drive."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncGenerator, Callable

from turnout.config.runtime import (
    RuntimeConfig,
    retired_local_servers,
    start_local_servers,
    stop_local_servers,
)
from turnout.core.errors import TurnoutError
from turnout.core.events import StreamEvent
from turnout.core.request import ChatRequest
from turnout.engine.context import CallContext
from turnout.engine.executor import Executor, FailoverHook
from turnout.engine.outcome import ChatOutcome, StreamOutcome
from turnout.engine.plan import Candidate, build_plan, resolve
from turnout.engine.state import ResilienceState
from turnout.engine.streaming import PeekedStream, peek, relay
from turnout.engine.upstream import AttemptTimeouts, UpstreamCaller
from turnout.resilience.clock import Clock, RandomSource, SystemClock
from turnout.transport.http import HttpTransport


class Engine:
    """Routes canonical requests to deployments and survives their failures.

    Holds the compiled config (swapped atomically by `swap`), the shared HTTP transport and
    the resilience state (breakers, budgets, health), which outlives config swaps so a
    reload does not forget which deployments are down.
    """

    def __init__(
        self,
        runtime: RuntimeConfig,
        *,
        transport: HttpTransport | None = None,
        clock: Clock | None = None,
        rng: RandomSource | None = None,
        sleep: Callable[[float], object] | None = None,
        on_failover: FailoverHook | None = None,
    ) -> None:
        self._runtime = runtime
        self._transport = transport or HttpTransport()
        self._caller = UpstreamCaller(self._transport)
        self.state = ResilienceState(clock or SystemClock(), rng or random.Random(),
                                     sleep or asyncio.sleep)
        self._executor = Executor(self.state, on_failover)

    @property
    def runtime(self) -> RuntimeConfig:
        return self._runtime

    async def swap(self, runtime: RuntimeConfig) -> None:
        """Replace the compiled config atomically; requests in flight finish on the old one.
        Local models the new config no longer uses are stopped."""
        old, self._runtime = self._runtime, runtime
        await stop_local_servers(retired_local_servers(old, runtime))

    def aliases(self) -> list[str]:
        return sorted(self._runtime.routes)

    async def start(self) -> None:
        """Start what the config wants started eagerly (local models with `start: startup`)."""
        await start_local_servers(self._runtime)

    async def aclose(self) -> None:
        await self._transport.close()
        await stop_local_servers(self._runtime.local_servers.values())

    def readiness(self) -> dict[str, str]:
        """Status of every component whose readiness can vary (local models)."""
        return {f"local:{name}": server.status
                for name, server in self._runtime.local_servers.items()}

    def plan(self, request: ChatRequest) -> list[Candidate]:
        runtime = self._runtime
        route = resolve(runtime.routes, request.model)
        return build_plan(runtime.routes, route, self.state.order)

    async def chat(self, request: ChatRequest, ctx: CallContext | None = None) -> ChatOutcome:
        """A complete answer, failing over as the route's policy allows."""
        ctx = ctx or CallContext()
        request.stream = False
        plan = self.plan(request)
        clock = self.state.clock

        async def attempt(candidate: Candidate, timeouts: AttemptTimeouts) -> ChatOutcome:
            await self._ensure_local(candidate)
            started = clock.monotonic()
            response, headers = await self._caller.complete(candidate.deployment, request,
                                                            timeouts)
            self.state.on_success(candidate.deployment, headers, clock.monotonic() - started)
            return ChatOutcome(candidate.deployment, response)

        success = await self._executor.run(plan, request, ctx, attempt)
        return success.value

    async def stream(self, request: ChatRequest, ctx: CallContext | None = None) -> StreamOutcome:
        """A stream whose first content has arrived: failures before it fail over invisibly."""
        ctx = ctx or CallContext()
        request.stream = True
        plan = self.plan(request)
        clock = self.state.clock

        async def attempt(candidate: Candidate, timeouts: AttemptTimeouts) -> PeekedStream:
            await self._ensure_local(candidate)
            upstream = await self._caller.open_stream(candidate.deployment, request, timeouts)
            peeked = await peek(upstream, clock.monotonic)
            self.state.on_first_token(candidate.deployment, peeked.ttft_s, upstream.headers)
            return peeked

        success = await self._executor.run(plan, request, ctx, attempt)
        deployment = success.candidate.deployment

        def done(stream: PeekedStream, error: TurnoutError | None) -> None:
            self.state.on_stream_end(stream.upstream.deployment, error,
                                     clock.monotonic() - stream.started)

        async def continue_on(follow: ChatRequest, error: TurnoutError) -> PeekedStream | None:
            try:
                more = await self._executor.run(plan, follow, ctx, attempt,
                                                start=success.plan_index + 1)
            except TurnoutError:
                return None
            return more.value

        continuation = continue_on if success.candidate.route.policy.stream_continuation else None
        events: AsyncGenerator[StreamEvent, None] = relay(
            success.value, request, on_done=done, continue_on=continuation)
        return StreamOutcome(deployment, events)

    async def _ensure_local(self, candidate: Candidate) -> None:
        server = self._runtime.local_servers.get(candidate.deployment.provider)
        if server is not None and not server.ready:
            await server.ensure_started()
