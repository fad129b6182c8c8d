"""The tenancy schema as SQLAlchemy Core tables: one definition for SQLite and PostgreSQL,
created and upgraded by the Alembic migrations in `turnout/tenancy/migrations`."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Column,
    DateTime,
    ForeignKey,
    Index,
    LargeBinary,
    MetaData,
    String,
    Table,
)

metadata = MetaData()

tenants = Table(
    "turnout_tenants", metadata,
    Column("id", String(63), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("disabled_at", DateTime(timezone=True), nullable=True),
)

virtual_keys = Table(
    "turnout_virtual_keys", metadata,
    Column("id", String(16), primary_key=True),
    Column("tenant_id", String(63), ForeignKey("turnout_tenants.id"), nullable=False),
    Column("name", String(200), nullable=False),
    Column("digest", LargeBinary(32), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=True),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
    Column("aliases", JSON, nullable=True),
    Index("ix_turnout_virtual_keys_tenant", "tenant_id"),
)
