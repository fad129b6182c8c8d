"""A one-target route whose upstream keeps failing, end to end: once its breaker opens,
requests fail fast in the client's dialect (OpenAI: 503; Anthropic: 529 overloaded) with a
Retry-After until the next probe and no upstream request; after the ejection one probe
goes through, and a success closes the breaker. The gateway's clock is a fake one."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from typing import Any

import anthropic
import openai
import orjson
import pytest
from _gw_errors import ANTHROPIC_VERSION, CLIENTS, ENDPOINT, Client, error_of, post, valid_body
from _gw_harness import Gateway, base_config, compile_data, serve

from turnout.engine.engine import Engine
from turnout.resilience.breaker import BreakerState
from turnout.resilience.clock import FakeClock
from turnout.sim import Fault
from turnout.sim.server import RunningSimulator

POLICY: dict[str, Any] = {"retry": {"max_attempts_per_target": 1},
                          "breaker": {"consecutive_failures": 3, "base_ejection_s": 10}}
DEPLOYMENT = "sim-openai/gpt-4o-mini"


async def instant(_: float) -> None:
    return None


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(1000.0)


@pytest.fixture
async def breaking(sims: dict[str, RunningSimulator], clock: FakeClock
                   ) -> AsyncIterator[Gateway]:
    """The gateway, with route `oa` (one target: the OpenAI simulator) under POLICY."""
    data = base_config(sims)
    data["routes"]["oa"]["policy"] = POLICY
    runtime = compile_data(data)
    async with AsyncExitStack() as stack:
        engine = Engine(runtime, clock=clock, sleep=instant)
        yield await serve(runtime, stack, engine=engine)


def upstream_requests(sims: dict[str, RunningSimulator]) -> int:
    return len(sims["openai_chat"].requests)


def fast_failure(client: Client) -> int:
    return 503 if client == "openai" else 529


async def answer_status(gw: Gateway, client: Client, stream: bool) -> int:
    """The status of a request that should succeed (a stream's body is not JSON)."""
    headers = {"Content-Type": "application/json",
               **(ANTHROPIC_VERSION if client == "anthropic" else {})}
    body = orjson.dumps(valid_body(client, "oa", stream=stream))
    async with gw.http.post(gw.url + ENDPOINT[client], data=body, headers=headers) as reply:
        await reply.read()
        return reply.status


@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
@pytest.mark.parametrize("client", CLIENTS)
async def test_open_breaker_fails_fast_with_retry_after_until_the_probe(
        breaking: Gateway, sims: dict[str, RunningSimulator], clock: FakeClock,
        client: Client, stream: bool) -> None:
    sims["openai_chat"].faults.add(Fault(kind="status", status=500, times=-1))
    body = valid_body(client, "oa", stream=stream)
    for _ in range(3):  # each reaches the upstream and gets its error
        error_of(client, await post(breaking, client, body), 502)
    assert upstream_requests(sims) == 3
    breaker = breaking.engine.state.breakers.breaker(DEPLOYMENT)
    assert breaker.state is BreakerState.OPEN

    for elapsed, retry_after in [(0, "10"), (4, "6"), (5.5, "1")]:
        clock.advance(elapsed)
        reply = await post(breaking, client, body)
        error = error_of(client, reply, fast_failure(client))
        if client == "anthropic":
            assert error["type"] == "overloaded_error"
        else:
            assert error["code"] == "service_unavailable"
        assert reply.headers["Retry-After"] == retry_after
    assert upstream_requests(sims) == 3  # fast failures never reach the upstream

    clock.advance(0.5)  # the ejection is over: the next request is the probe; it fails
    error_of(client, await post(breaking, client, body), 502)
    assert upstream_requests(sims) == 4
    reply = await post(breaking, client, body)  # re-ejected, for twice as long
    error_of(client, reply, fast_failure(client))
    assert reply.headers["Retry-After"] == "20"
    assert upstream_requests(sims) == 4

    sims["openai_chat"].faults.clear()
    clock.advance(20)  # this probe succeeds and closes the breaker
    assert await answer_status(breaking, client, stream) == 200
    assert breaker.state is BreakerState.CLOSED
    assert await answer_status(breaking, client, stream) == 200
    assert upstream_requests(sims) == 6
    assert breaking.engine.state.health[DEPLOYMENT].in_flight == 0


async def test_the_sdks_see_their_overload_errors(
        breaking: Gateway, sims: dict[str, RunningSimulator]) -> None:
    sims["openai_chat"].faults.add(Fault(kind="status", status=500, times=3))
    for _ in range(3):
        with pytest.raises(openai.InternalServerError):
            await breaking.openai.chat.completions.create(
                model="oa", messages=[{"role": "user", "content": "hi"}])
    with pytest.raises(openai.InternalServerError) as unavailable:
        await breaking.openai.chat.completions.create(
            model="oa", messages=[{"role": "user", "content": "hi"}])
    assert unavailable.value.status_code == 503
    assert unavailable.value.response.headers["retry-after"] == "10"
    with pytest.raises(anthropic.OverloadedError) as overloaded:
        await breaking.anthropic.messages.create(
            model="oa", max_tokens=8, messages=[{"role": "user", "content": "hi"}])
    assert overloaded.value.response.headers["retry-after"] == "10"
    assert upstream_requests(sims) == 3
