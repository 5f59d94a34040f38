"""The support desk's hand-off signals: ``support_conversations.signals`` (JSON, nullable), where the
hand-off rules (``apps/support/triggers.py``) keep each customer message's sentiment score and the run of
failed answers, so a restart or another server process applies them the same way.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("support_conversations") as batch:
        batch.add_column(sa.Column("signals", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("support_conversations") as batch:
        batch.drop_column("signals")
