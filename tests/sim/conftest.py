"""Simulators on loopback ports, and an injected sleep so slow faults need no real waiting."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import pytest

from turnout.sim.server import RunningSimulator, start_simulator


class FakeSleep:
    """Records the waits a simulator asks for; returns at once unless `gate` is closed."""

    def __init__(self) -> None:
        self.calls: list[float] = []
        self.entered = asyncio.Event()
        self.gate = asyncio.Event()
        self.gate.set()

    async def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)
        self.entered.set()
        await self.gate.wait()


@pytest.fixture
def fake_sleep() -> FakeSleep:
    return FakeSleep()


@pytest.fixture
async def openai_sim(fake_sleep: FakeSleep) -> AsyncIterator[RunningSimulator]:
    sim = await start_simulator("openai_chat", "openai-a", sleep=fake_sleep)
    yield sim
    await sim.close()


@pytest.fixture
async def anthropic_sim(fake_sleep: FakeSleep) -> AsyncIterator[RunningSimulator]:
    sim = await start_simulator("anthropic_messages", "anthropic-a", sleep=fake_sleep)
    yield sim
    await sim.close()


@pytest.fixture
async def gemini_sim(fake_sleep: FakeSleep) -> AsyncIterator[RunningSimulator]:
    sim = await start_simulator("gemini", "gemini-a", sleep=fake_sleep)
    yield sim
    await sim.close()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session
