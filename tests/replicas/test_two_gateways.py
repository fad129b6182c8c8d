"""Two real `turnout serve` processes sharing real PostgreSQL (tenants and keys) and Redis
(rate limits, concurrency, budget reservations): what one admits, the other counts."""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
import sys
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
import yaml
from _gw_errors import valid_body
from _gw_harness import MODEL, PROVIDER, ROUTE, UPSTREAM_KEY, UPSTREAMS
from _state_redis import REDIS_URL, connect, drop_namespace, new_namespace, require_redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from turnout.sim.faults import Fault
from turnout.sim.server import RunningSimulator
from turnout.tenancy.sql import SqlTenantStore

SRC = Path(__file__).resolve().parents[2] / "src"
POSTGRES = os.environ.get("TURNOUT_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
ADMIN_KEY = "admin-" + "r" * 40
_KINDS = {"openai_chat": "openai_compatible", "anthropic_messages": "anthropic",
          "gemini": "gemini"}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def fresh_database(stack: AsyncExitStack) -> str:
    """A new PostgreSQL database for this test, dropped at the end."""
    name = f"turnout_test_{secrets.token_hex(6)}"
    admin = create_async_engine(SqlTenantStore.driver_url(POSTGRES),
                                isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            await conn.execute(text(f'CREATE DATABASE "{name}"'))
    except OSError as exc:
        await admin.dispose()
        if os.environ.get("TURNOUT_REQUIRE_SERVICES") == "1":
            raise
        pytest.skip(f"PostgreSQL is not reachable at {POSTGRES}: {exc}")

    async def drop() -> None:
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()

    stack.push_async_callback(drop)
    return POSTGRES.rsplit("/", 1)[0] + f"/{name}"


@dataclass
class Replicas:
    urls: list[str]
    http: aiohttp.ClientSession

    async def admin(self, replica: int, method: str, path: str, body: Any = None
                    ) -> tuple[int, Any]:
        async with self.http.request(
                method, f"{self.urls[replica]}/admin/v1{path}",
                data=orjson.dumps(body) if body is not None else None,
                headers={"Authorization": f"Bearer {ADMIN_KEY}",
                         "Content-Type": "application/json"}) as response:
            return response.status, orjson.loads(await response.read())

    async def tenant_key(self, tenant: dict[str, Any] | None = None,
                         key: dict[str, Any] | None = None) -> tuple[str, str]:
        status, body = await self.admin(0, "POST", "/tenants", {"id": "acme", "name": "A"})
        assert status == 201, body
        if tenant:
            assert (await self.admin(0, "PUT", "/tenants/acme/policy", tenant))[0] == 200
        status, body = await self.admin(0, "POST", "/tenants/acme/keys",
                                        {"name": "ci", **({"policy": key} if key else {})})
        assert status == 201, body
        return body["id"], body["key"]

    async def chat(self, replica: int, key: str, body: dict[str, Any] | None = None
                   ) -> tuple[int, Any]:
        async with self.http.post(f"{self.urls[replica]}/v1/chat/completions",
                                  json=body or valid_body("openai"),
                                  headers={"Authorization": f"Bearer {key}"}) as response:
            return response.status, await response.json()


async def start(stack: AsyncExitStack, config: Path, log: Path) -> asyncio.subprocess.Process:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TURNOUT_")}
    env.update(PYTHONPATH=str(SRC), SIM_KEY=UPSTREAM_KEY, ADMIN_KEY=ADMIN_KEY)
    with log.open("wb") as out:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "turnout.cli", "serve", str(config),
            env=env, stdin=asyncio.subprocess.DEVNULL, stdout=out, stderr=out)

    async def stop() -> None:
        if process.returncode is None:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), 10)
            except TimeoutError:
                process.kill()
                await process.wait()

    stack.push_async_callback(stop)
    return process


