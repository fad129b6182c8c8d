"""Who may read `/metrics` and the details of `/readyz`: nobody without a key once the
gateway has keys (a dedicated `server.metrics_key`, else the gateway keys), everybody with
`server.public_metrics: true`; `/healthz` and the readiness status stay open and bare."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest
from _gw_harness import Gateway, MakeGateway

from turnout.config import ConfigError

GATEWAY_KEY = "gw-key-7c1d0e5b9a8f4e2d9c3b1a0f6e5d4c3b2a19"
METRICS_KEY = "metrics-key-3f2e1d0c9b8a7f6e5d4c3b2a1f0e9d8c"
KEYS = {"GW_KEY": GATEWAY_KEY, "METRICS_KEY": METRICS_KEY}


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def get(gw: Gateway, path: str, headers: Mapping[str, str] | None = None
              ) -> tuple[int, str, dict[str, str]]:
    async with gw.http.get(gw.url + path, headers=headers or {}) as response:
        return response.status, await response.text(), dict(response.headers)


async def gateway_with(make_gateway: MakeGateway, **server: Any) -> Gateway:
    return await make_gateway(server={"gateway_keys": [{"env": "GW_KEY"}], **server},
                              env=KEYS, client_key=GATEWAY_KEY)


async def test_metrics_take_a_gateway_key(make_gateway: MakeGateway) -> None:
    gw = await gateway_with(make_gateway)
    await gw.openai.chat.completions.create(
        model="oa", messages=[{"role": "user", "content": "hi"}])
    for headers in ({}, bearer("wrong"), {"x-api-key": GATEWAY_KEY[:-1]}):
        status, body, response_headers = await get(gw, "/metrics", headers)
        assert status == 401, headers
        assert response_headers["WWW-Authenticate"] == "Bearer"
        assert "authentication_error" in body
        assert "turnout_" not in body and "oa" not in body
    for headers in (bearer(GATEWAY_KEY), {"x-api-key": GATEWAY_KEY}):
        status, body, _ = await get(gw, "/metrics", headers)
        assert status == 200
        assert 'turnout_requests_total{route="oa",status="200",stream="false"} 1.0' in body


async def test_a_metrics_key_replaces_the_gateway_keys(make_gateway: MakeGateway) -> None:
    """A scraper's key opens monitoring only, and a client's key no longer does."""
    gw = await gateway_with(make_gateway, metrics_key={"env": "METRICS_KEY"})
    assert (await get(gw, "/metrics"))[0] == 401
    assert (await get(gw, "/metrics", bearer(GATEWAY_KEY)))[0] == 401
    status, body, _ = await get(gw, "/metrics", bearer(METRICS_KEY))
    assert status == 200 and "turnout_breaker_state" in body
    assert (await get(gw, "/metrics", {"x-api-key": METRICS_KEY}))[0] == 200
    # The metrics key is not a client key.
    async with gw.http.post(gw.url + "/v1/chat/completions", headers=bearer(METRICS_KEY),
                            json={"model": "oa", "messages": [
                                {"role": "user", "content": "hi"}]}) as response:
        assert response.status == 401


async def test_public_metrics_opt_out(make_gateway: MakeGateway) -> None:
    gw = await gateway_with(make_gateway, public_metrics=True)
    status, body, _ = await get(gw, "/metrics")
    assert status == 200 and "turnout_requests_total" in body
    status, body, _ = await get(gw, "/readyz")
    assert status == 200 and '"components"' in body


async def test_readyz_details_take_the_key_its_status_does_not(
        make_gateway: MakeGateway) -> None:
    gw = await gateway_with(make_gateway, metrics_key={"env": "METRICS_KEY"})
    for headers in ({}, bearer("wrong"), bearer(GATEWAY_KEY)):
        status, body, _ = await get(gw, "/readyz", headers)
        assert (status, body) == (200, '{"status":"ready"}'), headers
    status, body, _ = await get(gw, "/readyz", bearer(METRICS_KEY))
    assert (status, body) == (200, '{"status":"ready","components":{}}')


@pytest.mark.parametrize("server", [{}, {"metrics_key": {"env": "METRICS_KEY"}},
                                    {"public_metrics": True}], ids=["keys", "metrics_key",
                                                                    "public"])
async def test_healthz_is_open_and_says_nothing(make_gateway: MakeGateway,
                                                server: dict[str, Any]) -> None:
    gw = await gateway_with(make_gateway, **server)
    status, body, _ = await get(gw, "/healthz")
    assert (status, body) == (200, '{"status":"ok"}')


async def test_without_any_key_monitoring_is_open_as_chat_is(gateway: Gateway) -> None:
    """A gateway without keys serves loopback only and authenticates nobody."""
    assert (await get(gateway, "/metrics"))[0] == 200
    assert (await get(gateway, "/readyz"))[1] == '{"status":"ready","components":{}}'


async def test_an_unset_metrics_key_variable_is_a_config_error(
        make_gateway: MakeGateway) -> None:
    with pytest.raises(ConfigError) as error:
        await make_gateway(server={"metrics_key": {"env": "NO_SUCH_METRICS_KEY"}})
    assert "server.metrics_key: environment variable NO_SUCH_METRICS_KEY is not set" in str(
        error.value)
