"""Gateways for admin API tests: tenancy alone (no provider is called), on SQLite in a
temporary directory or on a fresh database of the real PostgreSQL, in the test's event
loop or on a thread of its own (for synchronous clients such as schemathesis)."""

from __future__ import annotations

import asyncio
import base64
import os
import secrets
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, asynccontextmanager, contextmanager
from typing import Any

import asyncpg
import pytest
from _gw_harness import Gateway, compile_data, serve

from turnout.config.runtime import RuntimeConfig

ADMIN_KEY = "admin-" + "k" * 40
POSTGRES_URL = os.environ.get("TURNOUT_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
"""As in `tests/tenancy/conftest.py`; each test gets a database of its own on that server."""


MASTER_KEY = base64.urlsafe_b64encode(bytes(range(32))).decode()


def admin_runtime(database_url: str) -> RuntimeConfig:
    """A gateway config with tenancy on `database_url`, a master key for tenants' own
    provider keys, and one provider (never called) they may bring keys for."""
    data: dict[str, Any] = {
        "local": False,
        "providers": {"sim": {"kind": "openai_compatible", "base_url": "http://127.0.0.1:9/v1",
                              "api_key": {"env": "SIM_KEY"}}},
        "tenancy": {"database": database_url, "admin_key": {"env": "ADMIN_KEY"},
                    "key_cache_s": 0, "master_keys": [{"id": "k1", "key": {"env": "K1"}}]}}
    return compile_data(data, {"ADMIN_KEY": ADMIN_KEY, "K1": MASTER_KEY})


async def serve_admin(database_url: str, stack: AsyncExitStack) -> Gateway:
    return await serve(admin_runtime(database_url), stack)


@asynccontextmanager
async def postgres_database() -> AsyncIterator[str]:
    """The URL of a new, empty database on the real PostgreSQL, dropped afterwards
    (skips the test when the server is absent, unless TURNOUT_REQUIRE_SERVICES=1)."""
    name = f"turnout_admin_{secrets.token_hex(6)}"
    try:
        conn = await asyncpg.connect(POSTGRES_URL, timeout=5)
    except (OSError, asyncpg.PostgresError) as exc:
        if os.environ.get("TURNOUT_REQUIRE_SERVICES") == "1":
            raise
        pytest.skip(f"PostgreSQL is not reachable at {POSTGRES_URL}: {exc}")
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
        try:
            yield f"{POSTGRES_URL.rsplit('/', 1)[0]}/{name}"
        finally:
            await conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@contextmanager
def gateway_thread(database_url: str) -> Iterator[str]:
    """A gateway serving on a thread with its own event loop; yields its base URL."""
    loop = asyncio.new_event_loop()
    started: asyncio.Future[str] = loop.create_future()
    stop = asyncio.Event()

    async def run() -> None:
        async with AsyncExitStack() as stack:
            try:
                gw = await serve_admin(database_url, stack)
            except BaseException as exc:
                started.set_exception(exc)
                raise
            started.set_result(gw.url)
            await stop.wait()

    thread = threading.Thread(target=loop.run_until_complete, args=(run(),), daemon=True)
    thread.start()
    ready = threading.Event()
    loop.call_soon_threadsafe(lambda: started.add_done_callback(lambda _: ready.set()))
    ready.wait(30)
    try:
        yield started.result()
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(30)
        loop.close()
