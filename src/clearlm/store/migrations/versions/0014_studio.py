"""The writing studio (``store/studio_tables.py``, used by ``apps/studio``): projects, story-bible entries,
outline nodes (parts, chapters, scenes with beats) and every version of every scene.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "studio_projects",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("premise", sa.Text, nullable=False),
        sa.Column("style", sa.JSON, nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
    )
    op.create_index("ix_studio_projects_tenant", "studio_projects", ["tenant"])
    op.create_table(
        "studio_bible",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column(
            "project_id",
            sa.String(32),
            sa.ForeignKey("studio_projects.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("aliases", sa.JSON, nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("source", sa.String(64), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
        sa.UniqueConstraint("project_id", "name"),
    )
    op.create_index("ix_studio_bible_project_id", "studio_bible", ["project_id"])
    op.create_table(
        "studio_nodes",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column(
            "project_id",
            sa.String(32),
            sa.ForeignKey("studio_projects.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column(
            "parent_id", sa.String(32), sa.ForeignKey("studio_nodes.id", ondelete="CASCADE"), nullable=True
        ),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("beats", sa.JSON, nullable=False),
        sa.Column("created_at", TZ, nullable=False),
    )
    op.create_index("ix_studio_nodes_parent", "studio_nodes", ["project_id", "parent_id", "position"])
    op.create_table(
        "studio_versions",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column(
            "scene_id", sa.String(32), sa.ForeignKey("studio_nodes.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("number", sa.Integer, nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("author", sa.Text, nullable=False),
        sa.Column("operation", sa.String(32), nullable=False),
        sa.Column("detail", sa.JSON, nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.UniqueConstraint("scene_id", "number"),
    )
    op.create_index("ix_studio_versions_scene_id", "studio_versions", ["scene_id"])


def downgrade() -> None:
    op.drop_index("ix_studio_versions_scene_id", table_name="studio_versions")
    op.drop_table("studio_versions")
    op.drop_index("ix_studio_nodes_parent", table_name="studio_nodes")
    op.drop_table("studio_nodes")
    op.drop_index("ix_studio_bible_project_id", table_name="studio_bible")
    op.drop_table("studio_bible")
    op.drop_index("ix_studio_projects_tenant", table_name="studio_projects")
    op.drop_table("studio_projects")
