"""routing decisions: why each call went to its agent

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "routing_decision",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("call_id", sa.String(64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("agent_id", sa.String(32), nullable=False),
        sa.Column("queue", sa.String(32), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("requirement", sa.String(400), nullable=False),
        sa.Column("strategy", sa.String(16), nullable=False),
        sa.Column("free_agents", sa.Integer(), nullable=False),
        sa.Column("qualified", sa.Integer(), nullable=False),
        sa.Column("waiting_calls", sa.Integer(), nullable=False),
        sa.Column("candidates", sa.JSON(), nullable=False),
        sa.Column("why", sa.String(600), nullable=False),
    )
    op.create_index("ix_routing_decision_call_id", "routing_decision", ["call_id"])


def downgrade() -> None:
    op.drop_index("ix_routing_decision_call_id", table_name="routing_decision")
    op.drop_table("routing_decision")
