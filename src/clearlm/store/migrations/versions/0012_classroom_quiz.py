"""The classroom's quizzes (``store/tables.py`` QuizRunRow and QuizQuestionRow, used by
``apps/classroom/quiz.py`` and ``quiz_store.py``): each generation from a knowledge base, and each
question it kept (answer key, rubric, citation) with its status (pending, approved, rejected) and the
teacher's decision.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "classroom_quiz_runs",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("kb", sa.String(64), nullable=False),
        sa.Column("topic", sa.Text, nullable=True),
        sa.Column("requested", sa.Integer, nullable=False),
        sa.Column("tried", sa.Integer, nullable=False),
        sa.Column("kept", sa.Integer, nullable=False),
        sa.Column("dropped", sa.JSON, nullable=False),
        sa.Column("model", sa.String(128), nullable=False),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
    )
    op.create_table(
        "classroom_quiz_questions",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column(
            "run_id",
            sa.String(32),
            sa.ForeignKey("classroom_quiz_runs.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("kb", sa.String(64), nullable=False),
        sa.Column("question", sa.Text, nullable=False),
        sa.Column("answer", sa.Text, nullable=False),
        sa.Column("rubric", sa.JSON, nullable=False),
        sa.Column("citation", sa.JSON, nullable=False),
        sa.Column("support", sa.Float, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("model", sa.String(128), nullable=False),
        sa.Column("review_id", sa.String(32), nullable=True),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("decided_by", sa.String(64), nullable=True),
        sa.Column("decided_at", TZ, nullable=True),
        sa.Column("decision", sa.JSON, nullable=True),
    )
    op.create_index(
        "ix_classroom_quiz_questions_status", "classroom_quiz_questions", ["tenant", "status", "kb"]
    )


def downgrade() -> None:
    op.drop_index("ix_classroom_quiz_questions_status", table_name="classroom_quiz_questions")
    op.drop_table("classroom_quiz_questions")
    op.drop_table("classroom_quiz_runs")
