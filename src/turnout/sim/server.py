"""Running simulators on loopback ports, for tests, the demo and `turnout sim`."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from turnout.sim.app import create_simulator_app
from turnout.sim.faults import FaultQueue
from turnout.sim.state import SIMULATOR, RecordedRequest

DIALECT_ORDER = ("openai_chat", "anthropic_messages", "gemini")
"""The dialects `serve_simulators` runs, on consecutive ports in this order."""

DEFAULT_NAMES: dict[str, str] = {
    "openai_chat": "openai-sim",
    "anthropic_messages": "anthropic-sim",
    "gemini": "gemini-sim",
}

_API_ROOT = {"openai_chat": "/v1", "anthropic_messages": "/v1", "gemini": "/v1beta"}


@dataclass(eq=False)
class RunningSimulator:
    """A simulator listening on a port."""

    dialect: str
    name: str
    url: str
    """Server root, e.g. `http://127.0.0.1:PORT`: what the Anthropic and Gemini SDKs take,
    and a `base_url` for Turnout's `anthropic` and `gemini` providers."""
    base_url: str
    """API root with the version path: `{url}/v1` (OpenAI, Anthropic), `{url}/v1beta`
    (Gemini). What the OpenAI SDK and an `openai_compatible` provider take."""
    faults: FaultQueue
    """Add faults in-process: `sim.faults.add(Fault(kind="status", status=429))`."""
    requests: list[RecordedRequest]
    """Every request received so far (when recording is on)."""
    app: web.Application
    _runner: web.AppRunner

    async def close(self) -> None:
        """Stop listening, release hanging requests and close every connection."""
        await self._runner.cleanup()


async def start_simulator(dialect: str, name: str, *, host: str = "127.0.0.1", port: int = 0,
                          **opts: Any) -> RunningSimulator:
    """Start a simulator (`opts` go to `create_simulator_app`); port 0 picks a free port."""
    app = create_simulator_app(dialect, name, **opts)
    # Cancelling handlers when their client goes away ends hangs with the connection.
    runner = web.AppRunner(app, access_log=None, handler_cancellation=True,
                           shutdown_timeout=1.0)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        bound_host, bound_port = runner.addresses[0][:2]
    except BaseException:
        await runner.cleanup()
        raise
    url_host = f"[{bound_host}]" if ":" in bound_host else bound_host
    url = f"http://{url_host}:{bound_port}"
    state = app[SIMULATOR]
    return RunningSimulator(
        dialect=dialect, name=name, url=url, base_url=url + _API_ROOT[dialect],
        faults=state.faults, requests=state.requests, app=app, _runner=runner,
    )


async def serve_simulators(
    host: str,
    base_port: int,
    *,
    names: Mapping[str, str] | Sequence[str] | None = None,
    started: Callable[[list[RunningSimulator]], None] | None = None,
    **opts: Any,
) -> None:
    """Run the OpenAI, Anthropic and Gemini simulators on `base_port`, `+1`, `+2` until
    cancelled, printing one line per simulator with its base URL. `names`: simulator names
    by dialect, or three names in that order. `started` is called once all three listen
    (their fault queues can be filled from it); `opts` go to `create_simulator_app`."""
    if names is None:
        chosen = dict(DEFAULT_NAMES)
    elif isinstance(names, Mapping):
        chosen = {**DEFAULT_NAMES, **names}
    else:
        chosen = dict(zip(DIALECT_ORDER, names, strict=True))
    running: list[RunningSimulator] = []
    try:
        for offset, dialect in enumerate(DIALECT_ORDER):
            sim = await start_simulator(dialect, chosen[dialect], host=host,
                                        port=base_port + offset, **opts)
            running.append(sim)
            print(f"{dialect} simulator {sim.name!r}: {sim.base_url}", flush=True)
        if started is not None:
            started(list(running))
        await asyncio.Event().wait()  # until cancelled
    finally:
        for sim in running:
            await sim.close()
