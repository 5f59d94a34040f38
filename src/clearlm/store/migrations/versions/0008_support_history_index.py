"""An index on ``support_conversations (tenant, customer_id, created_at)``: the support desk's memory
(``apps/support/memory.py``) reads a customer's latest messages and earlier conversations on every turn;
without it SQLite picked the tenant's index and walked every conversation of the tenant.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02
"""

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

NAME = "ix_support_conversations_customer_history"


def upgrade() -> None:
    op.create_index(NAME, "support_conversations", ["tenant", "customer_id", "created_at"])


def downgrade() -> None:
    op.drop_index(NAME, table_name="support_conversations")
