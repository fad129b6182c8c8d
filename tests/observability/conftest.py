"""Engines over real simulators (config written as YAML, like a user would), a fake clock,
and a scrape helper that parses the exposition text like Prometheus would."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from turnout.config import compile_config, load_config
from turnout.config.runtime import RuntimeConfig
from turnout.core.events import StreamAccumulator, StreamEvent
from turnout.core.parts import TextPart
from turnout.core.request import ChatRequest, Message
from turnout.core.response import ChatResponse
from turnout.engine.context import CallContext
from turnout.engine.engine import Engine
from turnout.engine.observe import Observer
from turnout.resilience.clock import FakeClock
from turnout.sim.server import RunningSimulator, start_simulator

ENV = {"SIM_KEY": "sim-secret"}
A, B = "a/model-a", "b/model-b"
"""Deployment ids of the route `r` targets (`<provider>/<model>`)."""


@pytest.fixture
async def sims() -> AsyncIterator[dict[str, RunningSimulator]]:
    """Two OpenAI-dialect deployments, `a` and `b`."""
    started = {"a": await start_simulator("openai_chat", "a"),
               "b": await start_simulator("openai_chat", "b")}
    yield started
    for sim in started.values():
        await sim.close()


@pytest.fixture
def runtime(sims: dict[str, RunningSimulator], tmp_path: Path) -> RuntimeConfig:
    """Route `r`: `a` first, `b` as the next priority tier; one attempt per target so that
    every failure is a failover (no backoff sleeps)."""
    config = {
        "local": False,
        "providers": {name: {"kind": "openai_compatible", "base_url": sim.base_url,
                             "api_key": {"env": "SIM_KEY"}} for name, sim in sims.items()},
        "routes": {"r": {
            "targets": [{"provider": "a", "model": "model-a", "priority": 0},
                        {"provider": "b", "model": "model-b", "priority": 1}],
            "policy": {"retry": {"max_attempts_per_target": 1}},
        }},
    }
    path = tmp_path / "turnout.yaml"
    path.write_text(yaml.safe_dump(config))
    return compile_config(load_config(path, ENV), ENV)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(1000.0)


async def _no_sleep(_: float) -> None:
    return None


EngineFactory = Callable[..., Awaitable[Engine]]


@pytest.fixture
async def make_engine(runtime: RuntimeConfig, clock: FakeClock) -> AsyncIterator[EngineFactory]:
    """`await make_engine(observer, ...)`: an engine over route `r` with the fake clock."""
    engines: list[Engine] = []

    async def factory(*observers: Observer) -> Engine:
        engine = Engine(runtime, clock=clock, rng=random.Random(7), sleep=_no_sleep,
                        observers=observers)
        engines.append(engine)
        return engine

    yield factory
    for engine in engines:
        await engine.aclose()


def ask(text: str = "ping", model: str = "r") -> ChatRequest:
    return ChatRequest(model=model, messages=[Message("user", [TextPart(text)])])


@dataclass
class Streamed:
    response: ChatResponse
    events: list[StreamEvent] = field(default_factory=list)


async def run_stream(engine: Engine, request: ChatRequest,
                     ctx: CallContext | None = None) -> Streamed:
    """Relay a whole stream; returns the folded response and the events."""
    outcome = await engine.stream(request, ctx or CallContext())
    folded = StreamAccumulator()
    events: list[StreamEvent] = []
    try:
        async for batch in outcome.batches:
            for event in batch:
                events.append(event)
                folded.add(event)
    finally:
        await outcome.batches.aclose()
    return Streamed(folded.result(), events)


Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse_exposition(text: str) -> Samples:
    """Every sample of a Prometheus text exposition, by name and label set."""
    return {(sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples}


def scrape(registry: CollectorRegistry) -> Samples:
    return parse_exposition(generate_latest(registry).decode())


def value(samples: Samples, name: str, labels: Mapping[str, Any] | None = None) -> float | None:
    """The sample `name{labels}` (exact label set), or None when it is absent."""
    key = frozenset((k, str(v)) for k, v in (labels or {}).items())
    return samples.get((name, key))


def names(samples: Samples) -> set[str]:
    return {name for name, _ in samples}
