"""SIGTERM on a real `turnout serve` process in front of the simulators: it turns unready at
once and refuses new requests with 503, lets requests in flight finish, ends the streams
still running at the drain deadline with the dialect's error event, answers the requests
still waiting with the dialect's 503, logs every request as a text line, and exits 0."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from _gw_errors import (
    ANTHROPIC_VERSION,
    ENDPOINT,
    SHUTDOWN_STATUS,
    Client,
    assert_shutdown_event,
    error_of,
    last_event,
    read,
    valid_body,
)
from _gw_harness import MODEL, PROVIDER, ROUTE, SIM_NAME, UPSTREAM_KEY, UPSTREAMS, SleepProbe

from turnout.sim import Fault
from turnout.sim.server import RunningSimulator, start_simulator

SRC = Path(__file__).resolve().parents[2] / "src"
DRAIN_TIMEOUT_S = 3
"""Long enough for the streams released after SIGTERM to finish well before it."""
_WAIT_S = 30.0
"""Upper bound of each wait: startup, polls, the process's exit."""


class Gate:
    """A simulator's sleep that waits until the test opens the gate, whatever it was asked
    to wait: which requests finish during the drain is decided by the test, not a clock."""

    def __init__(self) -> None:
        self.opened = asyncio.Event()
        self.waiting = 0

    async def __call__(self, seconds: float) -> None:
        self.waiting += 1
        try:
            await self.opened.wait()
        finally:
            self.waiting -= 1


async def eventually(condition: Any) -> None:
    async with asyncio.timeout(_WAIT_S):
        while not condition():  # noqa: ASYNC110 - counters with no event to wait on
            await asyncio.sleep(0.01)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
async def stack() -> AsyncIterator[AsyncExitStack]:
    async with AsyncExitStack() as stack:
        yield stack


async def start_sims(stack: AsyncExitStack, sleeps: dict[str, Any]
                     ) -> dict[str, RunningSimulator]:
    sims: dict[str, RunningSimulator] = {}
    for dialect in UPSTREAMS:
        sims[dialect] = await start_simulator(dialect, SIM_NAME[dialect], api_key=UPSTREAM_KEY,
                                              sleep=sleeps[dialect])
        stack.push_async_callback(sims[dialect].close)
    return sims


def write_config(path: Path, sims: dict[str, RunningSimulator], port: int,
                 drain_timeout_s: float = DRAIN_TIMEOUT_S) -> None:
    kinds = {"openai_chat": "openai_compatible", "anthropic_messages": "anthropic",
             "gemini": "gemini"}
    path.write_text(yaml.safe_dump({
        "local": False,
        "server": {"port": port, "drain_timeout_s": drain_timeout_s},
        "providers": {PROVIDER[d]: {"kind": kinds[d], "base_url": sims[d].base_url,
                                    "api_key": {"env": "SIM_KEY"}} for d in UPSTREAMS},
        "routes": {ROUTE[d]: {"targets": [{"provider": PROVIDER[d], "model": MODEL[d]}]}
                   for d in UPSTREAMS},
    }))


async def start_gateway(stack: AsyncExitStack, config: Path, log: Path
                        ) -> asyncio.subprocess.Process:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TURNOUT_")}
    env.update(PYTHONPATH=str(SRC), SIM_KEY=UPSTREAM_KEY, TURNOUT_CONFIG=str(config))
    with log.open("wb") as out:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "turnout.cli", "serve", env=env,
            stdin=asyncio.subprocess.DEVNULL, stdout=out, stderr=out)

    async def stop() -> None:  # only if the test failed before the process exited
        if process.returncode is None:
            process.kill()
            await process.wait()

    stack.push_async_callback(stop)
    return process


async def wait_until_up(http: aiohttp.ClientSession, url: str,
                        process: asyncio.subprocess.Process) -> None:
    async with asyncio.timeout(_WAIT_S):
        while process.returncode is None:
            try:
                async with http.get(url + "/healthz") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientConnectionError:
                pass
            await asyncio.sleep(0.05)
    raise AssertionError(f"turnout serve exited with {process.returncode}")


async def wait_until_draining(http: aiohttp.ClientSession, url: str) -> None:
    async with asyncio.timeout(_WAIT_S):
        while True:
            async with http.get(url + "/readyz") as response:
                if response.status == 503:
                    assert (await response.json())["status"] == "draining"
                    return
            await asyncio.sleep(0.01)


def headers(client: Client) -> dict[str, str]:
    return ANTHROPIC_VERSION if client == "anthropic" else {}


async def open_stream(http: aiohttp.ClientSession, url: str, client: Client,
                      route: str) -> aiohttp.ClientResponse:
    response = await http.post(url + ENDPOINT[client], headers=headers(client),
                               json=valid_body(client, route, stream=True))
    assert response.status == 200
    assert b"Hello" in await response.content.readany()
    return response


