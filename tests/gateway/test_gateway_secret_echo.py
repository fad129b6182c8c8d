"""Secrets an upstream echoes never leave the gateway: not in error bodies, not in in-stream
error events, not in logs (text or JSON), metrics or the errors the engine raises.

The canary is the provider key, read from a secret file; the simulators demand it, so it
is what the gateway really sends, and their `echo_key` faults quote it back the way some
providers do ("Incorrect API key provided: ...").
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import orjson
import pytest
from _gw_errors import ANTHROPIC_VERSION, CLIENTS, ENDPOINT, Client, valid_body
from _gw_harness import ROUTE, SIM_NAME, UPSTREAMS, Gateway, base_config, compile_data, serve

from turnout.core.errors import TurnoutError
from turnout.core.parts import TextPart
from turnout.core.request import ChatRequest, Message
from turnout.core.scrub import MIN_PREFIX, REDACTED
from turnout.engine.context import CallContext
from turnout.engine.engine import Engine
from turnout.observability.logs import REQUEST_LOGGER, JsonFormatter, JsonLogObserver
from turnout.sim import Fault
from turnout.sim.server import RunningSimulator, start_simulator

CANARY = "cnry-7Qm2xZ9pLk4vB8nR1tW6hJ3"
"""The provider key. Not shaped like any provider's: only the config says it is a key."""
GATEWAY_CANARY = "gwky-Vb4Nq8Lz2Ws6Xe0Rt5Yu1"
"""The gateway key clients present."""
SECRETS = (CANARY, GATEWAY_CANARY)

# Mapped to the authentication failure it is, then given up on: the client gets the
# aggregate error, whose message quotes the last upstream message.
GIVE_UP_ON_AUTH: dict[str, Any] = {"fallback_on": ["authentication"],
                                   "retry": {"max_attempts_per_target": 1}}

PHASES: dict[str, tuple[bool, dict[str, Any]]] = {
    "json_401": (False, {"kind": "status", "status": 401}),
    "sse_401": (True, {"kind": "status", "status": 401}),
    "sse_error_event": (True, {"kind": "error_event", "status": 401, "after_chunks": 3}),
}


@pytest.fixture
async def canary_sims() -> AsyncIterator[dict[str, RunningSimulator]]:
    """Simulators that accept only the canary key."""
    running: dict[str, RunningSimulator] = {}
    try:
        for dialect in UPSTREAMS:
            running[dialect] = await start_simulator(dialect, SIM_NAME[dialect],
                                                     api_key=CANARY)
        yield running
    finally:
        for sim in running.values():
            await sim.close()


@pytest.fixture
async def leaky(canary_sims: dict[str, RunningSimulator], tmp_path: Path
                ) -> AsyncIterator[Gateway]:
    """A gateway with the canary as every provider's key (from a secret file) and
    `GATEWAY_CANARY` as its own key, logging JSON request lines to a logger."""
    key_file = tmp_path / "provider.key"
    key_file.write_text(CANARY + "\n")
    data = base_config(canary_sims)
    for provider in data["providers"].values():
        provider["api_key"] = {"file": str(key_file)}
    for route in data["routes"].values():
        route["policy"] = GIVE_UP_ON_AUTH
    data["server"] = {"gateway_keys": [{"env": "GW_KEY"}]}
    runtime = compile_data(data, {"GW_KEY": GATEWAY_CANARY})
    engine = Engine(runtime, observers=[JsonLogObserver(logging.getLogger(REQUEST_LOGGER))])
    async with AsyncExitStack() as stack:
        yield await serve(runtime, stack, client_key=GATEWAY_CANARY, engine=engine)


@pytest.fixture
def all_logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    caplog.set_level(logging.DEBUG)  # every logger, debug lines included
    yield caplog


def log_to_stderr(gw: Gateway) -> None:
    """JSON request lines to stderr too. Called in the test itself: pytest swaps the
    captured `sys.stderr` between setup and call."""
    gw.engine.observers.add(JsonLogObserver())


def assert_no_secret(text: str, where: str) -> None:
    for secret in SECRETS:
        # A prefix of MIN_PREFIX characters is in every longer prefix and in the whole key.
        assert secret[:MIN_PREFIX] not in text, f"{where}: {text}"


def assert_logs_clean(caplog: pytest.LogCaptureFixture,
                      capsys: pytest.CaptureFixture[str]) -> None:
    text_format = logging.Formatter("%(levelname)s %(name)s %(message)s")
    json_format = JsonFormatter()
    for record in caplog.records:
        assert_no_secret(text_format.format(record), "text log")
        assert_no_secret(json_format.format(record), "JSON log")
    captured = capsys.readouterr()
    assert '"event":"request"' in captured.err  # the stderr observer did write
    assert_no_secret(captured.out + captured.err, "stdout/stderr")


async def send(gw: Gateway, client: Client, route: str, stream: bool) -> tuple[int, str]:
    """POST a chat request; the status and the whole body (an SSE stream included) as
    text, with the response headers prepended."""
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {gw.client_key}",
               **(ANTHROPIC_VERSION if client == "anthropic" else {})}
    body = orjson.dumps(valid_body(client, route, stream=stream))
    async with gw.http.post(gw.url + ENDPOINT[client], data=body, headers=headers) as reply:
        text = await reply.text()
        return reply.status, f"{dict(reply.headers)}\n{text}"


