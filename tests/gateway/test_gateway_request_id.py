"""A client's well-formed `x-request-id` becomes the request id (response header, engine
events and so logs); a malformed one is replaced, never an error; errors carry it too."""

from __future__ import annotations

import re

import pytest
from _gw_errors import CLIENTS, ENDPOINT, Client, error_of, post, valid_body
from _gw_harness import SINGLE_SHOT, Gateway, MakeGateway, RequestRecorder

from turnout.sim import Fault
from turnout.sim.server import RunningSimulator

GENERATED = re.compile(r"req_[0-9a-f]+")
WELL_FORMED = ["trace-7f3c.span:01", "0f8e9d5c-7a1b-4c2d-9e3f-5a6b7c8d9e0f", "req_abc.1",
               "A" * 128]
MALFORMED = ["A" * 129, "two words", 'quote"d', "semi;colon", "slash/es", ""]


async def post_stream(gw: Gateway, client: Client, headers: dict[str, str]
                      ) -> tuple[int, str, bytes]:
    """A streamed request: status, the response's x-request-id and the whole body."""
    sent = {**headers, **({"anthropic-version": "2023-06-01"} if client == "anthropic"
                          else {})}
    async with gw.http.post(gw.url + ENDPOINT[client], headers=sent,
                            json=valid_body(client, stream=True)) as response:
        return response.status, response.headers["x-request-id"], await response.read()


@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
@pytest.mark.parametrize("client", CLIENTS)
@pytest.mark.parametrize("given", WELL_FORMED, ids=["trace", "uuid", "underscore", "max"])
async def test_a_well_formed_id_is_kept(gateway: Gateway, client: Client, stream: bool,
                                        given: str) -> None:
    events = RequestRecorder.on(gateway)
    if stream:
        status, echoed, body = await post_stream(gateway, client, {"x-request-id": given})
        assert status == 200 and body.rstrip().endswith(
            b"[DONE]" if client == "openai" else b'{"type":"message_stop"}')
    else:
        reply = await post(gateway, client, valid_body(client), {"x-request-id": given})
        assert reply.status == 200
        echoed = reply.headers["x-request-id"]
    assert echoed == given
    assert [event.request_id for event in events.requests] == [given]


@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
@pytest.mark.parametrize("client", CLIENTS)
@pytest.mark.parametrize("given", MALFORMED,
                         ids=["too_long", "space", "quote", "semicolon", "slash", "empty"])
async def test_a_malformed_id_is_replaced(gateway: Gateway, client: Client, stream: bool,
                                          given: str) -> None:
    events = RequestRecorder.on(gateway)
    if stream:
        status, echoed, _ = await post_stream(gateway, client, {"x-request-id": given})
    else:
        reply = await post(gateway, client, valid_body(client), {"x-request-id": given})
        status, echoed = reply.status, reply.headers["x-request-id"]
    assert status == 200
    assert GENERATED.fullmatch(echoed)
    assert [event.request_id for event in events.requests] == [echoed]


@pytest.mark.parametrize("client", CLIENTS)
async def test_errors_carry_the_request_id(make_gateway: MakeGateway,
                                           sims: dict[str, RunningSimulator],
                                           client: Client) -> None:
    keyed = await make_gateway(server={"gateway_keys": [{"env": "GW_KEY"}]},
                               env={"GW_KEY": "k" * 40}, policy=SINGLE_SHOT)
    key = {"x-api-key": "k" * 40, "x-request-id": "client-42"}
    denied = await post(keyed, client, valid_body(client), {"x-request-id": "client-41"})
    error_of(client, denied, 401)
    assert denied.headers["x-request-id"] == "client-41"
    for body, status in ((b"{not json", 400), (valid_body(client, model="nope"), 404)):
        reply = await post(keyed, client, body, key)
        error_of(client, reply, status)
        assert reply.headers["x-request-id"] == "client-42"
    # An upstream error before the first byte of a stream is a plain error response.
    sims["openai_chat"].faults.add(Fault(kind="status", status=429))
    reply = await post(keyed, client, valid_body(client, stream=True), key)
    error_of(client, reply, 429)
    assert reply.headers["x-request-id"] == "client-42"
    # Without an id of its own, an error still gets one.
    reply = await post(keyed, client, b"")
    error_of(client, reply, 401)
    assert GENERATED.fullmatch(reply.headers["x-request-id"])