def post_later(http: aiohttp.ClientSession, url: str, client: Client, route: str,
               stream: bool = False) -> asyncio.Task[aiohttp.ClientResponse]:
    return asyncio.create_task(http.post(url + ENDPOINT[client], headers=headers(client),
                                         json=valid_body(client, route, stream=stream)))


async def test_sigterm_drains_then_exits_0(stack: AsyncExitStack, tmp_path: Path) -> None:
    held, gate = SleepProbe(), Gate()
    sims = await start_sims(stack, {"openai_chat": held, "gemini": gate,
                                    "anthropic_messages": asyncio.sleep})
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    write_config(tmp_path / "turnout.yaml", sims, port)
    log = tmp_path / "serve.log"
    process = await start_gateway(stack, tmp_path / "turnout.yaml", log)
    http = await stack.enter_async_context(aiohttp.ClientSession())
    await wait_until_up(http, url, process)

    # Two streams held for ten minutes after their first text (route oa), one per dialect.
    sims["openai_chat"].faults.add(Fault(kind="slow_chunks", seconds=600, times=2))
    held_streams = {}
    for client in ("openai", "anthropic"):
        held.instant = 2
        held_streams[client] = await open_stream(http, url, client, "oa")
    # A stream and a plain request that finish once the gate opens (route gm).
    sims["gemini"].faults.add([Fault(kind="slow_chunks", seconds=1),
                               Fault(kind="latency", seconds=1, match={"stream": False})])
    finishing = await open_stream(http, url, "openai", "gm")
    answered = post_later(http, url, "anthropic", "gm")
    # Two requests with no answer for ten minutes (route an): they will get 503.
    sims["anthropic_messages"].faults.add(Fault(kind="latency", seconds=600, times=2))
    unanswered = {"openai": post_later(http, url, "openai", "an"),
                  "anthropic": post_later(http, url, "anthropic", "an", stream=True)}
    await eventually(lambda: gate.waiting == 2 and len(sims["anthropic_messages"].requests) == 2)

    process.send_signal(signal.SIGTERM)
    await wait_until_draining(http, url)
    async with http.post(url + ENDPOINT["openai"], json=valid_body("openai")) as response:
        refused = await read(response)
    error_of("openai", refused, 503)
    assert refused.headers["Retry-After"] == "1"

    gate.opened.set()
    assert (await finishing.read()).rstrip().endswith(b"data: [DONE]")
    async with await answered as response:
        assert response.status == 200
        assert (await response.json())["content"][0]["text"].startswith("Hello")
    for client, stream in held_streams.items():
        assert_shutdown_event(client, last_event(client, await stream.read()))
    for client, task in unanswered.items():
        async with await task as response:
            reply = await read(response)
        error_of(client, reply, SHUTDOWN_STATUS[client])
        assert reply.headers["Retry-After"] == "1"

    async with asyncio.timeout(_WAIT_S):
        assert await process.wait() == 0
    output = log.read_text()
    assert "Traceback" not in output
    assert "draining 6 requests in flight" in output
    requests = [line for line in output.splitlines() if line.startswith("request ")]
    statuses = sorted(line.split(" status=")[1].split()[0] for line in requests)
    assert statuses == ["200", "200", "503", "503", "503", "503"], output
    assert all("error_code=service_unavailable" in line
               for line in requests if " status=503 " in line)
    held_stream_lines = [line for line in requests if " route=oa " in line]
    assert len(held_stream_lines) == 2 and all("stream=true" in x for x in held_stream_lines)


async def test_a_second_sigint_cuts_the_drain_short(stack: AsyncExitStack,
                                                    tmp_path: Path) -> None:
    held = SleepProbe()
    sims = await start_sims(stack, {"openai_chat": held, "gemini": asyncio.sleep,
                                    "anthropic_messages": asyncio.sleep})
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    write_config(tmp_path / "turnout.yaml", sims, port, drain_timeout_s=3600)
    process = await start_gateway(stack, tmp_path / "turnout.yaml", tmp_path / "serve.log")
    http = await stack.enter_async_context(aiohttp.ClientSession())
    await wait_until_up(http, url, process)
    sims["openai_chat"].faults.add(Fault(kind="slow_chunks", seconds=600))
    held.instant = 2
    stream = await open_stream(http, url, "anthropic", "oa")

    process.send_signal(signal.SIGINT)
    await wait_until_draining(http, url)
    process.send_signal(signal.SIGINT)  # an hour of drain left: only this can end it now
    assert_shutdown_event("anthropic", last_event("anthropic", await stream.read()))
    async with asyncio.timeout(_WAIT_S):
        assert await process.wait() == 0
    assert "Traceback" not in (tmp_path / "serve.log").read_text()
