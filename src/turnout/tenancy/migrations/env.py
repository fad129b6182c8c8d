"""Alembic environment: migrations run on a connection the caller opened
(`turnout.tenancy.migrate.upgrade`), never on a URL read from a file."""

from __future__ import annotations

from alembic import context

from turnout.tenancy.tables import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata,
                  version_table="turnout_alembic_version", render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
