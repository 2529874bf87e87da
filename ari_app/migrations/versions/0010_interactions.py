"""interactions: one record per customer call, for the KPIs

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

WHEN = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "interaction",
        sa.Column("call_id", sa.String(64), primary_key=True),
        sa.Column("caller", sa.String(80), nullable=False),
        sa.Column("arrived_at", WHEN, nullable=False),
        sa.Column("ended_at", WHEN, nullable=True),
        sa.Column("ivr", sa.Boolean(), nullable=False),
        sa.Column("self_served", sa.Boolean(), nullable=False),
        sa.Column("queue", sa.String(32), nullable=True),
        sa.Column("queued_at", WHEN, nullable=True),
        sa.Column("answered_at", WHEN, nullable=True),
        sa.Column("abandoned_at", WHEN, nullable=True),
        sa.Column("left_at", WHEN, nullable=True),
        sa.Column("blocked", sa.Boolean(), nullable=False),
        sa.Column("segments", sa.JSON(), nullable=False),
        sa.Column("resolved", sa.Boolean(), nullable=True),
        sa.Column("disposition", sa.String(64), nullable=True),
        sa.Column("open", sa.JSON(), nullable=False),
        sa.Column("updated_at", WHEN, nullable=False),
    )
    for column in ("caller", "arrived_at", "queue", "queued_at"):
        op.create_index(f"ix_interaction_{column}", "interaction", [column])


def downgrade() -> None:
    for column in ("caller", "arrived_at", "queue", "queued_at"):
        op.drop_index(f"ix_interaction_{column}", table_name="interaction")
    op.drop_table("interaction")
