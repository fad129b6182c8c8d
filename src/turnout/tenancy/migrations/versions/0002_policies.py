"""Limits and budgets (a JSON policy) on tenants and keys.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("turnout_tenants") as batch:
        batch.add_column(sa.Column("policy", sa.JSON, nullable=True))
    with op.batch_alter_table("turnout_virtual_keys") as batch:
        batch.add_column(sa.Column("policy", sa.JSON, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("turnout_virtual_keys") as batch:
        batch.drop_column("policy")
    with op.batch_alter_table("turnout_tenants") as batch:
        batch.drop_column("policy")
