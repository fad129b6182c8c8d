"""The shutdown drain, driven directly on an in-process gateway: unready and refusing at
once, requests in flight finish, and at the deadline streams end with the dialect's error
event and unanswered requests get the dialect's 503; the upstream calls are cancelled.
(`test_gateway_signals` does the same through SIGTERM on a `turnout serve` process.)"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import aiohttp
import pytest
from _gw_errors import (
    ANTHROPIC_VERSION,
    CLIENTS,
    ENDPOINT,
    SHUTDOWN_STATUS,
    Client,
    assert_shutdown_event,
    error_of,
    last_event,
    read,
    valid_body,
)
from _gw_harness import Gateway, RequestRecorder, SleepProbe

from turnout.gateway.drain import DRAIN, Drain
from turnout.sim import Fault
from turnout.sim.server import RunningSimulator

_WAIT_S = 10.0
"""Upper bound of each poll; the conditions normally hold within milliseconds."""

async def eventually(condition: Callable[[], bool]) -> None:
    async with asyncio.timeout(_WAIT_S):
        while not condition():  # noqa: ASYNC110 - counters with no event to wait on
            await asyncio.sleep(0.005)


def drain_of(gw: Gateway) -> Drain:
    return gw.app[DRAIN]


def headers(client: Client, request_id: str = "drain-test-1") -> dict[str, str]:
    return {"x-request-id": request_id, **(ANTHROPIC_VERSION if client == "anthropic" else {})}


async def open_stream(gw: Gateway, client: Client, route: str) -> aiohttp.ClientResponse:
    """A stream whose first text has reached the client."""
    response = await gw.http.post(gw.url + ENDPOINT[client], headers=headers(client),
                                  json=valid_body(client, route, stream=True))
    assert response.status == 200
    assert b"Hello" in await response.content.readany()
    return response


@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
@pytest.mark.parametrize("client", CLIENTS)
async def test_draining_turns_unready_and_refuses_new_requests(
        gateway: Gateway, sims: dict[str, RunningSimulator], client: Client,
        stream: bool) -> None:
    drain_of(gateway).begin()
    async with gateway.http.get(gateway.url + "/readyz") as response:
        assert response.status == 503
        assert await response.json() == {"status": "draining", "components": {}}
    async with gateway.http.get(gateway.url + "/healthz") as response:
        assert response.status == 200  # alive: restarting it now would cut the drain short
    async with gateway.http.post(gateway.url + ENDPOINT[client], headers=headers(client),
                                 json=valid_body(client, stream=stream)) as response:
        reply = await read(response)
    error_of(client, reply, SHUTDOWN_STATUS[client])
    assert "shutting down" in str(reply.body)
    assert reply.headers["Retry-After"] == "1"
    assert reply.headers["x-request-id"] == "drain-test-1"
    assert reply.headers["Connection"] == "close"
    assert not any(sim.requests for sim in sims.values())


@pytest.mark.parametrize("client", CLIENTS)
async def test_requests_in_flight_finish_before_the_deadline(
        gateway: Gateway, sims: dict[str, RunningSimulator], client: Client) -> None:
    events = RequestRecorder.on(gateway)
    sims["openai_chat"].faults.add(Fault(kind="slow_chunks", seconds=0.02))
    sims["anthropic_messages"].faults.add(Fault(kind="latency", seconds=0.1))
    streaming = await open_stream(gateway, client, "oa")
    answering = asyncio.create_task(gateway.http.post(
        gateway.url + ENDPOINT[client], headers=headers(client), json=valid_body(client, "an")))
    drain = drain_of(gateway)
    await eventually(lambda: drain.in_flight == 2)
    assert await drain.run(timeout_s=60) == 0  # nothing had to be cut
    body = await streaming.read()
    assert body.rstrip().endswith(b"[DONE]" if client == "openai"
                                  else b'{"type":"message_stop"}')
    async with await answering as response:
        assert response.status == 200
    assert sorted(event.status for event in events.requests) == [200, 200]


@pytest.mark.parametrize("client", CLIENTS)
async def test_the_deadline_ends_a_stream_with_the_error_event(
        gateway: Gateway, sims: dict[str, RunningSimulator], sleep_probe: SleepProbe,
        client: Client) -> None:
    events = RequestRecorder.on(gateway)
    # The first chunks go out at once, then the upstream holds for ten minutes.
    sleep_probe.instant = 2
    sims["openai_chat"].faults.add(Fault(kind="slow_chunks", seconds=600))
    streaming = await open_stream(gateway, client, "oa")
    assert await drain_of(gateway).run(timeout_s=0) == 1
    body = await streaming.read()  # a complete chunked body: no ClientPayloadError
    assert_shutdown_event(client, last_event(client, body))
    await asyncio.wait_for(sleep_probe.cancelled.wait(), _WAIT_S)  # upstream call cancelled
    (event,) = events.requests
    assert (event.request_id, event.status, event.error_code) == (
        "drain-test-1", 503, "service_unavailable")


@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
@pytest.mark.parametrize("client", CLIENTS)
async def test_the_deadline_answers_an_unanswered_request_with_503(
        gateway: Gateway, sims: dict[str, RunningSimulator], sleep_probe: SleepProbe,
        client: Client, stream: bool) -> None:
    events = RequestRecorder.on(gateway)
    sim = sims["anthropic_messages"]
    sim.faults.add(Fault(kind="latency", seconds=600))  # nothing until it is cut
    waiting = asyncio.create_task(gateway.http.post(
        gateway.url + ENDPOINT[client], headers=headers(client),
        json=valid_body(client, "an", stream=stream)))
    await eventually(lambda: len(sim.requests) == 1)
    assert await drain_of(gateway).run(timeout_s=0) == 1
    async with await waiting as response:
        reply = await read(response)
    error_of(client, reply, SHUTDOWN_STATUS[client])
    assert reply.headers["Retry-After"] == "1"
    assert reply.headers["x-request-id"] == "drain-test-1"
    await asyncio.wait_for(sleep_probe.cancelled.wait(), _WAIT_S)
    (event,) = events.requests
    assert (event.status, event.error_code, event.stream) == (503, "service_unavailable",
                                                              stream)


async def test_hurrying_cuts_the_drain_short(
        gateway: Gateway, sims: dict[str, RunningSimulator], sleep_probe: SleepProbe) -> None:
    """What a second SIGTERM or SIGINT does: cut what is in flight without waiting."""
    sleep_probe.instant = 2
    sims["openai_chat"].faults.add(Fault(kind="slow_chunks", seconds=600))
    streaming = await open_stream(gateway, "openai", "oa")
    hurry = asyncio.Event()
    drain = drain_of(gateway)
    running = asyncio.create_task(drain.run(timeout_s=3600, hurry=hurry))
    await eventually(lambda: drain.draining)
    assert not running.done()
    hurry.set()
    assert await running == 1
    assert_shutdown_event("openai", last_event("openai", await streaming.read()))


async def test_a_client_leaving_during_the_drain_is_not_a_cut(
        gateway: Gateway, sims: dict[str, RunningSimulator], sleep_probe: SleepProbe) -> None:
    events = RequestRecorder.on(gateway)
    sleep_probe.instant = 2
    sims["openai_chat"].faults.add(Fault(kind="slow_chunks", seconds=600))
    streaming = await open_stream(gateway, "openai", "oa")
    drain = drain_of(gateway)
    running = asyncio.create_task(drain.run(timeout_s=3600))
    await eventually(lambda: drain.draining)
    streaming.close()
    assert await running == 0  # the drain ended as soon as the request did
    await eventually(lambda: bool(events.requests))
    assert events.requests[0].error_code == "client_closed_request"
