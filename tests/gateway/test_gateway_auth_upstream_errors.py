"""Gateway keys (401 in the client's shape; `Authorization: Bearer` and `x-api-key` both
accepted) and upstream errors mapped into the client's dialect with the right status."""

from __future__ import annotations

import anthropic
import openai
import pytest
from _gw_errors import CLIENTS, Client, assert_healthy, error_of, post, read, valid_body
from _gw_harness import ROUTE, SINGLE_SHOT, UPSTREAMS, Gateway, MakeGateway

from turnout.sim import Fault
from turnout.sim.server import RunningSimulator

KEY = "gw-secret-key"


@pytest.fixture
async def keyed(make_gateway: MakeGateway) -> Gateway:
    """A gateway that demands KEY; its SDK clients present it."""
    return await make_gateway(server={"gateway_keys": [{"env": "GW_KEY"}]},
                              env={"GW_KEY": KEY}, client_key=KEY)


BAD_CREDENTIALS = {
    "none": {},
    "wrong_bearer": {"Authorization": "Bearer not-the-key"},
    "wrong_x_api_key": {"x-api-key": "not-the-key"},
    "empty_bearer": {"Authorization": "Bearer "},
    "basic_scheme": {"Authorization": f"Basic {KEY}"},
    "key_prefix": {"Authorization": f"Bearer {KEY[:-1]}"},
    "key_with_suffix": {"x-api-key": KEY + "x"},
}
GOOD_CREDENTIALS = {
    "bearer": {"Authorization": f"Bearer {KEY}"},
    "bearer_lowercase_scheme": {"Authorization": f"bearer {KEY}"},
    "x_api_key": {"x-api-key": KEY},
}


@pytest.mark.parametrize("credentials", list(BAD_CREDENTIALS))
@pytest.mark.parametrize("client", CLIENTS)
async def test_missing_or_wrong_key_is_401(keyed: Gateway, sims: dict[str, RunningSimulator],
                                           client: Client, credentials: str) -> None:
    reply = await post(keyed, client, valid_body(client), BAD_CREDENTIALS[credentials])
    error_of(client, reply, 401)
    assert KEY not in reply.body.__repr__()
    assert all(not sim.requests for sim in sims.values())
    await assert_healthy(keyed, client, GOOD_CREDENTIALS["bearer"])


@pytest.mark.parametrize("credentials", list(GOOD_CREDENTIALS))
@pytest.mark.parametrize("client", CLIENTS)
async def test_key_accepted_in_either_header(keyed: Gateway, client: Client,
                                             credentials: str) -> None:
    reply = await post(keyed, client, valid_body(client), GOOD_CREDENTIALS[credentials])
    assert reply.status == 200, reply.body


async def test_sdks_with_keys(keyed: Gateway) -> None:
    answer = await keyed.openai.chat.completions.create(
        model="oa", messages=[{"role": "user", "content": "hi"}])
    assert answer.choices[0].message.content
    message = await keyed.anthropic.messages.create(
        model="an", max_tokens=16, messages=[{"role": "user", "content": "hi"}])
    assert message.content[0].type == "text"
    wrong_openai = openai.AsyncOpenAI(base_url=f"{keyed.url}/v1", api_key="nope",
                                      max_retries=0)
    wrong_anthropic = anthropic.AsyncAnthropic(base_url=keyed.url, api_key="nope",
                                               max_retries=0)
    try:
        with pytest.raises(openai.AuthenticationError) as info:
            await wrong_openai.chat.completions.create(
                model="oa", messages=[{"role": "user", "content": "hi"}])
        assert info.value.status_code == 401 and info.value.type == "authentication_error"
        with pytest.raises(anthropic.AuthenticationError) as denied:
            await wrong_anthropic.messages.create(
                model="an", max_tokens=16, messages=[{"role": "user", "content": "hi"}])
        assert denied.value.body["error"]["type"] == "authentication_error"
        with pytest.raises(openai.AuthenticationError):
            await wrong_openai.models.list()
        with pytest.raises(anthropic.AuthenticationError):
            await wrong_anthropic.models.list()
    finally:
        await wrong_openai.close()
        await wrong_anthropic.close()
    assert [m.id async for m in keyed.openai.models.list()] == ["an", "gm", "oa"]
    # Probes stay open: a load balancer holds no key.
    async with keyed.http.get(keyed.url + "/healthz") as response:
        assert response.status == 200
    async with keyed.http.get(keyed.url + "/readyz") as response:
        assert response.status == 200


# --- upstream errors ----------------------------------------------------------------------

@pytest.fixture
async def single_shot(make_gateway: MakeGateway) -> Gateway:
    """No retries and no fallback, so an upstream error reaches the client."""
    return await make_gateway(policy=SINGLE_SHOT)


