"""Spend stores to run against: SQLite in a temporary file and the real PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from _spend_db import postgres_engine
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from turnout.tenancy.migrate import upgrade
from turnout.tenancy.sql import SqlTenantStore


@pytest.fixture(params=["sqlite", "postgresql"])
async def engine(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    """A migrated tenancy database."""
    if request.param == "sqlite":
        opened = create_async_engine(SqlTenantStore.driver_url(
            f"sqlite:///{tmp_path / 'spend.db'}"))
        await upgrade(opened)
        yield opened
        await opened.dispose()
        return
    async for opened in postgres_engine():
        yield opened


@pytest.fixture
async def sqlite_engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    opened = create_async_engine(SqlTenantStore.driver_url(f"sqlite:///{tmp_path / 'spend.db'}"))
    await upgrade(opened)
    yield opened
    await opened.dispose()
