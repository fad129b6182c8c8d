"""Bring a database to the current schema with Alembic, programmatically: the embedded
SQLite database is created on first start, PostgreSQL is upgraded the same way."""

from __future__ import annotations

import logging
from importlib import resources

from alembic import command
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

_log = logging.getLogger("turnout.tenancy")


def alembic_config(connection: Connection) -> Config:
    config = Config()
    config.set_main_option("script_location",
                           str(resources.files("turnout.tenancy").joinpath("migrations")))
    config.attributes["connection"] = connection
    return config


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    """Apply every migration up to `revision` (idempotent)."""
    def run(connection: Connection) -> None:
        context = MigrationContext.configure(
            connection, opts={"version_table": "turnout_alembic_version"})
        before = context.get_current_revision()
        command.upgrade(alembic_config(connection), revision)
        after = MigrationContext.configure(
            connection, opts={"version_table": "turnout_alembic_version"}).get_current_revision()
        if after != before:
            _log.info("tenancy database migrated from %s to %s", before or "empty", after)

    async with engine.begin() as connection:
        await connection.run_sync(run)