async def up(http: aiohttp.ClientSession, url: str, process: asyncio.subprocess.Process,
             log: Path) -> None:
    async with asyncio.timeout(30):
        while process.returncode is None:
            try:
                async with http.get(url + "/healthz") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientConnectionError:
                pass
            await asyncio.sleep(0.05)
    raise AssertionError(f"turnout serve exited; see {log.name}: "
                         f"{log.read_bytes()[-2000:]!r}")  # noqa: ASYNC240 - after exit


@pytest.fixture
async def replicas(sims: dict[str, RunningSimulator], tmp_path: Path
                   ) -> AsyncIterator[Replicas]:
    require_redis()
    async with AsyncExitStack() as stack:
        database = await fresh_database(stack)
        namespace = new_namespace()
        redis = connect()
        stack.push_async_callback(redis.aclose)
        stack.push_async_callback(drop_namespace, redis, namespace)
        http = await stack.enter_async_context(aiohttp.ClientSession())
        urls = []
        for i in range(2):
            port = free_port()
            config = tmp_path / f"gw{i}.yaml"
            config.write_text(yaml.safe_dump({
                "local": False,
                "server": {"port": port},
                "providers": {PROVIDER[d]: {"kind": _KINDS[d], "base_url": sims[d].base_url,
                                            "api_key": {"env": "SIM_KEY"}} for d in UPSTREAMS},
                "routes": {ROUTE[d]: {"targets": [{"provider": PROVIDER[d],
                                                   "model": MODEL[d]}]} for d in UPSTREAMS},
                "tenancy": {"database": database, "admin_key": {"env": "ADMIN_KEY"},
                            "key_cache_s": 1},
                "state": {"redis": REDIS_URL, "prefix": namespace},
            }))
            log = tmp_path / f"gw{i}.log"
            process = await start(stack, config, log)
            url = f"http://127.0.0.1:{port}"
            await up(http, url, process, log)
            urls.append(url)
        yield Replicas(urls, http)


async def test_a_budget_with_room_for_one_admits_exactly_one_of_fifty(
        replicas: Replicas, sims: dict[str, RunningSimulator]) -> None:
    _, key = await replicas.tenant_key({"budgets": [{"period": "day", "tokens": 700}]})
    body = valid_body("openai")
    body["max_tokens"] = 600  # one call's worst case fits the budget, two do not
    # The admitted call takes 4 s, so all 50 are in flight at once (once it has
    # settled at its real, smaller cost, there would be room for more).
    sims["openai_chat"].faults.add(Fault(kind="latency", seconds=4.0, times=50))
    before = len(sims["openai_chat"].requests)
    results = await asyncio.gather(*(replicas.chat(i % 2, key, body) for i in range(50)))
    statuses = [status for status, _ in results]
    assert statuses.count(200) == 1, statuses
    assert statuses.count(429) == 49
    assert {b["error"]["code"] for s, b in results if s == 429} == {"insufficient_quota"}
    assert len(sims["openai_chat"].requests) - before == 1  # one call reached upstream


async def test_a_key_revoked_on_one_replica_is_refused_by_the_other_within_a_second(
        replicas: Replicas) -> None:
    key_id, key = await replicas.tenant_key()
    assert (await replicas.chat(1, key))[0] == 200  # replica 1 has the key cached now
    status, _ = await replicas.admin(0, "POST", f"/keys/{key_id}/revoke")
    assert status == 200
    revoked_at = time.monotonic()
    while (await replicas.chat(1, key))[0] == 200:  # noqa: ASYNC110 - polling another process
        await asyncio.sleep(0.02)
    took = time.monotonic() - revoked_at
    assert took <= 1.1, f"replica 1 still accepted the key {took:.2f} s after revocation"
    status, body = await replicas.chat(1, key)
    assert status == 401 and "revoked" in body["error"]["message"]


async def test_rate_and_concurrency_limits_hold_across_both(
        replicas: Replicas) -> None:
    _, key = await replicas.tenant_key(tenant={"limits": {"rpm": 10}})
    results = await asyncio.gather(*(replicas.chat(i % 2, key) for i in range(30)))
    statuses = [status for status, _ in results]
    assert statuses.count(200) == 10 and statuses.count(429) == 20
