"""`turnout.Client`: the whole engine in-process, no server needed."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from turnout.config.runtime import RuntimeConfig
from turnout.core.events import StreamEvent
from turnout.core.request import ChatRequest, Message, ToolDefinition
from turnout.core.response import ChatResponse
from turnout.dialects.registry import get_dialect
from turnout.engine.context import CallContext
from turnout.engine.engine import Engine
from turnout.engine.executor import FailoverHook
from turnout.engine.pipeline import Stage

ConfigSource = str | Path | RuntimeConfig | None


class Client:
    """Async client over the engine, taking the same config as the gateway.

    ```python
    async with turnout.Client("turnout.yaml") as client:
        answer = await client.chat(model="fast", messages=[{"role": "user", "content": "Hi"}])
        print(answer.text())
        async for event in client.stream(model="fast", messages=[...]):
            ...
    ```
    Messages and tools may be canonical objects (`Message`, `ToolDefinition`) or OpenAI-style
    dicts. `on_failover(error, next_candidate)` is called each time a request moves on.

    Calls run through the same pipeline of stages as the gateway's. `api_key` makes every
    call present that key, as an HTTP client would (to act for a tenant); without it the
    caller is the configuration's owner. `stages` are added after the config's own.
    """

    def __init__(self, config: ConfigSource = None, *, environ: Mapping[str, str] | None = None,
                 on_failover: FailoverHook | None = None, engine: Engine | None = None,
                 api_key: str | None = None, stages: Sequence[Stage] = ()) -> None:
        self._engine = engine or Engine(_runtime(config, environ), on_failover=on_failover,
                                        stages=stages)
        self._api_key = api_key

    @property
    def engine(self) -> Engine:
        return self._engine

    async def chat(self, *, model: str, messages: Sequence[Message | Mapping[str, Any]],
                   context: CallContext | None = None, **options: Any) -> ChatResponse:
        """A complete answer. `context` (optional) receives the attempt log."""
        request = build_request(model, messages, stream=False, **options)
        outcome = await self._engine.chat(request, self._context(context))
        return outcome.response

    async def stream(self, *, model: str, messages: Sequence[Message | Mapping[str, Any]],
                     context: CallContext | None = None, **options: Any
                     ) -> AsyncIterator[StreamEvent]:
        """Canonical stream events; fold them with `StreamAccumulator` for a response."""
        request = build_request(model, messages, stream=True, **options)
        outcome = await self._engine.stream(request, self._context(context))
        events = outcome.events()
        try:
            async for event in events:
                yield event
        finally:
            await events.aclose()

    def _context(self, context: CallContext | None) -> CallContext:
        ctx = context or CallContext()
        if ctx.credential is None:
            ctx.credential = self._api_key
        return ctx

    async def aclose(self) -> None:
        await self._engine.aclose()

    async def __aenter__(self) -> Client:
        await self._engine.start()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.aclose()


def build_request(model: str, messages: Sequence[Message | Mapping[str, Any]], *,
                  stream: bool, **options: Any) -> ChatRequest:
    """A canonical request from canonical objects, or from OpenAI-style dicts (validated by
    the OpenAI dialect exactly as the gateway would)."""
    tools = options.get("tools") or []
    if all(isinstance(m, Message) for m in messages) and all(
            isinstance(t, ToolDefinition) for t in tools):
        request = ChatRequest(model=model, messages=list(messages),  # type: ignore[arg-type]
                              **options)
    else:
        body = {"model": model, "messages": list(messages), **options}
        request = get_dialect("openai_chat").decode_request(body)
    request.stream = stream
    return request


def _runtime(config: ConfigSource, environ: Mapping[str, str] | None) -> RuntimeConfig:
    if isinstance(config, RuntimeConfig):
        return config
    from turnout.config import compile_config, load_config

    env = os.environ if environ is None else environ
    return compile_config(load_config(config, env), env)