@pytest.mark.parametrize("echo", ["whole", "prefix"])
@pytest.mark.parametrize("phase", list(PHASES))
@pytest.mark.parametrize("upstream", UPSTREAMS)
async def test_an_echoed_provider_key_reaches_no_client_and_no_log(
        leaky: Gateway, canary_sims: dict[str, RunningSimulator], all_logs: Any,
        capsys: pytest.CaptureFixture[str], upstream: str, phase: str, echo: str) -> None:
    log_to_stderr(leaky)
    stream, fault = PHASES[phase]
    canary_sims[upstream].faults.add(Fault.model_validate(
        {**fault, "echo_key": echo, "times": len(CLIENTS)}))
    for client in CLIENTS:
        status, text = await send(leaky, client, ROUTE[upstream], stream)
        assert status == (200 if phase == "sse_error_event" else 401), text
        if phase == "sse_error_event":
            assert "Hello" in text  # content came first; the error is an in-stream event
        assert f"Incorrect API key provided: {REDACTED}" in text  # still says what happened
        assert_no_secret(text, f"{client} client")
    async with leaky.http.get(leaky.url + "/metrics") as response:
        assert_no_secret(await response.text(), "metrics")
    assert_logs_clean(all_logs, capsys)


@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
async def test_errors_the_engine_raises_hold_no_secret(
        leaky: Gateway, canary_sims: dict[str, RunningSimulator], stream: bool) -> None:
    """In-process (`turnout.Client`) callers get the exception itself: its str, repr,
    args, chain and attempt log must be as clean as what the gateway sends."""
    sim = canary_sims["openai_chat"]
    sim.faults.add(Fault(kind="status", status=401, echo_key="whole"))
    request = ChatRequest(model="oa", messages=[Message("user", [TextPart("hi")])])
    ctx = CallContext()
    with pytest.raises(TurnoutError) as caught:
        if stream:
            outcome = await leaky.engine.stream(request, ctx)
            await outcome.batches.aclose()
        else:
            await leaky.engine.chat(request, ctx)
    errors: list[BaseException] = [caught.value]
    errors += [a.error for a in ctx.attempts if a.error is not None]
    chained = caught.value.__cause__ or caught.value.__context__
    while chained is not None:
        errors.append(chained)
        chained = chained.__cause__ or chained.__context__
    assert len(errors) >= 2  # the aggregate error and the attempt's own
    for error in errors:
        for text in (str(error), repr(error), repr(error.args), repr(vars(error))):
            assert_no_secret(text, type(error).__name__)
    assert REDACTED in str(caught.value)


@pytest.mark.parametrize("quoted", ["gateway_key", "key_prefix_in_param"])
async def test_any_configured_secret_an_upstream_quotes_is_scrubbed(
        leaky: Gateway, canary_sims: dict[str, RunningSimulator], all_logs: Any,
        capsys: pytest.CaptureFixture[str], quoted: str) -> None:
    """Not only the key the upstream was sent: a gateway key forwarded by mistake (in a
    401, which the client gets inside the aggregate error), or a key prefix in the
    structured `param` of a 400 (which the client gets as it is), is scrubbed as well."""
    log_to_stderr(leaky)
    if quoted == "gateway_key":
        status = 401
        error: dict[str, Any] = {"message": f"unknown header x-key: {GATEWAY_CANARY}",
                                 "type": "invalid_request_error", "param": None,
                                 "code": "invalid_api_key"}
    else:
        status = 400
        error = {"message": "Invalid value.", "type": "invalid_request_error",
                 "param": f"key:{CANARY[:MIN_PREFIX + 2]}", "code": "invalid_value"}
    canary_sims["openai_chat"].faults.add(Fault(kind="status", status=status,
                                                body={"error": error}, times=2))
    for stream in (False, True):
        code, text = await send(leaky, "openai", "oa", stream)
        assert code == status, text
        assert REDACTED in text
        assert_no_secret(text, "client")
    assert_logs_clean(all_logs, capsys)


async def test_unconfigured_key_shapes_are_scrubbed(
        leaky: Gateway, canary_sims: dict[str, RunningSimulator]) -> None:
    """Keys the gateway never had (a proxy's, another tenant's) still look like keys."""
    tokens = ["sk-proj-" + "Xy9Z" * 12, "sk-ant-api03-" + "q" * 40, "sk-or-v1-" + "0f" * 20,
              "AIzaSyD" + "k" * 32, "Bearer eyJhbGciOiJIUzI1NiJ9.e30.abc"]
    message = "Rejected credentials: " + ", ".join(tokens)
    canary_sims["anthropic_messages"].faults.add(Fault(
        kind="error_event", status=401, after_chunks=3, message=message))
    status, text = await send(leaky, "openai", "an", True)
    assert status == 200
    assert "Rejected credentials: " in text
    for token in tokens:
        assert token.split()[-1][:12] not in text
