"""Engines over real simulators, with config written as YAML like a user would."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from turnout.config import compile_config, load_config
from turnout.core.events import StreamAccumulator
from turnout.core.parts import TextPart
from turnout.core.request import ChatRequest, Message
from turnout.core.response import ChatResponse
from turnout.engine.context import CallContext
from turnout.engine.engine import Engine
from turnout.sim.server import RunningSimulator, start_simulator

ENV = {"SIM_KEY": "sim-secret"}


@pytest.fixture
async def sims() -> AsyncIterator[dict[str, RunningSimulator]]:
    """Three deployments: `a` and `b` speak OpenAI, `c` speaks Anthropic."""
    started = {
        "a": await start_simulator("openai_chat", "a"),
        "b": await start_simulator("openai_chat", "b"),
        "c": await start_simulator("anthropic_messages", "c"),
    }
    yield started
    for sim in started.values():
        await sim.close()


EngineFactory = Callable[..., Awaitable[Engine]]


@pytest.fixture
async def make_engine(
    sims: dict[str, RunningSimulator], tmp_path: Path
) -> AsyncIterator[EngineFactory]:
    """`await make_engine(targets=["a", "b"], policy={...}, **engine_kwargs)`: a route
    `r` over the named simulators in order (priority = position unless `balanced`)."""
    engines: list[Engine] = []

    async def factory(targets: list[str], policy: dict[str, Any] | None = None, *,
                      balanced: bool = False, extra_routes: dict[str, Any] | None = None,
                      fallbacks: list[str] | None = None,
                      models: dict[str, Any] | None = None, **kwargs: Any) -> Engine:
        providers = {
            name: {"kind": "anthropic" if sim.dialect == "anthropic_messages"
                   else "openai_compatible",
                   "base_url": sim.base_url, "api_key": {"env": "SIM_KEY"}}
            for name, sim in sims.items()
        }
        route: dict[str, Any] = {"targets": [
            {"provider": t, "model": f"model-{t}", "priority": 0 if balanced else i}
            for i, t in enumerate(targets)]}
        if policy:
            route["policy"] = policy
        if fallbacks:
            route["fallbacks"] = fallbacks
        config: dict[str, Any] = {"local": False, "providers": providers,
                                  "routes": {"r": route, **(extra_routes or {})}}
        if models:
            config["models"] = models
        path = tmp_path / f"turnout-{len(engines)}.yaml"
        path.write_text(yaml.safe_dump(config))
        engine = Engine(compile_config(load_config(path, ENV), ENV), **kwargs)
        engines.append(engine)
        return engine

    yield factory
    for engine in engines:
        await engine.aclose()


@pytest.fixture
def sleeps() -> list[float]:
    """The backoff waits the engine asked for (recorded, never slept)."""
    return []


def record_sleep(sleeps: list[float]) -> Callable[[float], Awaitable[None]]:
    async def fake_sleep(seconds: float) -> None:
        sleeps.append(seconds)

    return fake_sleep


def ask(text: str = "ping", model: str = "r", **kwargs: Any) -> ChatRequest:
    return ChatRequest(model=model, messages=[Message("user", [TextPart(text)])], **kwargs)


async def call(engine: Engine, stream: bool, request: ChatRequest | None = None,
               ctx: CallContext | None = None) -> tuple[ChatResponse, str, CallContext]:
    """One call, stream or not; returns the folded response, the serving deployment id and
    the context (attempt log)."""
    request = request or ask()
    ctx = ctx or CallContext()
    if not stream:
        outcome = await engine.chat(request, ctx)
        return outcome.response, outcome.deployment.id, ctx
    streamed = await engine.stream(request, ctx)
    folded = StreamAccumulator()
    events = streamed.events()
    try:
        async for event in events:
            folded.add(event)
    finally:
        await events.aclose()
    return folded.result(), streamed.deployment.id, ctx


def answer_of(sim: str, text: str = "ping") -> str:
    return f"Hello from {sim} (model-{sim}). You said: {text}"
