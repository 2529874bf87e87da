"""monitoring: supervisors (a team and a phone), the monitor sessions' audit rows, and
the supervisor a token belongs to

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "supervisor",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("name", sa.String(80), nullable=False),
        sa.Column("team", sa.String(40), nullable=False),
        sa.Column("sip_digest", sa.String(32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "monitor_session",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("call_id", sa.String(80), nullable=False),
        sa.Column("agent_id", sa.String(32), nullable=True),
        sa.Column("supervisor_id", sa.String(32), nullable=False),
        sa.Column("requested_by", sa.String(80), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("modes", sa.JSON(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("end_reason", sa.String(200), nullable=True),
        sa.Column("supervisor_channel", sa.String(80), nullable=True),
    )
    for column in ("call_id", "agent_id", "supervisor_id", "started_at"):
        op.create_index(f"ix_monitor_session_{column}", "monitor_session", [column])
    op.add_column("api_token", sa.Column("subject", sa.String(32), nullable=True))


def downgrade() -> None:
    op.drop_column("api_token", "subject")
    for column in ("call_id", "agent_id", "supervisor_id", "started_at"):
        op.drop_index(f"ix_monitor_session_{column}", table_name="monitor_session")
    op.drop_table("monitor_session")
    op.drop_table("supervisor")
