"""The engine: the library core that both `turnout.Client` and the HTTP gateway drive."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncGenerator, Callable, Sequence

from turnout.config.runtime import (
    RuntimeConfig,
    retired_local_servers,
    start_local_servers,
    stop_local_servers,
)
from turnout.core.errors import ClientClosed, TurnoutError
from turnout.core.events import StreamEvent, UsageUpdate
from turnout.core.request import ChatRequest
from turnout.core.response import Usage
from turnout.engine.context import CallContext
from turnout.engine.executor import AttemptFn, Executor, FailoverHook
from turnout.engine.observe import Observer, Observers, RequestEvent
from turnout.engine.outcome import ChatOutcome, StreamOutcome
from turnout.engine.plan import Candidate, build_plan, resolve
from turnout.engine.requirements import output_cap
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
        observers: Sequence[Observer] = (),
    ) -> None:
        self._runtime = runtime
        self._transport = transport or HttpTransport()
        self._caller = UpstreamCaller(self._transport)
        self.state = ResilienceState(clock or SystemClock(), rng or random.Random(),
                                     sleep or asyncio.sleep)
        self.observers = Observers(observers)
        self._executor = Executor(self.state, on_failover, self.observers)

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
        clock = self.state.clock
        started = clock.monotonic()

        async def attempt(candidate: Candidate, timeouts: AttemptTimeouts) -> ChatOutcome:
            await self._ensure_local(candidate)
            started = clock.monotonic()
            response, headers = await self._caller.complete(candidate.deployment, request,
                                                            timeouts)
            self.state.on_success(candidate.deployment, headers, clock.monotonic() - started)
            return ChatOutcome(candidate.deployment, response)

        try:
            success = await self._executor.run(self.plan(request), request, ctx, attempt)
        except TurnoutError as error:
            if self.observers:
                self._request_event(ctx, request, started, error=error)
            raise
        ctx.max_tokens_capped = output_cap(request, success.candidate.deployment)
        if self.observers:
            self._request_event(ctx, request, started, outcome=success.value,
                                usage=success.value.response.usage)
        return success.value

    async def stream(self, request: ChatRequest, ctx: CallContext | None = None) -> StreamOutcome:
        """A stream whose first content has arrived: failures before it fail over invisibly."""
        ctx = ctx or CallContext()
        request.stream = True
        clock = self.state.clock
        started = clock.monotonic()

        def attempt_for(req: ChatRequest) -> AttemptFn[PeekedStream]:
            async def attempt(candidate: Candidate, timeouts: AttemptTimeouts) -> PeekedStream:
                await self._ensure_local(candidate)
                upstream = await self._caller.open_stream(candidate.deployment, req, timeouts)
                peeked = await peek(upstream, clock.monotonic)
                self.state.on_first_token(candidate.deployment, peeked.ttft_s,
                                          upstream.headers)
                return peeked
            return attempt

        attempt = attempt_for(request)

        try:
            plan = self.plan(request)
            success = await self._executor.run(plan, request, ctx, attempt,
                                               dispose=self._dispose_stream)
        except TurnoutError as error:
            if self.observers:
                self._request_event(ctx, request, started, error=error)
            raise
        deployment = success.candidate.deployment
        ctx.max_tokens_capped = output_cap(request, deployment)

        def done(stream: PeekedStream, error: TurnoutError | None) -> None:
            self.state.on_stream_end(stream.upstream.deployment, error,
                                     clock.monotonic() - stream.started)

        async def continue_on(follow: ChatRequest, error: TurnoutError) -> PeekedStream | None:
            try:
                more = await self._executor.run(plan, follow, ctx, attempt_for(follow),
                                                start=success.plan_index + 1,
                                                dispose=self._dispose_stream)
            except TurnoutError:
                return None
            return more.value

        continuation = continue_on if success.candidate.route.policy.stream_continuation else None
        batches: AsyncGenerator[list[StreamEvent], None] = relay(
            success.value, request, on_done=done, continue_on=continuation)
        if self.observers:
            batches = self._observed(batches, ctx, request, started, success.value.ttft_s,
                                     StreamOutcome(deployment, batches))
        return StreamOutcome(deployment, batches)

    async def _observed(
        self, batches: AsyncGenerator[list[StreamEvent], None], ctx: CallContext,
        request: ChatRequest, started: float, ttft_s: float, outcome: StreamOutcome,
    ) -> AsyncGenerator[list[StreamEvent], None]:
        """Relay `batches`, then report the request (only when someone observes)."""
        usage = Usage()
        error: TurnoutError | None = ClientClosed("client closed the stream")
        try:
            async for batch in batches:
                for event in batch:
                    if isinstance(event, UsageUpdate):
                        usage.merge(event.usage)
                yield batch
            error = None
        except TurnoutError as exc:
            error = exc
            raise
        finally:
            await batches.aclose()
            self._request_event(ctx, request, started, outcome=outcome, error=error,
                                usage=usage, ttft_s=ttft_s)

    def _request_event(
        self, ctx: CallContext, request: ChatRequest, started: float, *,
        outcome: ChatOutcome | StreamOutcome | None = None, error: TurnoutError | None = None,
        usage: Usage | None = None, ttft_s: float | None = None,
    ) -> None:
        self.observers.request(RequestEvent(
            request_id=ctx.request_id, route=request.model, principal=ctx.principal,
            stream=request.stream, status=error.status if error else 200,
            latency_s=self.state.clock.monotonic() - started,
            attempts=sum(1 for a in ctx.attempts if a.outcome != "skipped"),
            deployment=outcome.deployment.id if outcome else None,
            error_code=error.code if error else None, ttft_s=ttft_s, usage=usage))

    def _dispose_stream(self, stream: PeekedStream) -> None:
        """A hedge that answered but lost the race: drop its connection."""
        stream.upstream.close()
        self.state.on_stream_end(stream.upstream.deployment, ClientClosed("hedge lost"), 0.0)

    async def _ensure_local(self, candidate: Candidate) -> None:
        server = self._runtime.local_servers.get(candidate.deployment.provider)
        if server is not None and not server.ready:
            await server.ensure_started()
