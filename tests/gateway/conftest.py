"""Fixtures: the three simulators, and gateways over them (see `_gw_harness`)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import AsyncExitStack
from typing import Any

import pytest
from _gw_harness import (
    SIM_NAME,
    UPSTREAM_KEY,
    UPSTREAMS,
    Gateway,
    MakeGateway,
    SleepProbe,
    base_config,
    compile_data,
    serve,
)

from turnout.sim.server import RunningSimulator, start_simulator


@pytest.fixture
def sleep_probe() -> SleepProbe:
    return SleepProbe()


@pytest.fixture
async def sims(sleep_probe: SleepProbe) -> AsyncIterator[dict[str, RunningSimulator]]:
    """One simulator per upstream dialect, keyed by dialect name."""
    running: dict[str, RunningSimulator] = {}
    try:
        for dialect in UPSTREAMS:
            running[dialect] = await start_simulator(
                dialect, SIM_NAME[dialect], api_key=UPSTREAM_KEY, sleep=sleep_probe)
        yield running
    finally:
        for sim in running.values():
            await sim.close()


@pytest.fixture
async def make_gateway(sims: dict[str, RunningSimulator]) -> AsyncIterator[MakeGateway]:
    """`await make_gateway(server={...}, policy={...}, env={...})`: a gateway over the
    simulators with the `server` section and every route's `policy` replaced; `env` adds
    environment variables that `{env: NAME}` secrets resolve from."""
    async with AsyncExitStack() as stack:

        async def make(*, server: Mapping[str, Any] | None = None,
                       policy: Mapping[str, Any] | None = None,
                       env: Mapping[str, str] | None = None,
                       client_key: str = "client-key") -> Gateway:
            data = base_config(sims)
            if server is not None:
                data["server"] = dict(server)
            if policy is not None:
                for route in data["routes"].values():
                    route["policy"] = dict(policy)
            return await serve(compile_data(data, env), stack, client_key=client_key)

        yield make


@pytest.fixture
async def gateway(make_gateway: MakeGateway) -> Gateway:
    """The default gateway: no gateway keys, default limits and policies."""
    return await make_gateway()
