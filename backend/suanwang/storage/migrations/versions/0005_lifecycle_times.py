"""lifecycle times: when an order's match was seen mined, when its job was seen running

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29 06:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("orders", sa.Column("matched_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("jobs", sa.Column("running_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    op.drop_column("jobs", "running_at")
    op.drop_column("orders", "matched_at")
