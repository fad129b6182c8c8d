"""`start_simulator` URLs and `serve_simulators`, the function behind `turnout sim`."""

from __future__ import annotations

import asyncio
import socket

import aiohttp
import pytest

from turnout.sim.server import RunningSimulator, serve_simulators, start_simulator


def free_port_run(count: int) -> int:
    """A port p such that p .. p+count-1 are free right now (good enough on loopback)."""
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            base = probe.getsockname()[1]
        if base + count > 65535:
            continue
        sockets = []
        try:
            for offset in range(count):
                s = socket.socket()
                sockets.append(s)
                s.bind(("127.0.0.1", base + offset))
            return base
        except OSError:
            continue
        finally:
            for s in sockets:
                s.close()
    raise RuntimeError("no run of free ports")


async def test_urls_per_dialect() -> None:
    for dialect, root in (("openai_chat", "/v1"), ("anthropic_messages", "/v1")):
        sim = await start_simulator(dialect, "s")
        try:
            assert sim.url.startswith("http://127.0.0.1:")
            assert sim.base_url == sim.url + root
            assert sim.dialect == dialect and sim.name == "s"
        finally:
            await sim.close()


async def test_serve_simulators_prints_and_serves(capsys: pytest.CaptureFixture[str]) -> None:
    base = free_port_run(3)
    ready: asyncio.Future[list[RunningSimulator]] = asyncio.get_running_loop().create_future()
    task = asyncio.ensure_future(serve_simulators(
        "127.0.0.1", base, names={"openai_chat": "oa"}, started=ready.set_result))
    try:
        await asyncio.wait({ready, task}, return_when=asyncio.FIRST_COMPLETED)
        if task.done():
            task.result()  # failed to start: raise why
        sims = ready.result()
        assert [s.base_url for s in sims] == [
            f"http://127.0.0.1:{base}/v1", f"http://127.0.0.1:{base + 1}/v1",
            f"http://127.0.0.1:{base + 2}/v1beta"]
        assert [s.name for s in sims] == ["oa", "anthropic-sim", "gemini-sim"]
        lines = capsys.readouterr().out.splitlines()
        assert len(lines) == 3
        assert all(s.base_url in line for s, line in zip(sims, lines, strict=True))
        async with aiohttp.ClientSession() as http, http.post(
                sims[0].base_url + "/chat/completions",
                json={"model": "m", "messages": [{"role": "user", "content": "yo"}]},
                headers={"Authorization": "Bearer k"}) as resp:
            body = await resp.json()
        assert body["choices"][0]["message"]["content"] == "Hello from oa (m). You said: yo"
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
