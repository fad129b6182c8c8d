"""`GET /metrics` on the gateway app, and the `--log-format` flag of `turnout serve`."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter

from turnout import cli
from turnout.config.runtime import RuntimeConfig
from turnout.gateway.app import METRICS, create_gateway
from turnout.observability.handler import metrics_handler
from turnout.observability.logs import JsonLogObserver
from turnout.sim.faults import Fault
from turnout.sim.server import RunningSimulator

from .conftest import A, B, parse_exposition, value

PROMPT = "gateway-prompt-5521 do not log me"

# Until the gateway registers its chat handlers as coroutine functions, aiohttp 3.14 warns
# about them (the /metrics handler is one: it is tested below without this filter).
ignore_bare_handlers = pytest.mark.filterwarnings(
    "ignore:Bare functions are deprecated, use async ones:DeprecationWarning")


@pytest.fixture
async def gateway(runtime: RuntimeConfig) -> AsyncIterator[tuple[TestClient[Any, Any],
                                                                  io.StringIO]]:
    buffer = io.StringIO()
    app = create_gateway(runtime, observers=[JsonLogObserver(buffer)])
    async with TestClient(TestServer(app)) as client:
        yield client, buffer


@ignore_bare_handlers
async def test_metrics_endpoint_after_a_failover(
    gateway: tuple[TestClient[Any, Any], io.StringIO], sims: dict[str, RunningSimulator]
) -> None:
    client, logs = gateway
    sims["a"].faults.add(Fault(kind="status", status=502))
    reply = await client.post("/v1/chat/completions", json={
        "model": "r", "messages": [{"role": "user", "content": PROMPT}]})
    assert reply.status == 200
    body = await reply.json()
    assert PROMPT in body["choices"][0]["message"]["content"]

    scraped = await client.get("/metrics")
    assert scraped.status == 200
    assert scraped.headers["Content-Type"] == CONTENT_TYPE_LATEST
    s = parse_exposition(await scraped.text())
    assert value(s, "turnout_requests_total",
                 {"route": "r", "status": 200, "stream": "false"}) == 1
    assert value(s, "turnout_failovers_total", {"route": "r", "reason": "server_error"}) == 1
    assert value(s, "turnout_attempts_total", {
        "deployment": B, "provider": "b", "kind": "fallback", "outcome": "ok",
        "reason": ""}) == 1
    for deployment in (A, B):
        assert value(s, "turnout_breaker_state", {"deployment": deployment}) == 0
        assert value(s, "turnout_deployment_in_flight", {"deployment": deployment}) == 0
    assert value(s, "turnout_tokens_total", {"route": "r", "direction": "output"}) == (
        body["usage"]["completion_tokens"])

    # The extra observer got the same request, without its payload.
    failover, request = (orjson.loads(line) for line in logs.getvalue().splitlines())
    assert failover["event"] == "failover" and request["event"] == "request"
    assert request["request_id"] == failover["request_id"]
    assert "gateway-prompt-5521" not in logs.getvalue()


@ignore_bare_handlers
async def test_each_gateway_has_its_own_metrics(runtime: RuntimeConfig) -> None:
    first, second = create_gateway(runtime), create_gateway(runtime)
    assert first[METRICS].registry is not second[METRICS].registry


async def test_metrics_handler_serves_a_registry() -> None:
    registry = CollectorRegistry()
    Counter("demo_events_total", "Demo.", registry=registry).inc(3)
    app = web.Application()
    app.router.add_get("/metrics", metrics_handler(registry))
    async with TestClient(TestServer(app)) as client:
        reply = await client.get("/metrics")
        assert reply.headers["Content-Type"] == CONTENT_TYPE_LATEST
        assert value(parse_exposition(await reply.text()), "demo_events_total") == 3
        assert (await client.post("/metrics")).status == 405


@pytest.mark.parametrize(("argv", "expected"), [
    ([], "text"), (["--log-format", "json"], "json"), (["--log-format", "text"], "text")])
def test_serve_log_format_flag(monkeypatch: pytest.MonkeyPatch, argv: list[str],
                               expected: str) -> None:
    seen: list[str] = []

    def fake_serve(*args: str | int | None) -> int:
        seen.append(str(args[-1]))
        return 0

    monkeypatch.setattr(cli, "_serve", fake_serve)
    assert cli.main(["serve", *argv]) == 0
    assert seen == [expected]


def test_serve_rejects_an_unknown_log_format(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(["serve", "--log-format", "xml"])
    assert exited.value.code == 2
    assert "--log-format" in capsys.readouterr().err
