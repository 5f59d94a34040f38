"""``support_messages.withheld``: a customer message whose turn the input policy blocked (a prompt
injection, say). It stays in the conversation for people (the desk view, the audit log), but the desk's
memory never puts it in a model context again: the pipeline does not re-scan a stored history
(``TurnRequest.screened``), so a blocked message must be left out of it.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("support_messages") as batch:
        batch.add_column(sa.Column("withheld", sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table("support_messages") as batch:
        batch.drop_column("withheld")
