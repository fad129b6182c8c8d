"""Network failures and broken upstream bodies reach the client in the gateway's own words,
never as aiohttp's or orjson's text (`TransferEncodingError: 400, message='Not enough
data...'`); the library's detail goes to the log, with the request id."""

from __future__ import annotations

import logging
import re
import socket
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from typing import Any

import orjson
import pytest
from _gw_errors import valid_body
from _gw_harness import (
    PROVIDER,
    ROUTE,
    SINGLE_SHOT,
    UPSTREAMS,
    Gateway,
    MakeGateway,
    base_config,
    compile_data,
    serve,
)

from turnout.observability.logs import REQUEST_LOGGER, JsonLogObserver
from turnout.sim import Fault
from turnout.sim.server import RunningSimulator

CUT_SHORT = "the upstream connection closed before the response was complete"
NO_ANSWER = "the upstream closed the connection without answering"

# (fault, fault for a stream, code, message the client gets; None: any, checked for noise)
CASES: dict[str, tuple[dict[str, Any], dict[str, Any], str, str | None]] = {
    # Twice: the transport retries a connection the server closed before answering once,
    # as it would be a stale pooled one.
    "reset_before_headers": ({"kind": "reset", "times": 2}, {"kind": "reset", "times": 2},
                             "upstream_connection_error", NO_ANSWER),
    "reset_mid_body": ({"kind": "reset", "after_chunks": 1},
                       {"kind": "reset", "after_chunks": 3},
                       "upstream_connection_error", CUT_SHORT),
    "malformed_json": ({"kind": "malformed"}, {"kind": "malformed", "after_chunks": 3},
                       "malformed_upstream_response", None),
}

LIBRARY_TEXT = re.compile(
    r"aiohttp|[A-Z]\w+Error|message=|Not enough data|Server disconnected|payload|"
    r"Errno|<|unexpected (character|end)|line \d+ column|\(char \d+\)", re.IGNORECASE)
"""What aiohttp and orjson put in their exception text."""


@pytest.fixture
async def gw(make_gateway: MakeGateway) -> Gateway:
    """No retries and no fallback, so the failure itself reaches the client; JSON request
    lines logged, to find a request's id."""
    gateway = await make_gateway(policy=SINGLE_SHOT)
    gateway.engine.observers.add(JsonLogObserver(logging.getLogger(REQUEST_LOGGER)))
    return gateway


async def send(gw: Gateway, route: str, stream: bool) -> tuple[int, dict[str, Any], str]:
    """(status, the error object, the whole body) of a request that fails: for a stream
    that started, the error is its terminal event, after some text."""
    body = orjson.dumps(valid_body("openai", route, stream=stream))
    async with gw.http.post(gw.url + "/v1/chat/completions", data=body,
                            headers={"Content-Type": "application/json"}) as reply:
        text = await reply.text()
        if reply.status != 200:
            return reply.status, orjson.loads(text)["error"], text
    events = [orjson.loads(line[6:]) for line in text.splitlines()
              if line.startswith("data: {")]
    assert any(e.get("choices") for e in events), text  # content came before the error
    return reply.status, events[-1]["error"], text


@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("upstream", UPSTREAMS)
async def test_failure_is_told_in_the_gateways_words(
        gw: Gateway, sims: dict[str, RunningSimulator], caplog: pytest.LogCaptureFixture,
        upstream: str, case: str, stream: bool) -> None:
    caplog.set_level(logging.DEBUG)
    fault, stream_fault, code, message = CASES[case]
    sims[upstream].faults.add(Fault.model_validate(stream_fault if stream else fault))
    status, error, text = await send(gw, ROUTE[upstream], stream)
    started = stream and case != "reset_before_headers"
    assert status == (200 if started else 502), text
    assert error["code"] == code
    if message is not None:
        assert error["message"] == message
    assert not LIBRARY_TEXT.search(error["message"]), error["message"]
    if code == "upstream_connection_error":
        # The operator's log line has the library's detail and names the request.
        [request_line] = [orjson.loads(r.getMessage()) for r in caplog.records
                          if r.name == REQUEST_LOGGER]
        detail = [r.getMessage() for r in caplog.records if r.name == "turnout.upstream"]
        assert any(request_line["request_id"] in line and message in line
                   and LIBRARY_TEXT.search(line.split(message, 1)[1]) for line in detail), \
            detail
    # The gateway is fine afterwards.
    ok = orjson.dumps(valid_body("openai", ROUTE[upstream]))
    async with gw.http.post(gw.url + "/v1/chat/completions", data=ok) as reply:
        assert reply.status == 200


@pytest.fixture
async def unreachable(sims: dict[str, RunningSimulator]) -> AsyncIterator[Gateway]:
    """Route `oa` points at a loopback port nobody listens on."""
    with socket.socket() as probe:  # a port that was free a moment ago, and now closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    data = base_config(sims)
    data["providers"][PROVIDER["openai_chat"]]["base_url"] = f"http://127.0.0.1:{port}/v1"
    for route in data["routes"].values():
        route["policy"] = SINGLE_SHOT
    async with AsyncExitStack() as stack:
        gateway = await serve(compile_data(data), stack)
        gateway.engine.observers.add(JsonLogObserver(logging.getLogger(REQUEST_LOGGER)))
        yield gateway


@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
async def test_unreachable_upstream_is_told_in_the_gateways_words(
        unreachable: Gateway, caplog: pytest.LogCaptureFixture, stream: bool) -> None:
    caplog.set_level(logging.INFO)
    status, error, text = await send(unreachable, "oa", stream)
    assert status == 502, text
    assert error == {"message": "could not connect to the upstream", "type": "server_error",
                     "param": None, "code": "upstream_connection_error"}
    [line] = [r.getMessage() for r in caplog.records if r.name == "turnout.upstream"]
    assert "ClientConnectorError" in line and "req_" in line