@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
@pytest.mark.parametrize("upstream", UPSTREAMS)
@pytest.mark.parametrize("client", CLIENTS)
async def test_rate_limit_stays_429_with_retry_after(
        single_shot: Gateway, sims: dict[str, RunningSimulator], client: Client,
        upstream: str, stream: bool) -> None:
    sims[upstream].faults.add(Fault(kind="status", status=429, headers={"Retry-After": "7"}))
    reply = await post(single_shot, client, valid_body(client, ROUTE[upstream], stream=stream))
    error = error_of(client, reply, 429)
    assert reply.headers["Retry-After"] == "7"
    if client == "openai":
        assert error["code"] == "rate_limit_exceeded"
    assert len(sims[upstream].requests) == 1  # no retry
    await assert_healthy(single_shot, client)


@pytest.mark.parametrize("upstream", UPSTREAMS)
@pytest.mark.parametrize("client", CLIENTS)
async def test_overload_becomes_the_clients_overloaded_error(
        single_shot: Gateway, sims: dict[str, RunningSimulator], client: Client,
        upstream: str) -> None:
    sims[upstream].faults.add(Fault(kind="status", status=529))
    reply = await post(single_shot, client, valid_body(client, ROUTE[upstream]))
    error = error_of(client, reply, 529)
    assert error["type"] == "overloaded_error"
    if client == "openai":
        assert error["code"] == "overloaded"
    await assert_healthy(single_shot, client)


@pytest.mark.parametrize("upstream", UPSTREAMS)
@pytest.mark.parametrize("client", CLIENTS)
async def test_upstream_server_error_is_a_bad_gateway(
        single_shot: Gateway, sims: dict[str, RunningSimulator], client: Client,
        upstream: str) -> None:
    sims[upstream].faults.add(Fault(kind="status", status=500))
    error = error_of(client, await post(single_shot, client,
                                        valid_body(client, ROUTE[upstream])), 502)
    assert error["type"] == ("server_error" if client == "openai" else "api_error")


async def test_sdk_error_classes_for_upstream_errors(
        single_shot: Gateway, sims: dict[str, RunningSimulator]) -> None:
    sim = sims["anthropic_messages"]
    sim.faults.add(Fault(kind="status", status=429, headers={"retry-after": "3"}))
    with pytest.raises(openai.RateLimitError) as limited:
        await single_shot.openai.chat.completions.create(
            model="an", messages=[{"role": "user", "content": "hi"}])
    assert limited.value.response.headers["retry-after"] == "3"
    sim.faults.add(Fault(kind="status", status=529))
    with pytest.raises(anthropic.OverloadedError) as overloaded:
        await single_shot.anthropic.messages.create(
            model="an", max_tokens=8, messages=[{"role": "user", "content": "hi"}])
    assert overloaded.value.status_code == 529


@pytest.mark.parametrize("upstream", UPSTREAMS)
async def test_error_after_first_byte_is_a_terminal_event(
        single_shot: Gateway, sims: dict[str, RunningSimulator], upstream: str) -> None:
    """Once the stream started, an upstream failure ends it with the dialect's error event,
    which each SDK raises as an API error."""
    question = [{"role": "user", "content": "one two three four"}]
    sims[upstream].faults.add(Fault(kind="error_event", after_chunks=3))
    texts: list[str] = []
    with pytest.raises(openai.APIError) as failed:
        chunks = await single_shot.openai.chat.completions.create(
            model=ROUTE[upstream], messages=question, stream=True)
        async for chunk in chunks:
            texts += [c.delta.content or "" for c in chunk.choices]
    assert "".join(texts).startswith("Hello")
    assert not isinstance(failed.value, openai.APIStatusError)  # the status was 200
    sims[upstream].faults.add(Fault(kind="error_event", after_chunks=3))
    with pytest.raises(anthropic.APIStatusError) as event:
        async with single_shot.anthropic.messages.stream(
                model=ROUTE[upstream], max_tokens=32,
                messages=question) as stream:
            async for _ in stream:
                pass
    assert event.value.body["type"] == "error"
    assert event.value.body["error"]["type"] in ("overloaded_error", "api_error")
    await assert_healthy(single_shot, "anthropic")


async def test_error_response_is_json_even_for_models_endpoint(keyed: Gateway) -> None:
    async with keyed.http.get(keyed.url + "/v1/models",
                              headers={"anthropic-version": "2023-06-01"}) as response:
        error_of("anthropic", await read(response), 401)
    async with keyed.http.get(keyed.url + "/v1/models") as response:
        error_of("openai", await read(response), 401)
