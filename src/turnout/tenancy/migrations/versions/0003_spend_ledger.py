"""The spend ledger: one row per upstream attempt.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "turnout_spend",
        sa.Column("attempt_id", sa.String(64), primary_key=True),
        sa.Column("request_id", sa.String(128), nullable=False),
        sa.Column("tenant_id", sa.String(63), nullable=True),
        sa.Column("key_id", sa.String(16), nullable=True),
        sa.Column("alias", sa.String(200), nullable=False),
        sa.Column("provider", sa.String(100), nullable=False),
        sa.Column("deployment", sa.String(300), nullable=False),
        sa.Column("model", sa.String(300), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("latency_ms", sa.Integer, nullable=False),
        sa.Column("outcome", sa.String(32), nullable=False),
        sa.Column("status", sa.Integer, nullable=False),
        sa.Column("stream", sa.Boolean, nullable=False),
        sa.Column("input_tokens", sa.BigInteger, nullable=False),
        sa.Column("output_tokens", sa.BigInteger, nullable=False),
        sa.Column("cached_input_tokens", sa.BigInteger, nullable=False),
        sa.Column("cache_write_tokens", sa.BigInteger, nullable=False),
        sa.Column("reasoning_tokens", sa.BigInteger, nullable=False),
        sa.Column("cost_micro_usd", sa.BigInteger, nullable=False),
        sa.Column("estimated", sa.Boolean, nullable=False),
        sa.Column("conversation_id", sa.String(200), nullable=True),
    )
    op.create_index("ix_turnout_spend_tenant_time", "turnout_spend",
                    ["tenant_id", "started_at"])
    op.create_index("ix_turnout_spend_time", "turnout_spend", ["started_at"])


def downgrade() -> None:
    op.drop_index("ix_turnout_spend_time", "turnout_spend")
    op.drop_index("ix_turnout_spend_tenant_time", "turnout_spend")
    op.drop_table("turnout_spend")
