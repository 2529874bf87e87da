"""each call's IVR flow, path and outcome

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("call") as batch:
        batch.add_column(sa.Column("flow", sa.String(80), nullable=True))
        batch.add_column(sa.Column("flow_version", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("ivr_outcome", sa.String(32), nullable=True))
        batch.add_column(sa.Column("ivr_path", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("call") as batch:
        for column in ("ivr_path", "ivr_outcome", "flow_version", "flow"):
            batch.drop_column(column)
