"""The support desk's tables (in ``store/tables.py``, used by ``apps/support``): customers, their
conversations (status and the dialog flow's state), the messages.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "support_customers",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("tenant", sa.String(64), nullable=False, index=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("language", sa.String(8), nullable=False),
        sa.Column("attributes", sa.JSON, nullable=False),
        sa.Column("created_at", TZ, nullable=False, index=True),
    )
    op.create_table(
        "support_conversations",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("tenant", sa.String(64), nullable=False, index=True),
        sa.Column(
            "customer_id",
            sa.String(32),
            sa.ForeignKey("support_customers.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        sa.Column("status", sa.String(16), nullable=False, index=True),
        sa.Column("flow_state", sa.JSON, nullable=True),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("updated_at", TZ, nullable=False, index=True),
    )
    op.create_table(
        "support_messages",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "conversation_id",
            sa.String(32),
            sa.ForeignKey("support_conversations.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("language", sa.String(8), nullable=True),
        sa.Column("created_at", TZ, nullable=False),
        sqlite_autoincrement=True,
    )


def downgrade() -> None:
    for table in ("support_messages", "support_conversations", "support_customers"):
        op.drop_table(table)
