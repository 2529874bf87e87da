"""CDRs and channel events from Asterisk, and how far their files have been read

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

TEXT = 200


def _texts(*names: str) -> list[sa.Column]:
    return [sa.Column(name, sa.String(TEXT), nullable=False) for name in names]


def upgrade() -> None:
    op.create_table(
        "cdr",
        sa.Column("uniqueid", sa.String(64), primary_key=True),
        sa.Column("sequence", sa.Integer(), primary_key=True),
        sa.Column("linkedid", sa.String(64), nullable=False),
        *_texts("channel", "dstchannel", "src", "dst", "dcontext", "clid", "lastapp"),
        sa.Column("lastdata", sa.String(TEXT), nullable=False),
        sa.Column("start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("answer", sa.DateTime(timezone=True), nullable=True),
        sa.Column("end", sa.DateTime(timezone=True), nullable=False),
        sa.Column("duration", sa.Integer(), nullable=False),
        sa.Column("billsec", sa.Integer(), nullable=False),
        *_texts("disposition", "amaflags", "accountcode", "peeraccount", "userfield"),
        sa.Column("source", sa.String(16), nullable=False),
    )
    op.create_index("ix_cdr_linkedid", "cdr", ["linkedid"])
    op.create_index("ix_cdr_start", "cdr", ["start"])
    op.create_table(
        "cel",
        sa.Column("uniqueid", sa.String(64), primary_key=True),
        sa.Column("event", sa.String(TEXT), primary_key=True),
        sa.Column("at", sa.DateTime(timezone=True), primary_key=True),
        sa.Column("linkedid", sa.String(TEXT), nullable=False),
        *_texts("channel", "caller", "caller_name", "exten", "context", "app", "appdata"),
        sa.Column("peer", sa.String(TEXT), nullable=False),
        sa.Column("extra", sa.JSON(), nullable=True),
    )
    op.create_index("ix_cel_linkedid", "cel", ["linkedid"])
    op.create_table(
        "backstop_checkpoint",
        sa.Column("name", sa.String(16), primary_key=True),
        sa.Column("inode", sa.BigInteger(), nullable=False),
        sa.Column("offset", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("backstop_checkpoint")
    op.drop_index("ix_cel_linkedid", table_name="cel")
    op.drop_table("cel")
    op.drop_index("ix_cdr_start", table_name="cdr")
    op.drop_index("ix_cdr_linkedid", table_name="cdr")
    op.drop_table("cdr")
