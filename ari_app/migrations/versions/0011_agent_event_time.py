"""agent events by time: the KPIs read an agent's state changes of a window, and the
last one before it

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-26
"""

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_agent_event_at", "agent_event", ["at"])
    op.create_index("ix_agent_event_agent_id_at", "agent_event", ["agent_id", "at"])


def downgrade() -> None:
    op.drop_index("ix_agent_event_agent_id_at", table_name="agent_event")
    op.drop_index("ix_agent_event_at", table_name="agent_event")
