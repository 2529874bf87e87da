"""recordings: conversations recorded, with their file's size, duration and checksum;
each agent's recording policy

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "recording",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("call_id", sa.String(80), nullable=False),
        sa.Column("agent_id", sa.String(32), nullable=True),
        sa.Column("queue", sa.String(32), nullable=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("format", sa.String(8), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("duration", sa.Float(), nullable=True),
        sa.Column("size", sa.Integer(), nullable=True),
        sa.Column("sha256", sa.String(64), nullable=True),
        sa.Column("pauses", sa.JSON(), nullable=False),
        sa.Column("error", sa.String(200), nullable=True),
    )
    for column in ("call_id", "agent_id", "queue", "started_at"):
        op.create_index(f"ix_recording_{column}", "recording", [column])
    op.add_column(
        "agent", sa.Column("recording", sa.String(8), nullable=False, server_default="queue")
    )


def downgrade() -> None:
    op.drop_column("agent", "recording")
    for column in ("call_id", "agent_id", "queue", "started_at"):
        op.drop_index(f"ix_recording_{column}", table_name="recording")
    op.drop_table("recording")
