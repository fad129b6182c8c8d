"""The tenancy schema as SQLAlchemy Core tables: one definition for SQLite and PostgreSQL,
created and upgraded by the Alembic migrations in `turnout/tenancy/migrations`."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
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
    Column("policy", JSON, nullable=True),
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
    Column("policy", JSON, nullable=True),
    Index("ix_turnout_virtual_keys_tenant", "tenant_id"),
)

spend = Table(
    "turnout_spend", metadata,
    # One row per upstream attempt; the attempt id makes a retried write count once.
    Column("attempt_id", String(64), primary_key=True),
    Column("request_id", String(128), nullable=False),
    Column("tenant_id", String(63), nullable=True),
    Column("key_id", String(16), nullable=True),
    Column("alias", String(200), nullable=False),
    Column("provider", String(100), nullable=False),
    Column("deployment", String(300), nullable=False),
    Column("model", String(300), nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("latency_ms", Integer, nullable=False),
    Column("outcome", String(32), nullable=False),
    Column("status", Integer, nullable=False),
    Column("stream", Boolean, nullable=False),
    Column("input_tokens", BigInteger, nullable=False),
    Column("output_tokens", BigInteger, nullable=False),
    Column("cached_input_tokens", BigInteger, nullable=False),
    Column("cache_write_tokens", BigInteger, nullable=False),
    Column("reasoning_tokens", BigInteger, nullable=False),
    Column("cost_micro_usd", BigInteger, nullable=False),
    Column("estimated", Boolean, nullable=False),
    Column("conversation_id", String(200), nullable=True),
    Index("ix_turnout_spend_tenant_time", "tenant_id", "started_at"),
    Index("ix_turnout_spend_time", "started_at"),
)

provider_keys = Table(
    "turnout_provider_keys", metadata,
    # A tenant's own provider key (bring your own key), encrypted with AES-GCM.
    Column("tenant_id", String(63), ForeignKey("turnout_tenants.id"), primary_key=True),
    Column("provider", String(100), primary_key=True),
    Column("ciphertext", LargeBinary, nullable=False),
    Column("master_key_id", String(64), nullable=False),
    Column("fingerprint", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)
