"""The pipeline behind the HTTP shell: the gateway keys are an authenticate stage checked
before the body is read, the same stages run in-process, and a stage's end-of-call hook
hears a client that leaves mid-stream."""

from __future__ import annotations

from contextlib import AsyncExitStack

import orjson
import pytest
from _gw_errors import CLIENTS, ENDPOINT, Client, error_of, post, valid_body
from _gw_harness import ROUTE, SleepProbe, base_config, compile_data, serve
from test_gateway_disconnect import eventually, headers_for

import turnout
from turnout.config.runtime import RuntimeConfig
from turnout.core.errors import AuthenticationFailed, ClientClosed
from turnout.engine.engine import Engine
from turnout.engine.pipeline import Call, CallEnd, Stage
from turnout.sim import Fault
from turnout.sim.server import RunningSimulator

KEY = "gw-pipeline-key-0123456789abcdef0123"


def keyed_runtime(sims: dict[str, RunningSimulator]) -> RuntimeConfig:
    data = base_config(sims)
    data["server"] = {"gateway_keys": [{"env": "GW_KEY"}]}
    return compile_data(data, {"GW_KEY": KEY})


@pytest.mark.parametrize("client", CLIENTS)
async def test_a_keyless_request_is_refused_before_its_body_is_read(
        sims: dict[str, RunningSimulator], client: Client) -> None:
    async with AsyncExitStack() as stack:
        gw = await serve(keyed_runtime(sims), stack, client_key=KEY)
        reply = await post(gw, client, b"{not json", {})
        error_of(client, reply, 401)  # not a 400 about the JSON: nobody parsed it


async def test_in_process_calls_run_the_same_authenticate_stage(
        sims: dict[str, RunningSimulator]) -> None:
    messages = [{"role": "user", "content": "hi"}]
    async with turnout.Client(keyed_runtime(sims)) as owner:  # the config's owner: no key
        assert "You said: hi" in (await owner.chat(model="oa", messages=messages)).text()
    async with turnout.Client(keyed_runtime(sims), api_key="wrong") as stranger:
        with pytest.raises(AuthenticationFailed):
            await stranger.chat(model="oa", messages=messages)
        with pytest.raises(AuthenticationFailed):
            async for _ in stranger.stream(model="oa", messages=messages):
                pass
    async with turnout.Client(keyed_runtime(sims), api_key=KEY) as keyed:
        answer = await keyed.chat(model="oa", messages=messages)
        assert "You said: hi" in answer.text()


class Ends(Stage):
    name = "ends"

    def __init__(self) -> None:
        self.ends: list[CallEnd] = []

    async def on_end(self, call: Call, end: CallEnd) -> None:
        self.ends.append(end)


@pytest.mark.parametrize("client", CLIENTS)
async def test_the_end_hook_hears_a_client_leaving_mid_stream(
        sims: dict[str, RunningSimulator], sleep_probe: SleepProbe, client: Client) -> None:
    sleep_probe.instant = 2
    sims["openai_chat"].faults.add(Fault(kind="slow_chunks", seconds=60))
    stage = Ends()
    runtime = compile_data(base_config(sims))
    async with AsyncExitStack() as stack:
        gw = await serve(runtime, stack, engine=Engine(runtime, stages=[stage]))
        body = orjson.dumps(valid_body(client, ROUTE["openai_chat"], stream=True))
        response = await gw.http.post(gw.url + ENDPOINT[client], data=body,
                                      headers=headers_for(client))
        try:
            assert response.status == 200
            assert b"Hello" in await response.content.readany()
            assert stage.ends == []
        finally:
            response.close()
        await eventually(lambda: len(stage.ends) == 1)
        assert len(stage.ends) == 1 and isinstance(stage.ends[0].error, ClientClosed)
        assert stage.ends[0].deployment is not None
