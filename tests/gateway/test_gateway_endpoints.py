"""`GET /v1/models` and `GET /v1/models/{id}` through both SDKs, and the `/healthz` and
`/readyz` probes."""

from __future__ import annotations

from contextlib import AsyncExitStack
from datetime import UTC, datetime
from pathlib import Path

import anthropic
import openai
import pytest
from _gw_harness import Gateway, MakeGateway, base_config, compile_data, serve

from turnout.sim.server import RunningSimulator

ALIASES = ["an", "gm", "oa"]


async def test_openai_sdk_lists_routes(gateway: Gateway) -> None:
    models = [m async for m in gateway.openai.models.list()]
    assert [m.id for m in models] == ALIASES
    assert all(m.object == "model" and m.owned_by for m in models)
    assert all(isinstance(m.created, int) for m in models)


async def test_anthropic_sdk_lists_routes(gateway: Gateway) -> None:
    page = await gateway.anthropic.models.list()
    assert [m.id for m in page.data] == ALIASES
    assert all(m.type == "model" and m.display_name for m in page.data)
    assert page.has_more is False
    assert page.first_id == "an" and page.last_id == "oa"
    # Iterating follows pagination: it must stop after the one page.
    assert [m.id async for m in await gateway.anthropic.models.list()] == ALIASES


async def test_health_probes(gateway: Gateway) -> None:
    async with gateway.http.get(gateway.url + "/healthz") as response:
        assert response.status == 200
        assert await response.json() == {"status": "ok"}
    async with gateway.http.head(gateway.url + "/healthz") as response:
        assert response.status == 200
    async with gateway.http.get(gateway.url + "/readyz") as response:
        assert response.status == 200
        # No local model configured: nothing can be unready.
        assert await response.json() == {"status": "ready", "components": {}}


async def test_readyz_reports_a_local_model_that_failed_to_start(
        tmp_path: Path, sims: dict[str, RunningSimulator]) -> None:
    """A local model that cannot load is visible in `/readyz` (503) once it was tried; the
    remote routes keep working."""
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"not a gguf model" * 64)
    data = base_config(sims)
    data["local"] = {"model_path": str(broken)}
    async with AsyncExitStack() as stack:
        gw = await serve(compile_data(data), stack)
        async with gw.http.get(gw.url + "/readyz") as response:
            assert response.status == 200
            assert await response.json() == {
                "status": "ready", "components": {"local:local": "stopped"}}
        try:
            await gw.openai.chat.completions.create(
                model="local", messages=[{"role": "user", "content": "hi"}], max_tokens=4)
        except openai.APIStatusError as error:
            assert error.status_code == 503
            # After the retries the aggregate error names the cause's code (its message,
            # which names the file, stays in the attempt log).
            assert "service_unavailable" in error.message
        else:
            raise AssertionError("a model that cannot load answered")
        async with gw.http.get(gw.url + "/readyz") as response:
            assert response.status == 503
            body = await response.json()
        assert body["status"] == "unavailable"
        assert body["components"]["local:local"].startswith("failed: ")
        answer = await gw.openai.chat.completions.create(
            model="oa", messages=[{"role": "user", "content": "hi"}])
        assert answer.choices[0].message.content


async def test_models_follow_the_callers_dialect(make_gateway: MakeGateway) -> None:
    gw = await make_gateway()
    async with gw.http.get(gw.url + "/v1/models") as response:
        body = await response.json()
    assert body["object"] == "list"
    async with gw.http.get(gw.url + "/v1/models",
                           headers={"anthropic-version": "2023-06-01"}) as response:
        body = await response.json()
    assert "object" not in body and body["has_more"] is False


async def test_openai_sdk_retrieves_an_alias(gateway: Gateway) -> None:
    model = await gateway.openai.models.retrieve("gm")
    assert (model.id, model.object, model.owned_by) == ("gm", "model", "turnout")
    assert isinstance(model.created, int)


async def test_anthropic_sdk_retrieves_an_alias(gateway: Gateway) -> None:
    model = await gateway.anthropic.models.retrieve("an")
    assert (model.id, model.type, model.display_name) == ("an", "model", "an")
    assert model.created_at == datetime(1970, 1, 1, tzinfo=UTC)
    assert model.lifecycle == "active"


async def test_an_unknown_model_is_404_in_the_callers_dialect(gateway: Gateway) -> None:
    with pytest.raises(openai.NotFoundError) as oa:
        await gateway.openai.models.retrieve("no-such-alias")
    assert oa.value.code == "model_not_found" and oa.value.param == "model"
    assert "'no-such-alias' does not exist" in oa.value.message
    with pytest.raises(anthropic.NotFoundError) as an:
        await gateway.anthropic.models.retrieve("no-such-alias")
    assert an.value.body["type"] == "error"
    assert an.value.body["error"]["type"] == "not_found_error"


async def test_aliases_with_slashes_are_retrieved(sims: dict[str, RunningSimulator]) -> None:
    """OpenRouter-style aliases (`vendor/model`): the SDK sends the slash as %2F."""
    data = base_config(sims)
    data["routes"]["team/fast"] = data["routes"]["oa"]
    async with AsyncExitStack() as stack:
        gw = await serve(compile_data(data), stack)
        assert (await gw.openai.models.retrieve("team/fast")).id == "team/fast"
        assert (await gw.anthropic.models.retrieve("team/fast")).id == "team/fast"
        async with gw.http.get(gw.url + "/v1/models/team/fast") as response:
            assert response.status == 200
            assert (await response.json())["id"] == "team/fast"


async def test_retrieving_a_model_needs_the_gateway_key(make_gateway: MakeGateway) -> None:
    gw = await make_gateway(server={"gateway_keys": [{"env": "GW_KEY"}]},
                            env={"GW_KEY": "client-key"})
    assert (await gw.openai.models.retrieve("oa")).id == "oa"
    assert (await gw.anthropic.models.retrieve("oa")).id == "oa"
    wrong_openai = openai.AsyncOpenAI(base_url=f"{gw.url}/v1", api_key="nope", max_retries=0)
    wrong_anthropic = anthropic.AsyncAnthropic(base_url=gw.url, api_key="nope", max_retries=0)
    try:
        # 401 before the lookup: a caller without a key cannot probe which aliases exist.
        for alias in ("oa", "no-such-alias"):
            with pytest.raises(openai.AuthenticationError):
                await wrong_openai.models.retrieve(alias)
            with pytest.raises(anthropic.AuthenticationError) as denied:
                await wrong_anthropic.models.retrieve(alias)
            assert denied.value.body["error"]["type"] == "authentication_error"
    finally:
        await wrong_openai.close()
        await wrong_anthropic.close()
