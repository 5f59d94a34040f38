"""The writing studio's tables (``clearlm.apps.studio``; migration 0014): projects, their story bible,
their outline (parts > chapters > scenes, one table of nodes) and every version of every scene.

Imported at the end of ``store/tables.py`` so that ``Base.metadata`` holds them."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, DateTime, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from clearlm.store.tables import Base


class StudioProjectRow(Base):
    """A writing project of a tenant: its ``title``, ``premise`` and ``style`` (tone and style controls:
    {"tone", "person", "tense", "notes"}, each optional)."""

    __tablename__ = "studio_projects"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(64), index=True)
    title: Mapped[str] = mapped_column(Text)
    premise: Mapped[str] = mapped_column(Text, default="")
    style: Mapped[dict] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class StudioBibleRow(Base):
    """A story-bible entry: ``kind`` (character, place, style, fact or memory), ``name``, ``aliases``
    (list of str) and ``text``; ``source`` is "person" or the node id of the chapter a memory summarises."""

    __tablename__ = "studio_bible"
    __table_args__ = (UniqueConstraint("project_id", "name"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    project_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("studio_projects.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(200))
    aliases: Mapped[list] = mapped_column(JSON, default=list)
    text: Mapped[str] = mapped_column(Text)
    source: Mapped[str] = mapped_column(String(64), default="person")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class StudioNodeRow(Base):
    """A node of a project's outline: ``kind`` part, chapter or scene, under ``parent_id`` (None for a
    part), at ``position`` among its siblings; a scene has ``beats`` (list of str). A scene's text is its
    newest version (``StudioVersionRow``)."""

    __tablename__ = "studio_nodes"
    __table_args__ = (Index("ix_studio_nodes_parent", "project_id", "parent_id", "position"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    project_id: Mapped[str] = mapped_column(String(32), ForeignKey("studio_projects.id", ondelete="CASCADE"))
    parent_id: Mapped[str | None] = mapped_column(
        String(32), ForeignKey("studio_nodes.id", ondelete="CASCADE")
    )
    kind: Mapped[str] = mapped_column(String(16))
    position: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(Text)
    beats: Mapped[list] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class StudioVersionRow(Base):
    """Version ``number`` (1, 2, ...) of a scene: its whole ``text``, who made it (``author``: a model's
    name, or "person"), the ``operation`` (draft, continue, rewrite, tone, edit, restore, ...) and its
    ``detail`` (the instruction, the selection, the bible entries in the context, the audit request ids)."""

    __tablename__ = "studio_versions"
    __table_args__ = (UniqueConstraint("scene_id", "number"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    scene_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("studio_nodes.id", ondelete="CASCADE"), index=True
    )
    number: Mapped[int] = mapped_column(Integer)
    text: Mapped[str] = mapped_column(Text)
    author: Mapped[str] = mapped_column(Text)
    operation: Mapped[str] = mapped_column(String(32))
    detail: Mapped[dict] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
