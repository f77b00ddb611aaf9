"""issue 16: the providers' signed live node metrics

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-08 01:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "node_metrics",
        sa.Column("node_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("reporter", sa.String(length=42), nullable=False),
        sa.Column("sent_at", sa.BigInteger(), nullable=False),
        sa.Column("up", sa.Boolean(), nullable=False),
        sa.Column("cpus", sa.Integer(), nullable=False),
        sa.Column("free_cpus", sa.Integer(), nullable=False),
        sa.Column("memory_mib", sa.BigInteger(), nullable=False),
        sa.Column("free_memory_mib", sa.BigInteger(), nullable=False),
        sa.Column("gpus", sa.Integer(), nullable=False),
        sa.Column("free_gpus", sa.Integer(), nullable=False),
        sa.Column("load_1m", sa.Double(), nullable=False),
        sa.Column("services", sa.JSON(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("node_id"),
    )
    op.create_index("ix_node_metrics_reporter", "node_metrics", ["reporter"])


def downgrade() -> None:
    op.drop_index("ix_node_metrics_reporter", table_name="node_metrics")
    op.drop_table("node_metrics")
