"""The gateway test harness: a gateway on a free loopback port in front of the three
provider simulators, with the official OpenAI and Anthropic SDKs as clients.

Routes: `oa` (OpenAI-compatible simulator), `an` (Anthropic simulator), `gm` (Gemini
simulator), one target each. `make_gateway(**overrides)` builds another gateway over the
same simulators with config sections replaced (gateway keys, body limits, policies).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any

import aiohttp
import anthropic
import openai
from aiohttp import web

from turnout.config import compile_config, validate_config
from turnout.config.runtime import RuntimeConfig
from turnout.engine.engine import Engine
from turnout.engine.observe import AttemptEvent, FailoverEvent, RequestEvent
from turnout.gateway.app import ENGINE, create_gateway
from turnout.sim.server import RunningSimulator

UPSTREAMS = ("openai_chat", "anthropic_messages", "gemini")
"""Upstream dialects, in the order the matrix runs them."""

ROUTE = {"openai_chat": "oa", "anthropic_messages": "an", "gemini": "gm"}
"""The route alias that reaches each simulator."""

PROVIDER = {"openai_chat": "sim-openai", "anthropic_messages": "sim-anthropic",
            "gemini": "sim-gemini"}
"""Provider names in the gateway config."""

MODEL = {"openai_chat": "gpt-4o-mini", "anthropic_messages": "claude-haiku-4-5",
         "gemini": "gemini-2.5-flash"}
"""The upstream model each route asks its simulator for."""

SIM_NAME = {"openai_chat": "openai-sim", "anthropic_messages": "anthropic-sim",
            "gemini": "gemini-sim"}

_KIND = {"openai_chat": "openai_compatible", "anthropic_messages": "anthropic",
         "gemini": "gemini"}
UPSTREAM_KEY = "sim-upstream-key"
"""The key every simulator demands, so the gateway's credentials are checked too."""

SINGLE_SHOT: dict[str, Any] = {"fallback_on": [], "retry": {"max_attempts_per_target": 1}}
"""A route policy under which an upstream error reaches the client unchanged."""


class SleepProbe:
    """A simulator's sleep that records when a wait was cancelled (its client went away).
    Waits for real, so a `slow_chunks` stream stays open until the connection drops; the
    first `instant` waits return at once (so that some text is out before the hold)."""

    def __init__(self) -> None:
        self.cancelled = asyncio.Event()
        self.instant = 0

    async def __call__(self, seconds: float) -> None:
        if self.instant > 0:
            self.instant -= 1
            return
        try:
            await asyncio.sleep(seconds)
        except asyncio.CancelledError:
            self.cancelled.set()
            raise


@dataclass(eq=False)
class Gateway:
    """A running gateway and clients for it."""

    url: str
    app: web.Application
    runtime: RuntimeConfig
    http: aiohttp.ClientSession
    openai: openai.AsyncOpenAI
    anthropic: anthropic.AsyncAnthropic
    client_key: str = "client-key"

    @property
    def engine(self) -> Engine:
        return self.app[ENGINE]


def base_config(sims: Mapping[str, RunningSimulator]) -> dict[str, Any]:
    """The gateway configuration over `sims`, as data (what YAML would parse to)."""
    providers = {
        PROVIDER[d]: {"kind": _KIND[d], "base_url": sims[d].base_url,
                      "api_key": {"env": "SIM_KEY"}}
        for d in UPSTREAMS}
    routes = {ROUTE[d]: {"targets": [{"provider": PROVIDER[d], "model": MODEL[d]}]}
              for d in UPSTREAMS}
    return {"local": False, "providers": providers, "routes": routes}


def compile_data(data: Mapping[str, Any], env: Mapping[str, str] | None = None
                 ) -> RuntimeConfig:
    """Validate and compile config data; `env` adds environment variables (secrets)."""
    return compile_config(validate_config(data), {"SIM_KEY": UPSTREAM_KEY, **(env or {})})


async def serve(runtime: RuntimeConfig, stack: AsyncExitStack, *,
                client_key: str = "client-key", engine: Engine | None = None) -> Gateway:
    """Run a gateway for `runtime` (on `engine`, if given) on a free port until `stack`
    closes."""
    app = create_gateway(runtime, engine=engine)
    runner = web.AppRunner(app, handler_cancellation=True, access_log=None)
    await runner.setup()
    stack.push_async_callback(runner.cleanup)
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    url = f"http://127.0.0.1:{port}"
    http = await stack.enter_async_context(aiohttp.ClientSession())
    oai = openai.AsyncOpenAI(base_url=f"{url}/v1", api_key=client_key, max_retries=0)
    stack.push_async_callback(oai.close)
    ant = anthropic.AsyncAnthropic(base_url=url, api_key=client_key, max_retries=0)
    stack.push_async_callback(ant.close)
    return Gateway(url=url, app=app, runtime=runtime, http=http, openai=oai, anthropic=ant,
                   client_key=client_key)


class RequestRecorder:
    """An engine observer keeping every request event: `RequestRecorder.on(gateway)`."""

    def __init__(self) -> None:
        self.requests: list[RequestEvent] = []

    @classmethod
    def on(cls, gw: Gateway) -> RequestRecorder:
        recorder = cls()
        gw.engine.observers.add(recorder)
        return recorder

    def on_attempt(self, event: AttemptEvent) -> None:
        pass

    def on_failover(self, event: FailoverEvent) -> None:
        pass

    def on_request(self, event: RequestEvent) -> None:
        self.requests.append(event)


MakeGateway = Callable[..., Awaitable[Gateway]]
"""The `make_gateway` fixture's type."""
