"""issue 14's ABI: nodes' encryption keys, time used and SLA breaches of deals, dispute bonds, transit tariffs

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07 19:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("nodes", sa.Column("encryption_key", sa.String(length=66), nullable=True))
    op.add_column("deals", sa.Column("used_seconds", sa.BigInteger(), nullable=True))
    op.add_column("deals", sa.Column("dispute_bond", sa.String(length=80), nullable=True))
    op.add_column("deals", sa.Column("sla_breached", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.create_table(
        "transit_tariffs",
        sa.Column("operator", sa.String(length=42), nullable=False),
        sa.Column("seat", sa.Integer(), nullable=False),
        sa.Column("per_gbps_hour", sa.String(length=80), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("operator"),
    )


def downgrade() -> None:
    op.drop_table("transit_tariffs")
    op.drop_column("deals", "sla_breached")
    op.drop_column("deals", "dispute_bond")
    op.drop_column("deals", "used_seconds")
    op.drop_column("nodes", "encryption_key")
