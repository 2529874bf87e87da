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
_INDEXED = ("caller", "arrived_at", "queue", "queued_at", "arrived_us", "queued_us")


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
        # for the KPI queries: moments in microseconds since the epoch, the wait, the
        # segments' sums, and the gap to the caller's next call
        sa.Column("arrived_us", sa.BigInteger(), nullable=False),
        sa.Column("queued_us", sa.BigInteger(), nullable=True),
        sa.Column("ended_us", sa.BigInteger(), nullable=True),
        sa.Column("wait_seconds", sa.Float(), nullable=True),
        sa.Column("handle_seconds", sa.Float(), nullable=False),
        sa.Column("wrap_up_seconds", sa.Float(), nullable=False),
        sa.Column("repeat_after", sa.Float(), nullable=True),
    )
    for column in _INDEXED:
        op.create_index(f"ix_interaction_{column}", "interaction", [column])
    op.create_index("ix_interaction_caller_arrived_us", "interaction", ["caller", "arrived_us"])
    op.create_table(
        "interaction_segment",
        sa.Column("call_id", sa.String(64), primary_key=True),
        sa.Column("n", sa.Integer(), primary_key=True),
        sa.Column("agent_id", sa.String(64), nullable=False),
        sa.Column("answered_us", sa.BigInteger(), nullable=False),
        sa.Column("handle_seconds", sa.Float(), nullable=False),
        sa.Column("wrap_up_seconds", sa.Float(), nullable=False),
    )
    op.create_index("ix_interaction_segment_agent_id", "interaction_segment", ["agent_id"])
    op.create_index("ix_interaction_segment_answered_us", "interaction_segment", ["answered_us"])

    # the KPI sums of 15-minute intervals, kept added up (adapters/kpi_rollup.py)
    def bucket() -> sa.Column:
        return sa.Column("bucket_us", sa.BigInteger(), primary_key=True)

    def targets() -> sa.Column:
        return sa.Column("targets", sa.String(64), nullable=False)

    op.create_table("kpi_interval", bucket(), targets(), sa.Column("made_at", WHEN, nullable=False))
    op.create_table(
        "kpi_queue_interval",
        bucket(),
        sa.Column("queue", sa.String(32), primary_key=True),
        targets(),
        *_counts("blocked", "entered", "short_abandoned", "handled", "abandoned"),
        *_counts("within_target"),
        *_seconds("answer_wait"),
        *_counts("waited"),
        *_seconds("wait"),
        sa.Column("longest_wait", sa.Float(), nullable=True),
        *_seconds("handle", "wrap_up"),
        *_counts("resolved"),
    )
    op.create_table(
        "kpi_agent_interval",
        bucket(),
        sa.Column("agent_id", sa.String(64), primary_key=True),
        targets(),
        *_counts("handled"),
        *_seconds("handle", "wrap_up", "handling", "staffed"),
    )
    op.create_table("kpi_ivr_interval", bucket(), targets(), *_counts("entered", "contained"))


def _counts(*names: str) -> list[sa.Column]:
    return [sa.Column(name, sa.Integer(), nullable=False) for name in names]


def _seconds(*names: str) -> list[sa.Column]:
    return [sa.Column(name, sa.Float(), nullable=False) for name in names]


def downgrade() -> None:
    for table in ("kpi_ivr_interval", "kpi_agent_interval", "kpi_queue_interval", "kpi_interval"):
        op.drop_table(table)
    op.drop_table("interaction_segment")
    op.drop_index("ix_interaction_caller_arrived_us", table_name="interaction")
    for column in _INDEXED:
        op.drop_index(f"ix_interaction_{column}", table_name="interaction")
    op.drop_table("interaction")
