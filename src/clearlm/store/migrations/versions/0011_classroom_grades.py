"""The classroom's gradebook (``store/tables.py`` GradeRow, used by ``apps/classroom/gradebook.py``): one
row per graded answer (tenant, rubric id and version, answer id) with the grade's JSON, its status
(released, in_review, overridden, accepted) and the teacher's decision.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "classroom_grades",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("rubric_id", sa.String(64), nullable=False),
        sa.Column("rubric_version", sa.Integer, nullable=False),
        sa.Column("answer_id", sa.String(128), nullable=False),
        sa.Column("learner", sa.String(128), nullable=False),
        sa.Column("answer", sa.Text, nullable=False),
        sa.Column("score", sa.Integer, nullable=False),
        sa.Column("final_score", sa.Integer, nullable=False),
        sa.Column("confidence", sa.Float, nullable=False),
        sa.Column("grade", sa.JSON, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("model", sa.String(128), nullable=False),
        sa.Column("grading_id", sa.String(64), nullable=False),
        sa.Column("review_id", sa.String(32), nullable=True),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("decided_by", sa.String(64), nullable=True),
        sa.Column("decided_at", TZ, nullable=True),
        sa.Column("decision", sa.JSON, nullable=True),
        sa.UniqueConstraint("tenant", "rubric_id", "rubric_version", "answer_id"),
    )
    op.create_index("ix_classroom_grades_rubric", "classroom_grades", ["tenant", "rubric_id", "status"])


def downgrade() -> None:
    op.drop_index("ix_classroom_grades_rubric", table_name="classroom_grades")
    op.drop_table("classroom_grades")
