"""Every fault kind, observed the way a client sees it (OpenAI SDK and raw aiohttp)."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import TYPE_CHECKING

import aiohttp
import openai
import pytest
from aiohttp import web

from turnout.sim.app import create_simulator_app
from turnout.sim.faults import Fault
from turnout.sim.server import RunningSimulator, start_simulator
from turnout.sim.state import SIMULATOR

if TYPE_CHECKING:
    from conftest import FakeSleep

HEADERS = {"Authorization": "Bearer k"}
HELLO = "Hello from openai-a (gpt-x). You said: hi"


def client(sim: RunningSimulator, timeout: float = 30) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=sim.base_url, api_key="k", max_retries=0,
                              timeout=timeout)


def chat_body(stream: bool = False) -> dict[str, object]:
    return {"model": "gpt-x", "messages": [{"role": "user", "content": "hi"}], "stream": stream}


async def ask(oa: openai.AsyncOpenAI) -> str | None:
    completion = await oa.chat.completions.create(
        model="gpt-x", messages=[{"role": "user", "content": "hi"}])
    return completion.choices[0].message.content


async def raw_stream(http: aiohttp.ClientSession, sim: RunningSimulator) -> bytes:
    async with http.post(sim.base_url + "/chat/completions", json=chat_body(True),
                         headers=HEADERS) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/event-stream")
        return await resp.read()


def data_lines(raw: bytes) -> list[bytes]:
    return [line[6:] for line in raw.split(b"\n") if line.startswith(b"data: ")]


async def test_status_with_retry_after(openai_sim: RunningSimulator) -> None:
    openai_sim.faults.add(Fault(kind="status", status=429, headers={"Retry-After": "7"}))
    async with client(openai_sim) as oa:
        with pytest.raises(openai.RateLimitError) as caught:
            await ask(oa)
        assert caught.value.response.headers["retry-after"] == "7"
        assert await ask(oa) == HELLO  # times=1: the next request is answered


async def test_status_with_custom_body(openai_sim: RunningSimulator,
                                       http: aiohttp.ClientSession) -> None:
    openai_sim.faults.add(Fault(kind="status", status=502, body="<html>bad gateway</html>",
                                headers={"Content-Type": "text/html"}))
    async with http.post(openai_sim.base_url + "/chat/completions", json=chat_body(),
                         headers=HEADERS) as resp:
        assert resp.status == 502
        assert resp.headers["Content-Type"].startswith("text/html")
        assert await resp.text() == "<html>bad gateway</html>"


async def test_hang_is_detected_by_a_client_timeout(openai_sim: RunningSimulator) -> None:
    openai_sim.faults.add(Fault(kind="hang"))
    async with client(openai_sim, timeout=0.3) as oa:
        with pytest.raises(openai.APITimeoutError):
            await ask(oa)


async def test_hang_for_seconds_then_drops(openai_sim: RunningSimulator,
                                           fake_sleep: FakeSleep) -> None:
    openai_sim.faults.add(Fault(kind="hang", seconds=30))
    async with client(openai_sim) as oa:
        with pytest.raises(openai.APIConnectionError):
            await ask(oa)
    assert fake_sleep.calls == [30]


async def test_reset_is_a_connection_error(openai_sim: RunningSimulator) -> None:
    openai_sim.faults.add(Fault(kind="reset"))
    async with client(openai_sim) as oa:
        with pytest.raises(openai.APIConnectionError):
            await ask(oa)
        assert await ask(oa) == HELLO


async def test_reset_mid_stream(openai_sim: RunningSimulator,
                                http: aiohttp.ClientSession) -> None:
    openai_sim.faults.add(Fault(kind="reset", after_chunks=3))
    received = b""
    async with http.post(openai_sim.base_url + "/chat/completions", json=chat_body(True),
                         headers=HEADERS) as resp:
        assert resp.status == 200
        with pytest.raises(aiohttp.ClientPayloadError):
            async for piece in resp.content.iter_any():
                received += piece
    assert len(data_lines(received)) == 3


async def test_reset_mid_body_of_a_complete_answer(openai_sim: RunningSimulator,
                                                   http: aiohttp.ClientSession) -> None:
    openai_sim.faults.add(Fault(kind="reset", after_chunks=1))
    async with http.post(openai_sim.base_url + "/chat/completions", json=chat_body(),
                         headers=HEADERS) as resp:
        assert resp.status == 200  # the headers came: the body is what breaks
        with pytest.raises(aiohttp.ClientPayloadError):
            await resp.read()
    async with client(openai_sim) as oa:
        assert await ask(oa) == HELLO


@pytest.mark.parametrize(("echo", "quoted"), [("whole", "sk-presented-key-0123456789"),
                                              ("prefix", "sk-presented...")])
async def test_error_echoes_the_presented_key(openai_sim: RunningSimulator,
                                              http: aiohttp.ClientSession, echo: str,
                                              quoted: str) -> None:
    headers = {"Authorization": "Bearer sk-presented-key-0123456789"}
    openai_sim.faults.add(Fault.model_validate({"kind": "status", "status": 401,
                                                "echo_key": echo}))
    async with http.post(openai_sim.base_url + "/chat/completions", json=chat_body(),
                         headers=headers) as resp:
        assert resp.status == 401
        body = await resp.json()
    assert body["error"]["message"] == f"Incorrect API key provided: {quoted}."
    openai_sim.faults.add(Fault.model_validate({"kind": "error_event", "after_chunks": 1,
                                                "message": "Bad key.", "echo_key": echo}))
    async with http.post(openai_sim.base_url + "/chat/completions", json=chat_body(True),
                         headers=headers) as resp:
        lines = data_lines(await resp.read())
    error = json.loads(lines[-1])["error"]
    assert error["message"] == f"Bad key. Incorrect API key provided: {quoted}."


async def test_cut_stream_ends_without_terminal_event(
        openai_sim: RunningSimulator, http: aiohttp.ClientSession) -> None:
    openai_sim.faults.add(Fault(kind="cut_stream", after_chunks=2))
    lines = data_lines(await raw_stream(http, openai_sim))
    assert len(lines) == 2
    assert b"[DONE]" not in lines
    assert all(json.loads(line)["choices"][0]["finish_reason"] is None for line in lines)


async def test_cut_stream_through_the_sdk(openai_sim: RunningSimulator) -> None:
    openai_sim.faults.add(Fault(kind="cut_stream", after_chunks=4))
    async with client(openai_sim) as oa:
        stream = await oa.chat.completions.create(
            model="gpt-x", messages=[{"role": "user", "content": "hi"}], stream=True)
        chunks = [c async for c in stream]
    assert len(chunks) == 4
    assert all(c.choices[0].finish_reason is None for c in chunks)


async def test_raw_stream_sends_its_chunks_verbatim_then_ends(
        openai_sim: RunningSimulator, http: aiohttp.ClientSession) -> None:
    chunks = ['data: {"id":"x","choices":[{"index":0,"delta":{"role":"assistant"}}]}\n\n',
              ": a comment line\n\n"]
    openai_sim.faults.add(Fault(kind="raw_stream", chunks=chunks))
    assert await raw_stream(http, openai_sim) == "".join(chunks).encode()


async def test_raw_stream_never_answers_a_non_stream_request(
        openai_sim: RunningSimulator) -> None:
    openai_sim.faults.add(Fault(kind="raw_stream", chunks=["data: {}\n\n"]))
    async with client(openai_sim) as oa:
        assert await ask(oa) == HELLO
    assert len(openai_sim.faults) == 1  # still waiting for a stream


async def test_cut_after_more_chunks_than_the_body_has(
        openai_sim: RunningSimulator, http: aiohttp.ClientSession) -> None:
    openai_sim.faults.add(Fault(kind="cut_stream", after_chunks=1000))
    lines = data_lines(await raw_stream(http, openai_sim))
    texts = "".join(json.loads(line)["choices"][0]["delta"].get("content") or ""
                    for line in lines)
    assert texts == HELLO  # the whole text, but no finish and no [DONE]
    assert b"[DONE]" not in lines
    assert all(json.loads(line)["choices"][0]["finish_reason"] is None for line in lines)


async def test_error_event_seen_by_the_sdk(openai_sim: RunningSimulator) -> None:
    openai_sim.faults.add(Fault(kind="error_event", after_chunks=2, status=429))
    async with client(openai_sim) as oa:
        stream = await oa.chat.completions.create(
            model="gpt-x", messages=[{"role": "user", "content": "hi"}], stream=True)
        seen = 0
        with pytest.raises(openai.APIError):
            async for _ in stream:
                seen += 1
    assert seen == 2


async def test_error_event_on_the_wire(openai_sim: RunningSimulator,
                                       http: aiohttp.ClientSession) -> None:
    openai_sim.faults.add(Fault(kind="error_event", after_chunks=1))
    lines = data_lines(await raw_stream(http, openai_sim))
    assert len(lines) == 2
    assert "error" in json.loads(lines[1])
    assert b"[DONE]" not in lines


async def test_malformed_body(openai_sim: RunningSimulator,
                              http: aiohttp.ClientSession) -> None:
    openai_sim.faults.add(Fault(kind="malformed"))
    async with http.post(openai_sim.base_url + "/chat/completions", json=chat_body(),
                         headers=HEADERS) as resp:
        assert resp.status == 200
        with pytest.raises(json.JSONDecodeError):
            json.loads(await resp.read())


async def test_malformed_stream_line(openai_sim: RunningSimulator,
                                     http: aiohttp.ClientSession) -> None:
    openai_sim.faults.add(Fault(kind="malformed", after_chunks=2))
    lines = data_lines(await raw_stream(http, openai_sim))
    assert len(lines) == 3
    json.loads(lines[1])
    with pytest.raises(json.JSONDecodeError):
        json.loads(lines[2])


async def test_malformed_stream_through_the_sdk(openai_sim: RunningSimulator) -> None:
    openai_sim.faults.add(Fault(kind="malformed", after_chunks=1))
    async with client(openai_sim) as oa:
        stream = await oa.chat.completions.create(
            model="gpt-x", messages=[{"role": "user", "content": "hi"}], stream=True)
        with pytest.raises(json.JSONDecodeError):
            async for _ in stream:
                pass


async def test_latency_waits_then_answers(openai_sim: RunningSimulator,
                                          fake_sleep: FakeSleep) -> None:
    openai_sim.faults.add(Fault(kind="latency", seconds=2.5))
    async with client(openai_sim) as oa:
        assert await ask(oa) == HELLO
    assert fake_sleep.calls == [2.5]


async def test_slow_first_token_holds_the_first_chunk(
        openai_sim: RunningSimulator, fake_sleep: FakeSleep,
        http: aiohttp.ClientSession) -> None:
    openai_sim.faults.add(Fault(kind="slow_first_token", seconds=5))
    fake_sleep.gate.clear()
    async with http.post(openai_sim.base_url + "/chat/completions", json=chat_body(True),
                         headers=HEADERS) as resp:
        assert resp.status == 200  # headers come at once
        await fake_sleep.entered.wait()
        assert fake_sleep.calls == [5]
        assert resp.content.total_bytes == 0  # the simulator is still waiting to send
        fake_sleep.gate.set()
        raw = await resp.read()
    assert data_lines(raw)[-1] == b"[DONE]"


async def test_slow_chunks_wait_between_chunks(openai_sim: RunningSimulator,
                                               fake_sleep: FakeSleep,
                                               http: aiohttp.ClientSession) -> None:
    openai_sim.faults.add(Fault(kind="slow_chunks", seconds=0.25))
    lines = data_lines(await raw_stream(http, openai_sim))
    # role chunk, 7 words, finish chunk and [DONE]: a wait before each write but the
    # first (the finish chunk and [DONE] go in one write)
    assert len(lines) == 1 + 7 + 2
    assert fake_sleep.calls == [0.25] * 8


async def test_slow_chunks_do_not_apply_to_non_stream(openai_sim: RunningSimulator,
                                                      fake_sleep: FakeSleep) -> None:
    openai_sim.faults.add(Fault(kind="slow_chunks", seconds=1))
    async with client(openai_sim) as oa:
        assert await ask(oa) == HELLO
    assert fake_sleep.calls == []
    assert len(openai_sim.faults) == 1  # still waiting for a stream


async def test_fault_from_header(openai_sim: RunningSimulator,
                                 http: aiohttp.ClientSession) -> None:
    fault = json.dumps({"kind": "status", "status": 503})
    async with http.post(openai_sim.base_url + "/chat/completions", json=chat_body(),
                         headers={**HEADERS, "x-sim-fault": fault}) as resp:
        assert resp.status == 503
    async with http.post(openai_sim.base_url + "/chat/completions", json=chat_body(),
                         headers={**HEADERS, "x-sim-fault": "{bad"}) as resp:
        assert resp.status == 400


async def test_close_releases_a_hanging_request(fake_sleep: FakeSleep) -> None:
    sim = await start_simulator("openai_chat", "s", sleep=fake_sleep)
    sim.faults.add(Fault(kind="hang", seconds=100))
    fake_sleep.gate.clear()  # the 100 s never pass
    async with client(sim) as oa:
        pending = asyncio.ensure_future(ask(oa))
        await fake_sleep.entered.wait()  # the request is hanging
        await sim.close()
        with pytest.raises(openai.APIConnectionError):
            await pending


async def test_client_leaving_mid_stream_is_not_an_error(
        fake_sleep: FakeSleep, http: aiohttp.ClientSession,
        caplog: pytest.LogCaptureFixture) -> None:
    # Without handler cancellation (another host may run the app that way) the handler goes
    # on writing to a connection the client has closed.
    app = create_simulator_app("openai_chat", "s", sleep=fake_sleep)
    app[SIMULATOR].faults.add(Fault(kind="slow_chunks", seconds=1))
    runner = web.AppRunner(app, handler_cancellation=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    fake_sleep.gate.clear()
    try:
        response = await http.post(f"http://{host}:{port}/v1/chat/completions",
                                   json=chat_body(True), headers=HEADERS)
        await fake_sleep.entered.wait()  # one chunk sent, the handler waits
        response.close()
        fake_sleep.gate.set()
    finally:
        await runner.cleanup()  # waits for the handler to finish
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []
