"""The control API (`/_sim/...`), `times` and `match` over HTTP, and the request log."""

from __future__ import annotations

import json

import aiohttp

from turnout.sim.faults import Fault
from turnout.sim.server import RunningSimulator, start_simulator

AUTH = {"Authorization": "Bearer k"}


def body(model: str = "gpt-x", stream: bool = False) -> dict[str, object]:
    return {"model": model, "messages": [{"role": "user", "content": "hi"}], "stream": stream}


async def chat_status(http: aiohttp.ClientSession, sim: RunningSimulator, model: str = "gpt-x",
                      stream: bool = False) -> int:
    async with http.post(sim.base_url + "/chat/completions", json=body(model, stream),
                         headers=AUTH) as resp:
        await resp.read()
        return resp.status


async def test_post_faults_list_times_and_fifo(openai_sim: RunningSimulator,
                                               http: aiohttp.ClientSession) -> None:
    faults = [{"kind": "status", "status": 500, "times": 2}, {"kind": "status", "status": 503}]
    async with http.post(openai_sim.url + "/_sim/faults", json=faults) as resp:
        assert resp.status == 200
        assert (await resp.json())["queued"] == 2
    statuses = [await chat_status(http, openai_sim) for _ in range(4)]
    assert statuses == [500, 500, 503, 200]


async def test_match_by_model_and_stream(openai_sim: RunningSimulator,
                                         http: aiohttp.ClientSession) -> None:
    faults = [{"kind": "status", "status": 429, "match": {"model": "gpt-b"}, "times": -1},
              {"kind": "status", "status": 503, "match": {"stream": True}}]
    async with http.post(openai_sim.url + "/_sim/faults", json=faults) as resp:
        assert resp.status == 200
    assert await chat_status(http, openai_sim, "gpt-a") == 200
    assert await chat_status(http, openai_sim, "gpt-b") == 429
    assert await chat_status(http, openai_sim, "gpt-b") == 429  # times=-1
    assert await chat_status(http, openai_sim, "gpt-a", stream=True) == 503
    assert await chat_status(http, openai_sim, "gpt-a", stream=True) == 200
    async with http.get(openai_sim.url + "/_sim/faults") as resp:
        pending = await resp.json()
    assert [(p["fault"]["status"], p["remaining"]) for p in pending] == [(429, -1)]
    async with http.delete(openai_sim.url + "/_sim/faults") as resp:
        assert resp.status == 200
    assert await chat_status(http, openai_sim, "gpt-b") == 200


async def test_invalid_fault_is_rejected(openai_sim: RunningSimulator,
                                         http: aiohttp.ClientSession) -> None:
    for bad in ({"kind": "status"}, {"kind": "nope"}, [{"kind": "reset", "extra": 1}]):
        async with http.post(openai_sim.url + "/_sim/faults", json=bad) as resp:
            assert resp.status == 400
            assert "message" in (await resp.json())["error"]
    assert len(openai_sim.faults) == 0


async def test_request_log(openai_sim: RunningSimulator, http: aiohttp.ClientSession) -> None:
    openai_sim.faults.add(_status(418))
    await chat_status(http, openai_sim)
    async with http.post(openai_sim.base_url + "/chat/completions?trace=1",
                         json=body("gpt-y"), headers={**AUTH, "X-Custom": "Yes"}) as resp:
        assert resp.status == 200
    async with http.get(openai_sim.url + "/_sim/requests") as resp:
        log = await resp.json()
    assert len(log) == 2  # control calls are not logged
    first, second = log
    assert first["fault"] == "status" and second["fault"] is None
    assert second["method"] == "POST"
    assert second["path"] == "/v1/chat/completions"
    assert second["query"] == {"trace": "1"}
    assert second["headers"]["authorization"] == "Bearer k"
    assert second["headers"]["x-custom"] == "Yes"
    assert second["body"] == body("gpt-y")
    assert second["time"] >= first["time"] > 0
    assert [r.body["model"] for r in openai_sim.requests] == ["gpt-x", "gpt-y"]

    async with http.delete(openai_sim.url + "/_sim/requests") as resp:
        assert resp.status == 200
    assert openai_sim.requests == []


async def test_reset_clears_faults_and_log(openai_sim: RunningSimulator,
                                           http: aiohttp.ClientSession) -> None:
    await chat_status(http, openai_sim)
    openai_sim.faults.add(_status(500))
    async with http.post(openai_sim.url + "/_sim/reset") as resp:
        assert resp.status == 200
    assert len(openai_sim.faults) == 0 and openai_sim.requests == []
    assert await chat_status(http, openai_sim) == 200


async def test_recording_can_be_off(http: aiohttp.ClientSession) -> None:
    sim = await start_simulator("openai_chat", "fast", record_requests=False)
    try:
        assert await chat_status(http, sim) == 200
        assert sim.requests == []
    finally:
        await sim.close()


async def test_api_key_checked_when_configured(http: aiohttp.ClientSession) -> None:
    sim = await start_simulator("openai_chat", "keyed", api_key="right")
    try:
        url = sim.base_url + "/chat/completions"
        async with http.post(url, json=body(), headers={"Authorization": "Bearer wrong"}) as r:
            assert r.status == 401
        async with http.post(url, json=body(), headers={"Authorization": "Bearer right"}) as r:
            assert r.status == 200
            assert json.loads(await r.read())["choices"][0]["message"]["content"].startswith(
                "Hello from keyed (gpt-x)")
    finally:
        await sim.close()


def _status(status: int) -> Fault:
    return Fault(kind="status", status=status)
