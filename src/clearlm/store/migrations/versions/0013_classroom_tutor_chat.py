"""The classroom's chat tutor (``store/classroom_chat_tables.py``, used by ``apps/classroom/tutor_chat.py``):
one row per question a learner asked the course's tutor, with the reply shown, its citations, the item
that was open and whether the reply was replaced because it gave that item's answer away.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "classroom_chat_turns",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column(
            "learner_id",
            sa.Integer,
            sa.ForeignKey("classroom_learners.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("course", sa.String(64), nullable=False),
        sa.Column("item", sa.String(64), nullable=True),
        sa.Column("question", sa.Text, nullable=False),
        sa.Column("reply", sa.Text, nullable=False),
        sa.Column("citations", sa.JSON, nullable=True),
        sa.Column("leaked", sa.Boolean, nullable=False),
        sa.Column("knowledge_base", sa.String(64), nullable=False),
        sa.Column("model", sa.String(128), nullable=False),
        sa.Column("request_ids", sa.JSON, nullable=False),
        sa.Column("created_at", TZ, nullable=False),
    )
    op.create_index(
        "ix_classroom_chat_turns_learner", "classroom_chat_turns", ["learner_id", "course", "created_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_classroom_chat_turns_learner", table_name="classroom_chat_turns")
    op.drop_table("classroom_chat_turns")
