"""``support_messages.original``: an agent's reply translated into the customer's language keeps what the
agent wrote (``{"text", "language", "engine"}``) on the message itself, for the desk. Before, it was a
``system`` note in the conversation, which the customer's widget showed too.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("support_messages") as batch:
        batch.add_column(sa.Column("original", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("support_messages") as batch:
        batch.drop_column("original")
