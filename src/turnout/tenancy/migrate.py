"""Bring a database to the current schema with Alembic, programmatically: the embedded
SQLite database is created on first start, PostgreSQL is upgraded the same way."""

from __future__ import annotations

from importlib import resources

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import AsyncEngine


def alembic_config(connection: Connection) -> Config:
    config = Config()
    config.set_main_option("script_location",
                           str(resources.files("turnout.tenancy").joinpath("migrations")))
    config.attributes["connection"] = connection
    return config


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    """Apply every migration up to `revision` (idempotent)."""
    def run(connection: Connection) -> None:
        command.upgrade(alembic_config(connection), revision)

    async with engine.begin() as connection:
        await connection.run_sync(run)
