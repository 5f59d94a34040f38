"""The support desk's one-question survey at close (CSAT): ``support_conversations.csat_score`` (1-5,
nullable: not answered), ``csat_comment`` (the customer's optional words) and ``csat_at`` (when it was
answered, UTC). ``apps/support/csat.py`` writes them; ``apps/support/analytics.py`` reads them.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("support_conversations") as batch:
        batch.add_column(sa.Column("csat_score", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("csat_comment", sa.Text(), nullable=True))
        batch.add_column(sa.Column("csat_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("support_conversations") as batch:
        batch.drop_column("csat_at")
        batch.drop_column("csat_comment")
        batch.drop_column("csat_score")
