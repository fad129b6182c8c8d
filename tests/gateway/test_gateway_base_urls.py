"""Provider `base_url`s written as the vendors' SDKs take them reach the simulators: the host
root for Anthropic and Gemini (`ANTHROPIC_BASE_URL=https://api.anthropic.com`), or the
same URL with the version path; OpenAI-compatible URLs include `/v1`."""

from __future__ import annotations

from contextlib import AsyncExitStack

import pytest
from _gw_harness import MODEL, PROVIDER, ROUTE, UPSTREAMS, base_config, compile_data, serve

from turnout.sim.server import RunningSimulator

QUESTION = [{"role": "user", "content": "ping"}]


@pytest.mark.parametrize("style", ["host_root", "host_root_slash", "version_path"])
@pytest.mark.parametrize("dialect", ["anthropic_messages", "gemini"])
async def test_sdk_style_base_urls_reach_the_simulator(
        sims: dict[str, RunningSimulator], dialect: str, style: str) -> None:
    sim = sims[dialect]
    base_url = {"host_root": sim.url, "host_root_slash": sim.url + "/",
                "version_path": sim.base_url}[style]
    data = base_config(sims)
    data["providers"][PROVIDER[dialect]]["base_url"] = base_url
    runtime = compile_data(data)
    [deployment] = runtime.routes[ROUTE[dialect]].deployments
    assert deployment.target.base_url == sim.base_url  # normalised once, at compile time
    sim.requests.clear()
    async with AsyncExitStack() as stack:
        gw = await serve(runtime, stack)
        answer = await gw.openai.chat.completions.create(model=ROUTE[dialect],
                                                         messages=QUESTION)
    assert answer.choices[0].message.content == (
        f"Hello from {sim.name} ({MODEL[dialect]}). You said: ping")
    [recorded] = sim.requests
    api_root = sim.base_url.removeprefix(sim.url)
    assert recorded.path.startswith(f"{api_root}/")


async def test_every_upstream_by_the_sdks_convention(sims: dict[str, RunningSimulator]) -> None:
    """One config as a user copies it from each SDK's docs: OpenAI's `.../v1`, Anthropic's
    and Gemini's host roots; every route answers."""
    data = base_config(sims)
    for dialect in UPSTREAMS:
        url = sims[dialect].base_url if dialect == "openai_chat" else sims[dialect].url
        data["providers"][PROVIDER[dialect]]["base_url"] = url
    async with AsyncExitStack() as stack:
        gw = await serve(compile_data(data), stack)
        for dialect in UPSTREAMS:
            message = await gw.anthropic.messages.create(
                model=ROUTE[dialect], max_tokens=32, messages=QUESTION)
            assert message.content[0].type == "text"
            assert message.content[0].text.startswith(f"Hello from {sims[dialect].name} ")
