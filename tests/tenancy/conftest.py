"""Tenant stores to run the contract against: SQLite in a temporary file, and the real
PostgreSQL on 127.0.0.1:5432 (database `test`), each test in a schema of its own."""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from turnout.tenancy.migrate import upgrade
from turnout.tenancy.sql import SqlTenantStore

POSTGRES_URL = os.environ.get("TURNOUT_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")


def services_required() -> bool:
    """CI (`.ci/run`) sets TURNOUT_REQUIRE_SERVICES=1: a missing service fails the run."""
    return os.environ.get("TURNOUT_REQUIRE_SERVICES") == "1"


async def postgres_store() -> AsyncIterator[SqlTenantStore]:
    schema = f"turnout_test_{secrets.token_hex(6)}"
    admin = create_async_engine(SqlTenantStore.driver_url(POSTGRES_URL))
    try:
        async with admin.begin() as conn:
            await conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    except OSError as exc:
        await admin.dispose()
        if services_required():
            raise
        pytest.skip(f"PostgreSQL is not reachable at {POSTGRES_URL}: {exc}")
    engine = create_async_engine(SqlTenantStore.driver_url(POSTGRES_URL),
                                 connect_args={"server_settings": {"search_path": schema}})
    await upgrade(engine)
    store = SqlTenantStore(engine)
    try:
        yield store
    finally:
        await store.close()
        async with admin.begin() as conn:
            await conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        await admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
async def store(request: pytest.FixtureRequest, tmp_path: Path
                ) -> AsyncIterator[SqlTenantStore]:
    if request.param == "sqlite":
        opened = await SqlTenantStore.open(f"sqlite:///{tmp_path / 'tenants.db'}")
        yield opened
        await opened.close()
        return
    async for opened in postgres_store():
        yield opened
