"""issue 15: the agents' signed heartbeats

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07 22:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "agent_heartbeats",
        sa.Column("address", sa.String(length=42), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("sent_at", sa.BigInteger(), nullable=False),
        sa.Column("indexed_block", sa.BigInteger(), nullable=True),
        sa.Column("last_error", sa.String(length=2000), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("address", "role"),
    )


def downgrade() -> None:
    op.drop_table("agent_heartbeats")
