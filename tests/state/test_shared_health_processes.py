"""Two real `turnout serve` processes sharing one Redis, in front of the same simulators:
a `Retry-After` cooldown and a circuit breaker that one gateway learns are honoured by
the other, which then never calls that deployment (the simulator's request log says so),
and each reports the shared health in `/readyz`."""

from __future__ import annotations

import asyncio
import os
import re
import socket
import sys
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from _state_redis import REDIS_URL

from turnout.sim import Fault
from turnout.sim.server import RunningSimulator, start_simulator

SRC = Path(__file__).resolve().parents[2] / "src"
SIM_KEY = "sim-upstream-key"
_WAIT_S = 30.0
POLICY: dict[str, Any] = {
    "breaker": {"consecutive_failures": 2, "failure_rate_threshold": None,
                "base_ejection_s": 30},
    "retry": {"max_attempts_per_target": 1},
}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
async def stack() -> AsyncIterator[AsyncExitStack]:
    async with AsyncExitStack() as stack:
        yield stack


def write_config(path: Path, sims: dict[str, RunningSimulator], port: int,
                 prefix: str) -> None:
    path.write_text(yaml.safe_dump({
        "local": False,
        "server": {"port": port, "drain_timeout_s": 1},
        "state": {"redis": REDIS_URL, "prefix": prefix},
        "providers": {name: {"kind": "openai_compatible", "base_url": sim.base_url,
                             "api_key": {"env": "SIM_KEY"}} for name, sim in sims.items()},
        "routes": {
            "cool": {"targets": [{"provider": "a", "model": "model-a"},
                                 {"provider": "b", "model": "model-b", "priority": 1}],
                     "policy": POLICY},
            "brk": {"targets": [{"provider": "c", "model": "model-c"},
                                {"provider": "b", "model": "model-b", "priority": 1}],
                    "policy": POLICY},
        },
    }))


async def start_gateway(stack: AsyncExitStack, config: Path, log: Path
                        ) -> asyncio.subprocess.Process:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TURNOUT_")}
    env.update(PYTHONPATH=str(SRC), SIM_KEY=SIM_KEY, TURNOUT_CONFIG=str(config))
    with log.open("wb") as out:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "turnout.cli", "serve", env=env,
            stdin=asyncio.subprocess.DEVNULL, stdout=out, stderr=out)

    async def stop() -> None:
        if process.returncode is None:
            process.terminate()
            try:
                async with asyncio.timeout(10):
                    await process.wait()
            except TimeoutError:
                process.kill()
                await process.wait()

    stack.push_async_callback(stop)
    return process


async def wait_until_shared(http: aiohttp.ClientSession, url: str,
                            process: asyncio.subprocess.Process) -> None:
    """Up, and subscribed to the shared health."""
    async with asyncio.timeout(_WAIT_S):
        while process.returncode is None:
            try:
                async with http.get(url + "/readyz") as response:
                    body = await response.json()
                    if body.get("components", {}).get("shared:health") == "ready":
                        assert response.status == 200
                        return
            except aiohttp.ClientConnectionError:
                pass
            await asyncio.sleep(0.05)
    raise AssertionError(f"turnout serve exited with {process.returncode}")


async def chat(http: aiohttp.ClientSession, url: str, route: str) -> str:
    """The deployment that served one request."""
    async with http.post(url + "/v1/chat/completions", json={
            "model": route, "messages": [{"role": "user", "content": "hi"}]}) as response:
        assert response.status == 200, await response.text()
        return response.headers["x-turnout-deployment"]


async def metric(http: aiohttp.ClientSession, url: str, name: str, deployment: str) -> float:
    async with http.get(url + "/metrics") as response:
        text = await response.text()
    found = re.search(rf'^{name}{{deployment="{re.escape(deployment)}"}} (\S+)$', text, re.M)
    return float(found.group(1)) if found else 0.0


async def eventually_metric(http: aiohttp.ClientSession, url: str, name: str,
                            deployment: str, at_least: float) -> float:
    async with asyncio.timeout(_WAIT_S):
        while (value := await metric(http, url, name, deployment)) < at_least:  # noqa: ASYNC110
            await asyncio.sleep(0.02)
    return value


async def test_two_gateway_processes_share_cooldowns_and_breakers(
        stack: AsyncExitStack, tmp_path: Path, redis: Any, namespace: str) -> None:
    sims: dict[str, RunningSimulator] = {}
    for name in ("a", "b", "c"):
        sims[name] = await start_simulator("openai_chat", name, api_key=SIM_KEY)
        stack.push_async_callback(sims[name].close)
    urls, processes = [], []
    for n in (1, 2):
        port = free_port()
        write_config(tmp_path / f"gw{n}.yaml", sims, port, namespace)
        processes.append(await start_gateway(stack, tmp_path / f"gw{n}.yaml",
                                             tmp_path / f"gw{n}.log"))
        urls.append(f"http://127.0.0.1:{port}")
    http = await stack.enter_async_context(aiohttp.ClientSession())
    for url, process in zip(urls, processes, strict=True):
        await wait_until_shared(http, url, process)
    one, two = urls

    # A 429 with Retry-After: 30 answered to gateway 1...
    sims["a"].faults.add(Fault(kind="status", status=429, headers={"Retry-After": "30"}))
    assert await chat(http, one, "cool") == "b/model-b"
    # ...cools `a` down in gateway 2, which then sends nothing to it.
    left = await eventually_metric(http, two, "turnout_deployment_cooldown_seconds",
                                   "a/model-a", 1.0)
    assert 25.0 < left <= 30.0
    sims["a"].requests.clear()
    assert await chat(http, two, "cool") == "b/model-b"
    assert sims["a"].requests == []

    # Two 500s from `c` through gateway 1 open its breaker; gateway 2's opens too.
    sims["c"].faults.add(Fault(kind="status", status=500, times=2))
    for _ in range(2):
        assert await chat(http, one, "brk") == "b/model-b"
    assert await metric(http, one, "turnout_breaker_state", "c/model-c") == 2.0
    await eventually_metric(http, two, "turnout_breaker_state", "c/model-c", 2.0)
    sims["c"].requests.clear()
    assert await chat(http, two, "brk") == "b/model-b"
    assert sims["c"].requests == []
