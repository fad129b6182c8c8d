"""Tenants and virtual keys.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "turnout_tenants",
        sa.Column("id", sa.String(63), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("disabled_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_table(
        "turnout_virtual_keys",
        sa.Column("id", sa.String(16), primary_key=True),
        sa.Column("tenant_id", sa.String(63), sa.ForeignKey("turnout_tenants.id"),
                  nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("digest", sa.LargeBinary(32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("aliases", sa.JSON, nullable=True),
    )
    op.create_index("ix_turnout_virtual_keys_tenant", "turnout_virtual_keys", ["tenant_id"])


def downgrade() -> None:
    op.drop_index("ix_turnout_virtual_keys_tenant", "turnout_virtual_keys")
    op.drop_table("turnout_virtual_keys")
    op.drop_table("turnout_tenants")
