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
from turnout.core.errors import ClientClosed, InternalError, TurnoutError
from turnout.core.events import UsageUpdate, response_to_events
from turnout.core.request import ChatRequest
from turnout.core.response import Usage
from turnout.engine.context import CallContext
from turnout.engine.executor import AttemptFn, Executor, FailoverHook
from turnout.engine.observe import Observer, Observers, RequestEvent
from turnout.engine.outcome import Batch, ChatOutcome, StartedBatches, StreamOutcome
from turnout.engine.peers import PeerMirror, shared_health
from turnout.engine.pipeline import Call, CallEnd, Pipeline, Stage
from turnout.engine.plan import Candidate, build_plan, resolve
from turnout.engine.requirements import output_cap
from turnout.engine.state import ResilienceState
from turnout.engine.streaming import PeekedStream, peek, relay
from turnout.engine.upstream import AttemptTimeouts, UpstreamCaller
from turnout.providers.types import Deployment
from turnout.resilience.clock import Clock, RandomSource, SystemClock
from turnout.stages.resources import StageResources
from turnout.state.health import SharedHealth
from turnout.transport.http import HttpTransport


class Engine:
    """Routes canonical requests to deployments and survives their failures.

    Holds the compiled config (swapped atomically by `swap`), the pipeline of stages built
    from it, the shared HTTP transport and the resilience state (breakers, budgets,
    health), which outlives config swaps so a reload does not forget which deployments
    are down. `stages` are added after the ones the config asks for (see
    `turnout.stages.config_stages`), in the gateway and in-process alike.
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
        stages: Sequence[Stage] = (),
    ) -> None:
        self._runtime = runtime
        self._extra_stages = tuple(stages)
        clock = clock or SystemClock()
        self.resources = StageResources(clock.monotonic)
        """Stores the stages share (tenants, keys), kept across config swaps."""
        self._pipeline = self._build_pipeline(runtime)
        self._transport = transport or HttpTransport()
        self._caller = UpstreamCaller(self._transport)
        self.state = ResilienceState(clock, rng or random.Random(),
                                     sleep or asyncio.sleep)
        self._mirror = PeerMirror(self.state, lambda: self._runtime)
        self.shared_health: SharedHealth = shared_health(runtime, self.state, self.resources,
                                                         self._mirror)
        """Breakers and cooldowns shared with other replicas (`state.redis`), or nothing
        (`LocalHealth`). Started by `start` or the first call, stopped by `aclose`."""
        self._health_started = False
        """`start` (or a first call) asked for the shared health's background work."""
        self._health_pending = self.state.peers is not None
        """There is shared health, not started yet (the one per-call check it costs)."""
        self.observers = Observers(observers)
        self._executor = Executor(self.state, on_failover, self.observers)

    @property
    def runtime(self) -> RuntimeConfig:
        return self._runtime

    async def swap(self, runtime: RuntimeConfig) -> None:
        """Replace the compiled config atomically; requests in flight finish on the old one.
        Local models the new config no longer uses are stopped. A new `state.redis` URL or
        prefix moves the shared health there (local state is kept, the new store's is
        loaded); the same one is loaded again, for the deployments the new config adds."""
        pipeline = self._build_pipeline(runtime)
        old, self._runtime, self._pipeline = self._runtime, runtime, pipeline
        if (old.state.redis_url, old.state.prefix) != (runtime.state.redis_url,
                                                       runtime.state.prefix):
            retired = self.shared_health
            self.shared_health = shared_health(runtime, self.state, self.resources,
                                               self._mirror)
            await retired.aclose()
            if self._health_started:
                await self.shared_health.start()
            self._health_pending = self.state.peers is not None and not self._health_started
        else:
            self.shared_health.resync()
        await stop_local_servers(retired_local_servers(old, runtime))

    def _build_pipeline(self, runtime: RuntimeConfig) -> Pipeline:
        from turnout.stages import config_stages

        return Pipeline([*config_stages(runtime, self.resources), *self._extra_stages])

    def aliases(self) -> list[str]:
        return sorted(self._runtime.routes)

    async def start(self) -> None:
        """Start what the config wants started eagerly (local models with `start: startup`,
        the shared health's subscription, the spend ledger's writer and its replay of dead
        processes' journals)."""
        await self._start_health()
        await self.resources.start()
        await start_local_servers(self._runtime)

    async def _start_health(self) -> None:
        self._health_started, self._health_pending = True, False
        await self.shared_health.start()

    async def aclose(self) -> None:
        await self.shared_health.aclose()
        await self._transport.close()
        await self.resources.aclose()
        await stop_local_servers(self._runtime.local_servers.values())

    def readiness(self) -> dict[str, str]:
        """Status of every component whose readiness can vary (local models, and with
        `state.redis` the shared health: `degraded: ...` while Redis is away, which leaves
        the gateway ready, since it keeps serving with per-process health; with tenancy the
        spend ledger, degraded while its database fails: records wait in the journal)."""
        components = {f"local:{name}": server.status
                      for name, server in self._runtime.local_servers.items()}
        if self._runtime.state.redis_url is not None:
            components["shared:health"] = self.shared_health.status
        shared = [s for s in self.resources.all_shared_stores() if s.shared]
        if shared:
            components["shared_state"] = ("degraded: Redis unreachable, limits per process"
                                          if any(s.degraded for s in shared) else "ready")
        for writer in self.resources.all_spend_ledgers():
            components["spend_ledger"] = (
                f"degraded: database unreachable, {writer.pending + writer.spilled} spend "
                "records wait in the journal" if writer.degraded else "ready")
        return components

    def plan(self, request: ChatRequest) -> list[Candidate]:
        runtime = self._runtime
        route = resolve(runtime.routes, request.model)
        return build_plan(runtime.routes, route, self.state.order)

    @property
    def pipeline(self) -> Pipeline:
        """The stages every call runs through (rebuilt by `swap`)."""
        return self._pipeline

    async def authenticate(self, ctx: CallContext) -> None:
        """Run the pipeline's authenticate hooks on `ctx` alone, before a request body is
        read (the gateway does; `chat`/`stream` do it themselves otherwise)."""
        await self._pipeline.authenticate(ctx)

    async def chat(self, request: ChatRequest, ctx: CallContext | None = None) -> ChatOutcome:
        """A complete answer, failing over as the route's policy allows."""
        ctx = ctx or CallContext()
        request.stream = False
        pipeline = self._pipeline
        call = Call(request, ctx)
        started = self.state.clock.monotonic()
        outcome: ChatOutcome | None = None
        error: TurnoutError | None = None
        try:
            outcome = await self._chat(call, pipeline)
            return outcome
        except BaseException as exc:
            error = _end_error(exc)
            raise
        finally:
            if pipeline.end or self.observers:
                usage = outcome.response.usage if outcome is not None else Usage()
                await self._ended(call, pipeline, started, outcome, error, usage, None)

    async def _chat(self, call: Call, pipeline: Pipeline) -> ChatOutcome:
        answer = await pipeline.before(call) if pipeline else None
        if answer is None:
            await self._route(call, pipeline)
            success = await self._executor.run(call.plan, call.request, call.ctx,
                                               self._chat_attempt(call, pipeline))
            answer = success.value
            call.ctx.max_tokens_capped = output_cap(call.request, success.candidate.deployment)
        if pipeline.response:
            answer = await pipeline.respond(call, answer)
        return answer

    def _chat_attempt(self, call: Call, pipeline: Pipeline) -> AttemptFn[ChatOutcome]:
        clock = self.state.clock
        request = call.request

        async def attempt(candidate: Candidate, timeouts: AttemptTimeouts) -> ChatOutcome:
            if pipeline.attempt:
                candidate = await pipeline.before_attempt(call, candidate)
            await self._ensure_local(candidate)
            started = clock.monotonic()
            response, headers = await self._caller.complete(candidate.deployment, request,
                                                            timeouts, call.ctx.request_id)
            self.state.on_success(candidate.deployment, headers, clock.monotonic() - started)
            return ChatOutcome(candidate.deployment, response)
        return attempt

    async def stream(self, request: ChatRequest, ctx: CallContext | None = None) -> StreamOutcome:
        """A stream whose first content has arrived: failures before it fail over invisibly."""
        ctx = ctx or CallContext()
        request.stream = True
        pipeline = self._pipeline
        call = Call(request, ctx)
        started = self.state.clock.monotonic()
        try:
            deployment, batches, ttft_s = await self._open_stream(call, pipeline)
        except BaseException as exc:
            if pipeline.end or self.observers:
                await self._ended(call, pipeline, started, None, _end_error(exc),
                                  Usage(), None)
            raise
        if pipeline.has_exit or self.observers:
            batches = self._tracked(batches, call, pipeline, started, ttft_s, deployment)
        return StreamOutcome(deployment, await StartedBatches.start(batches))

    async def _open_stream(
        self, call: Call, pipeline: Pipeline,
    ) -> tuple[Deployment, AsyncGenerator[Batch, None], float | None]:
        """The serving deployment, its batches (peeked events first) and its TTFT."""
        answer = await pipeline.before(call) if pipeline else None
        if answer is not None:
            if pipeline.response:
                answer = await pipeline.respond(call, answer)
            return answer.deployment, _replay(answer), None
        await self._route(call, pipeline)
        request, ctx, plan = call.request, call.ctx, call.plan
        clock = self.state.clock

        def attempt_for(req: ChatRequest) -> AttemptFn[PeekedStream]:
            async def attempt(candidate: Candidate, timeouts: AttemptTimeouts) -> PeekedStream:
                if pipeline.attempt:
                    candidate = await pipeline.before_attempt(call, candidate)
                await self._ensure_local(candidate)
                upstream = await self._caller.open_stream(candidate.deployment, req, timeouts,
                                                          ctx.request_id)
                try:
                    peeked = await peek(upstream, clock.monotonic)
                    self.state.on_first_token(candidate.deployment, peeked.ttft_s,
                                              upstream.headers)
                except BaseException:
                    upstream.close()  # whatever failed, never leave the connection open
                    raise
                return peeked
            return attempt

        success = await self._executor.run(plan, request, ctx, attempt_for(request),
                                           dispose=self._dispose_stream)
        ctx.max_tokens_capped = output_cap(request, success.candidate.deployment)

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
        batches = relay(success.value, request, on_done=done, continue_on=continuation)
        return success.value.upstream.deployment, batches, success.value.ttft_s

    async def _route(self, call: Call, pipeline: Pipeline) -> None:
        """The ordered candidates of `call`, narrowed by the pipeline's `on_plan` stages."""
        if self._health_pending:  # an engine used without `start`: share from now on
            await self._start_health()
        call.plan = self.plan(call.request)
        if pipeline.plan:
            await pipeline.planned(call)

    async def _tracked(
        self, batches: AsyncGenerator[Batch, None], call: Call, pipeline: Pipeline,
        started: float, ttft_s: float | None, deployment: Deployment,
    ) -> AsyncGenerator[Batch, None]:
        """Relay `batches` through the pipeline's `on_batch` stages, then end the call
        (`on_end`, the request event), however the stream ended."""
        usage = Usage()
        error: TurnoutError | None = ClientClosed("client closed the stream")
        try:
            async for batch in batches:
                for event in batch:
                    if isinstance(event, UsageUpdate):
                        usage.merge(event.usage)
                if pipeline.batch:
                    batch = await pipeline.on_batch(call, batch)
                    if not batch:
                        continue
                yield batch
            error = None
        except BaseException as exc:
            if not isinstance(exc, GeneratorExit):
                error = _end_error(exc)
            raise
        finally:
            await batches.aclose()
            await self._ended(call, pipeline, started, deployment, error, usage, ttft_s)

    async def _ended(
        self, call: Call, pipeline: Pipeline, started: float,
        served: ChatOutcome | Deployment | None, error: TurnoutError | None, usage: Usage,
        ttft_s: float | None,
    ) -> None:
        """The call is over: the pipeline's `on_end` hooks, then the request event."""
        deployment = served.deployment if isinstance(served, ChatOutcome) else served
        if isinstance(error, ClientClosed) and call.ctx.abort is not None:
            error = call.ctx.abort  # cut on purpose (a shutdown's deadline), not by the client
        latency = self.state.clock.monotonic() - started
        if pipeline.end:
            response = served.response if isinstance(served, ChatOutcome) else None
            await pipeline.finish(call, CallEnd(deployment, usage, error, latency, response))
        if self.observers:
            ctx, request = call.ctx, call.request
            self.observers.request(RequestEvent(
                request_id=ctx.request_id, route=request.model, principal=ctx.principal,
                stream=request.stream, status=error.status if error else 200,
                latency_s=latency,
                attempts=sum(1 for a in ctx.attempts if a.outcome != "skipped"),
                deployment=deployment.id if deployment else None,
                error_code=error.code if error else None, ttft_s=ttft_s,
                usage=usage if deployment is not None else None))

    def _dispose_stream(self, stream: PeekedStream) -> None:
        """A hedge that answered but lost the race: drop its connection."""
        stream.upstream.close()
        self.state.on_stream_end(stream.upstream.deployment, ClientClosed("hedge lost"), 0.0)

    async def _ensure_local(self, candidate: Candidate) -> None:
        server = self._runtime.local_servers.get(candidate.deployment.provider)
        if server is not None and not server.ready:
            await server.ensure_started()


def _end_error(exc: BaseException) -> TurnoutError:
    """What `on_end` hears for a call that raised: its typed error; `ClientClosed` when the
    caller was cancelled (an HTTP client that went away); an internal error for a bug."""
    if isinstance(exc, TurnoutError):
        return exc
    if isinstance(exc, asyncio.CancelledError | GeneratorExit):
        return ClientClosed("the client went away")
    return InternalError("internal error in the gateway")


async def _replay(outcome: ChatOutcome) -> AsyncGenerator[Batch, None]:
    """A complete answer (e.g. from a cache) as a stream of one batch."""
    yield response_to_events(outcome.response)
