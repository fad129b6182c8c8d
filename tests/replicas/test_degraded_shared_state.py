"""When Redis goes away the gateway keeps serving: rate limits fall back to per-process
limits, hard budgets fail closed (or spend a replica's slice), `/readyz` and the metrics
say so; when Redis returns the gateway uses it again, without a restart."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import pytest
from _cuttable_proxy import TcpProxy
from _gw_errors import post, valid_body
from _gw_harness import compile_data, serve
from _gw_tenancy import ADMIN_KEY, Admin, tenancy_data
from _state_redis import REDIS_URL, connect, drop_namespace, new_namespace, require_redis
from redis.asyncio import Redis

from turnout.sim.server import RunningSimulator
from turnout.stages import shared_stores


@pytest.fixture
async def proxy() -> AsyncIterator[TcpProxy]:
    require_redis()
    client = Redis.from_url(REDIS_URL)
    kwargs = client.connection_pool.connection_kwargs
    await client.aclose()
    proxy = TcpProxy(kwargs.get("host", "127.0.0.1"), kwargs.get("port", 6379))
    await proxy.start()
    yield proxy
    await proxy.close()


@pytest.fixture
def namespace() -> AsyncIterator[str]:
    return new_namespace()  # type: ignore[return-value]


async def gateway(stack: AsyncExitStack, sims: dict[str, RunningSimulator], tmp: Path,
                  proxy: TcpProxy, namespace: str, budgets: str = "fail_closed") -> Admin:
    data = tenancy_data(sims, tmp / "t.db")
    data["state"] = {"redis": f"redis://127.0.0.1:{proxy.port}/0", "prefix": namespace,
                     "when_down": {"budgets": budgets, "local_slice": 0.5}}
    runtime = compile_data(data, {"ADMIN_KEY": ADMIN_KEY})
    client = connect()
    stack.push_async_callback(client.aclose)
    stack.push_async_callback(drop_namespace, client, namespace)
    return Admin(await serve(runtime, stack))


async def status_of(admin: Admin, key: str, body: dict[str, Any] | None = None) -> int:
    reply = await post(admin.gw, "openai", body or valid_body("openai"),
                       {"Authorization": f"Bearer {key}"})
    return reply.status


async def readiness(admin: Admin) -> tuple[int, Any]:
    async with admin.gw.http.get(f"{admin.gw.url}/readyz") as response:
        return response.status, await response.json()


async def test_rate_limits_fall_back_per_process_and_recover(
        sims: dict[str, RunningSimulator], tmp_path: Path, proxy: TcpProxy, namespace: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shared_stores, "PROBE_S", 0.05)
    async with AsyncExitStack() as stack:
        admin = await gateway(stack, sims, tmp_path, proxy, namespace)
        await admin.tenant("acme")
        key = await admin.key("acme", {"limits": {"rpm": 3}})
        assert await status_of(admin, key) == 200  # counted in Redis
        assert (await readiness(admin))[1]["components"]["shared_state"] == "ready"
        await proxy.cut()
        # Redis is away: served, counted per process (a fresh local bucket of 3).
        assert [await status_of(admin, key) for _ in range(4)] == [200, 200, 200, 429]
        status, ready = await readiness(admin)
        assert status == 200 and ready["status"] == "degraded"
        assert ready["components"]["shared_state"].startswith("degraded")
        async with admin.gw.http.get(f"{admin.gw.url}/metrics") as response:
            metrics = await response.text()
        assert "turnout_shared_state_degraded 1.0" in metrics
        await proxy.restore()
        await asyncio.sleep(0.1)
        # Back on Redis, whose bucket had 2 requests left.
        assert [await status_of(admin, key) for _ in range(3)] == [200, 200, 429]
        assert (await readiness(admin))[1]["status"] == "ready"


async def test_hard_budgets_fail_closed_while_redis_is_away(
        sims: dict[str, RunningSimulator], tmp_path: Path, proxy: TcpProxy, namespace: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shared_stores, "PROBE_S", 0.05)
    async with AsyncExitStack() as stack:
        admin = await gateway(stack, sims, tmp_path, proxy, namespace)
        await admin.tenant("acme", {"budgets": [{"period": "day", "tokens": 100_000}]})
        key = await admin.key("acme")
        assert await status_of(admin, key) == 200
        await proxy.cut()
        reply = await post(admin.gw, "openai", valid_body("openai"),
                           {"Authorization": f"Bearer {key}"})
        assert reply.status == 503
        assert "shared state store is unreachable" in reply.body["error"]["message"]
        await proxy.restore()
        await asyncio.sleep(0.1)
        assert await status_of(admin, key) == 200


async def test_a_local_slice_spends_part_of_the_budget_and_syncs_it_back(
        sims: dict[str, RunningSimulator], tmp_path: Path, proxy: TcpProxy, namespace: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shared_stores, "PROBE_S", 0.05)
    async with AsyncExitStack() as stack:
        admin = await gateway(stack, sims, tmp_path, proxy, namespace, budgets="local_slice")
        await admin.tenant("acme", {"budgets": [{"period": "total", "tokens": 1000}]})
        key = await admin.key("acme")
        body = valid_body("openai")
        body["max_tokens"] = 200
        await proxy.cut()
        # Half of 1000 tokens for this replica alone: two 200-token reservations fit
        # (each settles at its small real usage), a 600-token one does not.
        assert await status_of(admin, key, body) == 200
        assert await status_of(admin, key, body) == 200
        body["max_tokens"] = 600
        assert await status_of(admin, key, body) == 429
        await proxy.restore()
        await asyncio.sleep(0.1)
        body["max_tokens"] = 10
        assert await status_of(admin, key, body) == 200  # back on Redis: resync starts
        stage_stores = admin.gw.engine.resources.all_shared_stores()[0]
        await stage_stores.aclose()  # the resync task has finished
        client = connect()
        try:
            spent = await client.hget(f"{{{namespace}}}:b:budget:tenant:acme:total:tokens:all",
                                      "s")
        finally:
            await client.aclose()
        # Redis holds the calls made before, during and after the outage.
        per_call = 14  # the simulator's usage for the default prompt and answer
        assert int(spent) >= 3 * per_call
