"""TextLogObserver, the default `turnout serve` request log: one `key=value` line per request
and per failover, from a real engine, never a payload, always one line."""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Iterator

import pytest

from turnout.core.errors import AllAttemptsFailed
from turnout.engine.observe import FailoverEvent, RequestEvent
from turnout.observability.logs import (
    REQUEST_LOGGER,
    JsonLogObserver,
    TextLogObserver,
    configure_logging,
    request_log_observer,
)
from turnout.sim.faults import Fault
from turnout.sim.server import RunningSimulator

from .conftest import A, B, EngineFactory, ask, run_stream

PROMPT = "okapi-91d2 secret prompt about the merger"
NUMBER = r"\d+\.\d"


def observer() -> tuple[TextLogObserver, io.StringIO]:
    buffer = io.StringIO()
    return TextLogObserver(buffer), buffer


async def test_request_and_failover_lines(
    make_engine: EngineFactory, sims: dict[str, RunningSimulator]
) -> None:
    logs, buffer = observer()
    engine = await make_engine(logs)
    sims["a"].faults.add(Fault(kind="status", status=503))
    usage = (await engine.chat(ask(PROMPT))).response.usage
    failover, request = buffer.getvalue().splitlines()
    request_id = request.split()[1].removeprefix("request_id=")
    assert request_id.startswith("req_")
    assert failover == (f"failover request_id={request_id} route=r from_deployment={A} "
                        f"to_deployment={B} reason=server_error")
    assert re.fullmatch(
        f"request request_id={request_id} route=r deployment={B} status=200 attempts=2 "
        f"latency_ms={NUMBER} tokens_in={usage.input_tokens} "
        f"tokens_out={usage.output_tokens} stream=false", request), request


async def test_stream_and_failure_lines(
    make_engine: EngineFactory, sims: dict[str, RunningSimulator]
) -> None:
    logs, buffer = observer()
    engine = await make_engine(logs)
    await run_stream(engine, ask(PROMPT))
    for sim in sims.values():
        sim.faults.add(Fault(kind="status", status=500, message=f"echo {PROMPT}", times=-1))
    with pytest.raises(AllAttemptsFailed) as caught:
        await engine.chat(ask(PROMPT))
    streamed, _, failed = buffer.getvalue().splitlines()
    assert re.fullmatch(f"request request_id=req_[0-9a-f]+ route=r deployment={A} status=200 "
                        f"attempts=1 latency_ms={NUMBER} tokens_in=\\d+ tokens_out=\\d+ "
                        f"stream=true ttft_ms={NUMBER}", streamed), streamed
    assert re.fullmatch(f"request request_id=req_[0-9a-f]+ route=r deployment=- "
                        f"status={caught.value.status} attempts=2 latency_ms={NUMBER} "
                        f"tokens_in=- tokens_out=- stream=false "
                        f"error_code={caught.value.code}", failed), failed
    assert "okapi-91d2" not in buffer.getvalue() and "echo" not in buffer.getvalue()


def test_client_chosen_values_cannot_break_the_line() -> None:
    """The route is the model name a client sent: quoted, escaped and cut, never raw."""
    logs, buffer = observer()
    logs.on_request(RequestEvent("req_1", 'gpt"4\nrequest request_id=forged', None, False,
                                 404, 0.002, 0, error_code="model_not_found"))
    logs.on_request(RequestEvent("req_2", "m" * 500, None, False, 404, 0.002, 0))
    first, second = buffer.getvalue().splitlines()
    assert 'route="gpt\\"4\\nrequest request_id=forged" deployment=-' in first
    assert f'route="{"m" * 128}..." deployment=-' in second


def test_a_closed_stream_does_not_raise() -> None:
    logs, buffer = observer()
    buffer.close()
    logs.on_request(RequestEvent("req", "r", None, False, 200, 0.1, 1))
    logs.on_failover(FailoverEvent("req", "r", A, B, "timeout"))


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root, requests = logging.getLogger(), logging.getLogger(REQUEST_LOGGER)
    saved = (root.level, list(root.handlers), requests.level)
    yield
    for handler in root.handlers:
        handler.close()
    root.handlers[:] = saved[1]
    root.setLevel(saved[0])
    requests.setLevel(saved[2])


@pytest.mark.usefixtures("restore_logging")
def test_serve_logs_requests_in_text_mode_too() -> None:
    """What `turnout serve` sets up without `--log-format json`: request lines at INFO and
    failover lines at WARNING reach the text log."""
    buffer = io.StringIO()
    configure_logging(logging.INFO, json=False, stream=buffer)
    logs = request_log_observer(json=False)
    assert isinstance(logs, TextLogObserver)
    assert isinstance(request_log_observer(json=True), JsonLogObserver)
    logs.on_request(RequestEvent("req_9", "r", "key-0", False, 200, 0.0125, 1, deployment=A))
    logs.on_failover(FailoverEvent("req_9", "r", A, B, "timeout"))
    assert buffer.getvalue().splitlines() == [
        f"request request_id=req_9 route=r deployment={A} status=200 attempts=1 "
        "latency_ms=12.5 tokens_in=- tokens_out=- stream=false",
        f"failover request_id=req_9 route=r from_deployment={A} to_deployment={B} "
        "reason=timeout",
    ]
    logging.getLogger(REQUEST_LOGGER).setLevel(logging.WARNING)
    logs.on_request(RequestEvent("req_10", "r", None, False, 200, 0.1, 1))
    assert "req_10" not in buffer.getvalue()
