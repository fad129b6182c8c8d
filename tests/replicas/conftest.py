"""Replicas: gateways sharing real PostgreSQL and Redis. These tests reuse the gateway
harness and the Redis helpers of the state suite."""

from __future__ import annotations

import sys
from pathlib import Path

_TESTS = Path(__file__).resolve().parents[1]
for helpers in ("gateway", "state", "tenancy"):
    if str(_TESTS / helpers) not in sys.path:
        sys.path.insert(0, str(_TESTS / helpers))


from collections.abc import AsyncIterator  # noqa: E402

import pytest  # noqa: E402
from _gw_harness import SIM_NAME, UPSTREAM_KEY, UPSTREAMS  # noqa: E402

from turnout.sim.server import RunningSimulator, start_simulator  # noqa: E402


@pytest.fixture
async def sims() -> AsyncIterator[dict[str, RunningSimulator]]:
    """One simulator per upstream dialect, keyed by dialect name."""
    running: dict[str, RunningSimulator] = {}
    try:
        for dialect in UPSTREAMS:
            running[dialect] = await start_simulator(dialect, SIM_NAME[dialect],
                                                     api_key=UPSTREAM_KEY)
        yield running
    finally:
        for sim in running.values():
            await sim.close()
