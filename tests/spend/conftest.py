"""Databases to run spend reports on: SQLite in a temporary file, and the real PostgreSQL
on 127.0.0.1:5432 (database `test`), each test in a schema of its own (skipped when the
server is absent, unless TURNOUT_REQUIRE_SERVICES=1 as in CI)."""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from turnout.tenancy.migrate import upgrade
from turnout.tenancy.sql import SqlTenantStore

POSTGRES_URL = os.environ.get("TURNOUT_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")


async def postgres_engine() -> AsyncIterator[AsyncEngine]:
    schema = f"turnout_spend_{secrets.token_hex(6)}"
    admin = create_async_engine(SqlTenantStore.driver_url(POSTGRES_URL))
    try:
        async with admin.begin() as conn:
            await conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    except OSError as exc:
        await admin.dispose()
        if os.environ.get("TURNOUT_REQUIRE_SERVICES") == "1":
            raise
        pytest.skip(f"PostgreSQL is not reachable at {POSTGRES_URL}: {exc}")
    engine = create_async_engine(SqlTenantStore.driver_url(POSTGRES_URL),
                                 connect_args={"server_settings": {"search_path": schema}})
    try:
        await upgrade(engine)
        yield engine
    finally:
        await engine.dispose()
        async with admin.begin() as conn:
            await conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        await admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
async def engine(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    if request.param == "sqlite":
        opened = create_async_engine(SqlTenantStore.driver_url(f"sqlite:///{tmp_path / 's.db'}"))
        await upgrade(opened)
        yield opened
        await opened.dispose()
        return
    async for opened in postgres_engine():
        yield opened
