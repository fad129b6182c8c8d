"""JsonLogObserver lines from a real engine: fields, levels, and never a payload."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import orjson
import pytest

from turnout.core.errors import AllAttemptsFailed
from turnout.engine.observe import FailoverEvent, RequestEvent
from turnout.observability.logs import (
    REQUEST_LOGGER,
    JsonFormatter,
    JsonLogObserver,
    configure_logging,
)
from turnout.sim.faults import Fault
from turnout.sim.server import RunningSimulator

from .conftest import A, B, EngineFactory, ask, run_stream

PROMPT = "zebra-7f3c secret prompt about the quarterly numbers"
WALL = 1_700_000_000.25

REQUEST_FIELDS = {
    "ts", "level", "event", "request_id", "route", "principal", "stream", "status",
    "latency_ms", "ttft_ms", "attempts", "deployment", "error_code", "tokens_in",
    "tokens_out",
}


def lines(buffer: io.StringIO) -> list[dict[str, Any]]:
    text = buffer.getvalue()
    assert text.endswith("\n")
    return [orjson.loads(line) for line in text.splitlines()]


def observer() -> tuple[JsonLogObserver, io.StringIO]:
    buffer = io.StringIO()
    return JsonLogObserver(buffer, wall_clock=lambda: WALL), buffer


async def test_request_and_failover_lines(
    make_engine: EngineFactory, sims: dict[str, RunningSimulator]
) -> None:
    logs, buffer = observer()
    engine = await make_engine(logs)
    sims["a"].faults.add(Fault(kind="status", status=503))
    outcome = await engine.chat(ask(PROMPT))
    failover, request = lines(buffer)

    assert failover == {
        "ts": failover["ts"], "level": "warning", "event": "failover",
        "request_id": request["request_id"], "route": "r", "from_deployment": A,
        "to_deployment": B, "reason": "server_error",
    }
    assert set(request) == REQUEST_FIELDS
    usage = outcome.response.usage
    assert request["level"] == "info"
    assert request["event"] == "request"
    assert request["request_id"].startswith("req_")
    assert (request["route"], request["stream"], request["status"]) == ("r", False, 200)
    assert (request["attempts"], request["deployment"]) == (2, B)
    assert request["principal"] is None and request["error_code"] is None
    assert request["ttft_ms"] is None
    assert request["latency_ms"] >= 0
    assert (request["tokens_in"], request["tokens_out"]) == (usage.input_tokens,
                                                             usage.output_tokens)
    stamp = datetime.fromisoformat(request["ts"].replace("Z", "+00:00"))
    assert request["ts"].endswith("Z")
    assert stamp.timestamp() == WALL


async def test_no_prompt_completion_or_error_message_is_logged(
    make_engine: EngineFactory, sims: dict[str, RunningSimulator]
) -> None:
    logs, buffer = observer()
    engine = await make_engine(logs)
    # Upstream error messages may quote the prompt: they must not reach the log either.
    sims["a"].faults.add(Fault(kind="status", status=500, message=f"cannot do {PROMPT}"))
    completion = (await engine.chat(ask(PROMPT))).response.text()
    streamed = (await run_stream(engine, ask(PROMPT))).response.text()
    for sim in sims.values():
        sim.faults.add(Fault(kind="status", status=500, message=f"bad: {PROMPT}", times=-1))
    with pytest.raises(AllAttemptsFailed) as caught:
        await engine.chat(ask(PROMPT))
    text = buffer.getvalue()
    assert len(text.splitlines()) == 3 + 2  # three requests, two failovers
    assert completion and PROMPT in completion  # the simulator echoes the prompt back...
    assert streamed and PROMPT in streamed
    assert "zebra-7f3c" not in text  # ... but the log never holds it
    assert "cannot do" not in text and "bad:" not in text
    assert str(caught.value) not in text


async def test_failed_request_line_has_code_and_status(
    make_engine: EngineFactory, sims: dict[str, RunningSimulator]
) -> None:
    logs, buffer = observer()
    engine = await make_engine(logs)
    for sim in sims.values():
        sim.faults.add(Fault(kind="status", status=500, times=-1))
    with pytest.raises(AllAttemptsFailed) as caught:
        await engine.chat(ask())
    request = lines(buffer)[-1]
    assert request["error_code"] == caught.value.code
    assert request["status"] == caught.value.status
    assert request["deployment"] is None
    assert request["attempts"] == 2


async def test_stream_line_has_ttft(make_engine: EngineFactory) -> None:
    logs, buffer = observer()
    engine = await make_engine(logs)
    await run_stream(engine, ask())
    (request,) = lines(buffer)
    assert request["stream"] is True
    assert isinstance(request["ttft_ms"], float) and request["ttft_ms"] >= 0
    assert request["deployment"] == A
    assert request["tokens_out"] > 0


def test_a_closed_stream_does_not_raise() -> None:
    buffer = io.StringIO()
    logs = JsonLogObserver(buffer)
    buffer.close()
    logs.on_request(RequestEvent("req", "r", None, False, 200, 0.1, 1))
    logs.on_failover(FailoverEvent("req", "r", A, B, "timeout"))


@pytest.fixture
def request_logger() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    """The request logger with a JSON handler of its own (not the root's)."""
    logger = logging.getLogger(REQUEST_LOGGER)
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(JsonFormatter())
    saved = (logger.level, logger.propagate)
    logger.addHandler(handler)
    logger.propagate = False
    yield logger, buffer
    logger.removeHandler(handler)
    logger.setLevel(saved[0])
    logger.propagate = saved[1]


def test_logger_target_writes_bare_json_lines(
    request_logger: tuple[logging.Logger, io.StringIO]
) -> None:
    logger, buffer = request_logger
    logger.setLevel(logging.INFO)
    logs = JsonLogObserver(logger, wall_clock=lambda: WALL)
    logs.on_request(RequestEvent("req_1", "r", "team-a", True, 200, 1.5, 1, deployment=A,
                                 ttft_s=0.25))
    logs.on_failover(FailoverEvent("req_1", "r", A, B, "timeout"))
    request, failover = lines(buffer)
    assert set(request) == REQUEST_FIELDS
    assert (request["principal"], request["latency_ms"], request["ttft_ms"]) == (
        "team-a", 1500.0, 250.0)
    assert request["tokens_in"] is None
    assert (failover["level"], failover["reason"]) == ("warning", "timeout")


def test_logger_level_filters_request_lines(
    request_logger: tuple[logging.Logger, io.StringIO]
) -> None:
    logger, buffer = request_logger
    logger.setLevel(logging.WARNING)
    logs = JsonLogObserver(logger)
    logs.on_request(RequestEvent("req_1", "r", None, False, 200, 0.1, 1))
    logs.on_failover(FailoverEvent("req_1", "r", A, B, "rate_limited"))
    (only,) = lines(buffer)
    assert only["event"] == "failover"


@pytest.fixture
def restore_root_logging() -> Iterator[None]:
    root = logging.getLogger()
    saved = (root.level, list(root.handlers))
    yield
    for handler in root.handlers:
        handler.close()
    root.handlers[:] = saved[1]
    root.setLevel(saved[0])


@pytest.mark.usefixtures("restore_root_logging")
def test_configure_logging_json_formats_every_record() -> None:
    buffer = io.StringIO()
    configure_logging("INFO", json=True, stream=buffer)
    logging.getLogger("aiohttp.server").warning("port %d busy", 4000)
    logging.getLogger("somewhere").debug("below the level")
    JsonLogObserver(logging.getLogger(REQUEST_LOGGER)).on_failover(
        FailoverEvent("req_2", "r", A, B, "timeout"))
    other, failover = lines(buffer)
    assert (other["level"], other["logger"], other["message"]) == (
        "warning", "aiohttp.server", "port 4000 busy")
    assert failover["event"] == "failover" and failover["request_id"] == "req_2"


@pytest.mark.usefixtures("restore_root_logging")
def test_configure_logging_text_keeps_bare_messages() -> None:
    buffer = io.StringIO()
    configure_logging(logging.INFO, json=False, stream=buffer)
    logging.getLogger("somewhere").info("hello %s", "there")
    assert buffer.getvalue() == "hello there\n"


def test_timestamps_follow_the_wall_clock_across_seconds() -> None:
    times = iter([1_699_999_999.9996, 1_700_000_000.0, 1_700_000_061.5, 1_700_000_061.999])
    buffer = io.StringIO()
    logs = JsonLogObserver(buffer, wall_clock=lambda: next(times))
    for _ in range(4):
        logs.on_failover(FailoverEvent("req", "r", A, B, "timeout"))
    stamps = [line["ts"] for line in lines(buffer)]
    assert stamps == [
        "2023-11-14T22:13:19.999Z",  # truncated to the millisecond, like datetime
        "2023-11-14T22:13:20.000Z",
        "2023-11-14T22:14:21.500Z",
        "2023-11-14T22:14:21.999Z",
    ]
