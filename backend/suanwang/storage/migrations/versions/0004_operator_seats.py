"""operator seats: bills and deals name transit operators by seat

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29 03:50:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "operator_seats",
        sa.Column("seat", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("address", sa.String(length=42), nullable=False),
        sa.PrimaryKeyConstraint("seat"),
        sa.UniqueConstraint("address"),
    )


def downgrade() -> None:
    op.drop_table("operator_seats")
