"""agents, their state and its audit trail

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "agent",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("name", sa.String(80), nullable=False),
        sa.Column("team", sa.String(40), nullable=False, server_default=""),
        sa.Column("skills", sa.JSON(), nullable=False),
        sa.Column("wrap_up_seconds", sa.Integer(), nullable=False),
        sa.Column("sip_digest", sa.String(32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "agent_state",
        sa.Column("agent_id", sa.String(32), primary_key=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("since", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reason", sa.String(32), nullable=False, server_default=""),
        sa.Column("call_id", sa.String(64), nullable=True),
        sa.Column("missed", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("pending", sa.String(16), nullable=True),
        sa.Column("pending_reason", sa.String(32), nullable=False, server_default=""),
        sa.Column("wrap_up_until", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_table(
        "agent_event",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("agent_id", sa.String(32), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("event", sa.String(32), nullable=False),
        sa.Column("from_state", sa.String(16), nullable=False),
        sa.Column("to_state", sa.String(16), nullable=False),
        sa.Column("reason", sa.String(32), nullable=False, server_default=""),
        sa.Column("source", sa.String(16), nullable=False),
    )
    op.create_index("ix_agent_event_agent_id", "agent_event", ["agent_id"])


def downgrade() -> None:
    op.drop_index("ix_agent_event_agent_id", table_name="agent_event")
    op.drop_table("agent_event")
    op.drop_table("agent_state")
    op.drop_table("agent")
