"""The request pipeline: an ordered list of stages around the executor, the one seam where
authentication, admission, budgets, caching, redaction, routing policy and tool-call
governance plug in.

A stage subclasses `Stage` and overrides only the hooks it needs. `Pipeline` collects, per
hook, the stages that override it, so a hook no stage uses is an empty tuple and costs one
truthiness check per request; a configuration without stages runs the engine as before.

The hooks, in the order a call meets them:

- `authenticate(ctx)`: before the request body is even decoded (the gateway calls it on
  the headers alone); sets `ctx.principal` or raises `AuthenticationFailed`.
- `on_request(call)`: before routing. May raise a typed error (rate limit, budget,
  policy), rewrite `call.request` (PII redaction), or answer at once by returning a
  `ChatOutcome` (a cache hit; a stream request gets it replayed as a stream).
- `on_plan(call)`: the ordered candidates are in `call.plan`; a stage may narrow or
  reorder them (privacy, tenant restrictions, capability routing) or raise, and may
  reserve against the final plan (a budget needs the candidates' prices).
- `on_attempt(call, candidate)`: right before each upstream attempt (retries, fallbacks
  and hedges included); returns the candidate to use, e.g. with a tenant's own
  credentials (bring your own key).
- `on_response(call, outcome)`: a complete non-stream answer; may rewrite it.
- `on_batch(call, batch)`: each batch of stream events on its way to the client; returns
  the events to send (tool-call governance holds back tool-call parts, never text).
- `on_end(call, end)`: exactly once per call, however it ended: success, a typed error, or
  the client going away mid-stream (`end.error` is then `ClientClosed`). It runs for every
  stage, however far the call got: a stage keeps what it did in `call.state[self]` and
  settles only that (a budget releases only a reservation it made).

Stages run in list order on the way in and in reverse order on the way out
(`on_response`, `on_batch`, `on_end`), like nested middleware.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from turnout.core.errors import TurnoutError
from turnout.core.events import StreamEvent
from turnout.core.request import ChatRequest
from turnout.core.response import ChatResponse, Usage
from turnout.engine.context import CallContext
from turnout.engine.outcome import ChatOutcome
from turnout.engine.plan import Candidate
from turnout.providers.types import Deployment

_log = logging.getLogger("turnout.pipeline")

Batch = list[StreamEvent]


@dataclass(slots=True)
class Call:
    """One request on its way through the pipeline."""

    request: ChatRequest
    ctx: CallContext
    plan: list[Candidate] = field(default_factory=list)
    """The ordered candidates, set by routing before `on_plan`."""
    state: dict[object, Any] = field(default_factory=dict)
    """Per-call state of each stage, keyed by the stage itself."""


@dataclass(frozen=True, slots=True)
class CallEnd:
    """How a call ended, as `on_end` sees it."""

    deployment: Deployment | None
    """The deployment that answered (None when no attempt succeeded)."""
    usage: Usage
    """Usage as reported by the provider (for a stream: what arrived before it ended)."""
    error: TurnoutError | None
    """None on success; `ClientClosed` when the client left a stream before its end."""
    latency_s: float
    response: ChatResponse | None = None
    """The complete answer of a non-stream call (None for a stream, or no answer)."""


class Stage:
    """Base class of pipeline stages: override the hooks the stage needs (see the module
    docstring); the ones left alone are never called."""

    name: str = "stage"

    async def authenticate(self, ctx: CallContext) -> None:
        """Check `ctx.credential`; set `ctx.principal` or raise."""

    async def on_request(self, call: Call) -> ChatOutcome | None:
        """Before routing: raise, rewrite `call.request`, or answer (return an outcome)."""
        return None

    async def on_plan(self, call: Call) -> None:
        """After routing: narrow or reorder `call.plan`, reserve, or raise."""

    async def on_attempt(self, call: Call, candidate: Candidate) -> Candidate:
        """Before each upstream attempt: the candidate to call."""
        return candidate

    async def on_response(self, call: Call, outcome: ChatOutcome) -> ChatOutcome:
        """A complete answer on its way to the client."""
        return outcome

    async def on_batch(self, call: Call, batch: Batch) -> Batch:
        """Stream events on their way to the client."""
        return batch

    async def on_end(self, call: Call, end: CallEnd) -> None:
        """Once per call, however it ended. Must not raise (errors are logged)."""


class Pipeline:
    """The stages of one configuration, indexed by the hooks they override. Immutable."""

    __slots__ = (
        "attempt",
        "authenticators",
        "batch",
        "end",
        "has_exit",
        "plan",
        "request",
        "response",
        "stages",
    )

    def __init__(self, stages: Sequence[Stage] = ()) -> None:
        self.stages: tuple[Stage, ...] = tuple(stages)

        def using(hook: str) -> tuple[Stage, ...]:
            base = getattr(Stage, hook)
            return tuple(s for s in self.stages if getattr(type(s), hook) is not base)

        self.authenticators = using("authenticate")
        self.request = using("on_request")
        self.plan = using("on_plan")
        self.attempt = using("on_attempt")
        # The way out runs innermost first.
        self.response = using("on_response")[::-1]
        self.batch = using("on_batch")[::-1]
        self.end = using("on_end")[::-1]
        self.has_exit = bool(self.batch or self.end)
        """Whether a stream needs wrapping for `on_batch` or `on_end`."""

    def __bool__(self) -> bool:
        return bool(self.stages)

    async def authenticate(self, ctx: CallContext) -> None:
        for stage in self.authenticators:
            await stage.authenticate(ctx)
        ctx.authenticated = True

    async def before(self, call: Call) -> ChatOutcome | None:
        """`authenticate` (unless the caller already did) and `on_request`."""
        if not call.ctx.authenticated:
            await self.authenticate(call.ctx)
        for stage in self.request:
            answer = await stage.on_request(call)
            if answer is not None:
                return answer
        return None

    async def planned(self, call: Call) -> None:
        for stage in self.plan:
            await stage.on_plan(call)

    async def before_attempt(self, call: Call, candidate: Candidate) -> Candidate:
        for stage in self.attempt:
            candidate = await stage.on_attempt(call, candidate)
        return candidate

    async def respond(self, call: Call, outcome: ChatOutcome) -> ChatOutcome:
        for stage in self.response:
            outcome = await stage.on_response(call, outcome)
        return outcome

    async def on_batch(self, call: Call, batch: Batch) -> Batch:
        for stage in self.batch:
            batch = await stage.on_batch(call, batch)
        return batch

    async def finish(self, call: Call, end: CallEnd) -> None:
        """Every stage's `on_end`; a failing one is logged and does not stop the others."""
        for stage in self.end:
            try:
                await stage.on_end(call, end)
            except Exception:
                _log.exception("pipeline stage %s failed at the end of request %s",
                               stage.name, call.ctx.request_id)

