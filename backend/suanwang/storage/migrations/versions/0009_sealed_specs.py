"""issue 16: sealed specifications and results (the recipients of each)

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-08 02:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # The chain node ids an order's sealed specification is readable by (the matcher places it on one).
    op.add_column("orders", sa.Column("spec_nodes", sa.JSON(), nullable=True))
    # Who a job's result is sealed to: the buyer's result key and the node's own.
    op.add_column("jobs", sa.Column("sealed_to", sa.JSON(), nullable=True))


def downgrade() -> None:
    op.drop_column("jobs", "sealed_to")
    op.drop_column("orders", "spec_nodes")
