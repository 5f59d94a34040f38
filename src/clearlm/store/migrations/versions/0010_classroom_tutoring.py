"""The classroom's tutoring tables (in ``store/tables.py``, used by ``apps/classroom/tutor.py``): learners
(tenant-scoped), their attempts, their P(mastery) per skill (BKT), their FSRS review cards per item, and
the BKT parameters fitted per skill from a tenant's attempts.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def _learner_fk(primary_key: bool = False) -> sa.Column:
    return sa.Column(
        "learner_id",
        sa.Integer,
        sa.ForeignKey("classroom_learners.id", ondelete="CASCADE"),
        nullable=False,
        primary_key=primary_key,
    )


def upgrade() -> None:
    op.create_table(
        "classroom_learners",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("tenant", sa.String(64), nullable=False, index=True),
        sa.Column("external_id", sa.String(128), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.UniqueConstraint("tenant", "external_id"),
    )
    op.create_table(
        "classroom_attempts",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        _learner_fk(),
        sa.Column("course", sa.String(64), nullable=False, index=True),
        sa.Column("item", sa.String(64), nullable=False),
        sa.Column("answer", sa.Text, nullable=False),
        sa.Column("correct", sa.Boolean, nullable=False),
        sa.Column("hints_used", sa.Integer, nullable=False),
        sa.Column("seconds", sa.Float, nullable=True),
        sa.Column("created_at", TZ, nullable=False),
    )
    op.create_index(
        "ix_classroom_attempts_learner", "classroom_attempts", ["learner_id", "course", "created_at"]
    )
    op.create_table(
        "classroom_mastery",
        _learner_fk(primary_key=True),
        sa.Column("course", sa.String(64), primary_key=True),
        sa.Column("skill", sa.String(64), primary_key=True),
        sa.Column("p_mastery", sa.Float, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
    )
    op.create_table(
        "classroom_cards",
        _learner_fk(primary_key=True),
        sa.Column("course", sa.String(64), primary_key=True),
        sa.Column("item", sa.String(64), primary_key=True),
        sa.Column("card", sa.JSON, nullable=False),
        sa.Column("due", TZ, nullable=False),
    )
    op.create_index("ix_classroom_cards_due", "classroom_cards", ["learner_id", "course", "due"])
    op.create_table(
        "classroom_skill_params",
        sa.Column("tenant", sa.String(64), primary_key=True),
        sa.Column("course", sa.String(64), primary_key=True),
        sa.Column("skill", sa.String(64), primary_key=True),
        sa.Column("prior", sa.Float, nullable=False),
        sa.Column("learn", sa.Float, nullable=False),
        sa.Column("guess", sa.Float, nullable=False),
        sa.Column("slip", sa.Float, nullable=False),
        sa.Column("n_attempts", sa.Integer, nullable=False),
        sa.Column("fitted_at", TZ, nullable=False),
    )


def downgrade() -> None:
    op.drop_index("ix_classroom_cards_due", table_name="classroom_cards")
    op.drop_index("ix_classroom_attempts_learner", table_name="classroom_attempts")
    for table in (
        "classroom_skill_params",
        "classroom_cards",
        "classroom_mastery",
        "classroom_attempts",
        "classroom_learners",
    ):
        op.drop_table(table)
