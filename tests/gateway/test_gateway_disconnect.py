"""A client that goes away cancels the upstream call: the simulator's handler is cancelled
(its connection was closed) and the deployment's in-flight count returns to 0."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import orjson
import pytest
from _gw_errors import ANTHROPIC_VERSION, CLIENTS, ENDPOINT, Client, valid_body
from _gw_harness import MODEL, PROVIDER, ROUTE, UPSTREAMS, Gateway, SleepProbe

from turnout.sim import Fault
from turnout.sim.server import RunningSimulator

_WAIT_S = 5.0
"""Upper bound for each poll; the conditions normally hold within milliseconds."""


async def eventually(condition: Callable[[], bool]) -> None:
    """Poll a counter that has no event to wait on, within a bound."""
    async with asyncio.timeout(_WAIT_S):
        while not condition():  # noqa: ASYNC110
            await asyncio.sleep(0.005)


def in_flight(gw: Gateway, upstream: str) -> int:
    health = gw.engine.state.health.get(f"{PROVIDER[upstream]}/{MODEL[upstream]}")
    return 0 if health is None else health.in_flight


def headers_for(client: Client) -> dict[str, str]:
    return {"Content-Type": "application/json",
            **(ANTHROPIC_VERSION if client == "anthropic" else {})}


@pytest.mark.parametrize("upstream", UPSTREAMS)
@pytest.mark.parametrize("client", CLIENTS)
async def test_closing_a_stream_cancels_the_upstream(
        gateway: Gateway, sims: dict[str, RunningSimulator], sleep_probe: SleepProbe,
        client: Client, upstream: str) -> None:
    # A minute between chunks, after the first few (the gateway forwards nothing before the
    # first text): the stream can only end early if someone cancels it.
    sleep_probe.instant = 2
    sims[upstream].faults.add(Fault(kind="slow_chunks", seconds=60))
    body = orjson.dumps(valid_body(client, ROUTE[upstream], stream=True))
    response = await gateway.http.post(gateway.url + ENDPOINT[client], data=body,
                                       headers=headers_for(client))
    try:
        assert response.status == 200
        first = await response.content.readany()
        assert b"Hello" in first
        assert in_flight(gateway, upstream) == 1
        assert not sleep_probe.cancelled.is_set()
    finally:
        response.close()  # drops the connection mid-stream
    await asyncio.wait_for(sleep_probe.cancelled.wait(), _WAIT_S)
    await eventually(lambda: in_flight(gateway, upstream) == 0)
    # The deployment is not blamed for the client leaving.
    breaker = gateway.engine.state.breakers.breaker(f"{PROVIDER[upstream]}/{MODEL[upstream]}")
    assert breaker.allow()


@pytest.mark.parametrize("client", CLIENTS)
async def test_abandoning_a_request_cancels_the_upstream(
        gateway: Gateway, sims: dict[str, RunningSimulator], sleep_probe: SleepProbe,
        client: Client) -> None:
    sim = sims["anthropic_messages"]
    sim.faults.add(Fault(kind="latency", seconds=60))
    body = orjson.dumps(valid_body(client, "an"))

    async def call() -> None:
        async with gateway.http.post(gateway.url + ENDPOINT[client], data=body,
                                     headers=headers_for(client)) as response:
            await response.read()

    task = asyncio.create_task(call())
    await eventually(lambda: len(sim.requests) == 1)
    assert in_flight(gateway, "anthropic_messages") == 1
    task.cancel()  # closes the client's connection
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.wait_for(sleep_probe.cancelled.wait(), _WAIT_S)
    await eventually(lambda: in_flight(gateway, "anthropic_messages") == 0)
