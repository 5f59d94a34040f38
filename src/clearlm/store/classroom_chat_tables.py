"""The classroom chat tutor's table (``clearlm.apps.classroom.tutor_chat``; migration 0013).

Imported at the end of ``store/tables.py`` so that ``Base.metadata`` holds it."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, DateTime, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from clearlm.store.tables import Base


class ChatTurnRow(Base):
    """One question a learner asked a course's chat tutor: ``question`` and ``reply`` (as the policy stores
    text; the reply as the learner saw it), ``citations`` (the CitedAnswer's JSON; None when the reply was
    replaced or cites nothing), ``item`` (the item open when it was asked, None if none), ``leaked`` (the
    generated reply gave that item's answer away and was replaced by a nudge), the ``knowledge_base``, the
    ``model`` and ``request_ids`` (the pipeline turns' audit records)."""

    __tablename__ = "classroom_chat_turns"
    __table_args__ = (Index("ix_classroom_chat_turns_learner", "learner_id", "course", "created_at"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    learner_id: Mapped[int] = mapped_column(ForeignKey("classroom_learners.id", ondelete="CASCADE"))
    course: Mapped[str] = mapped_column(String(64))
    item: Mapped[str | None] = mapped_column(String(64))
    question: Mapped[str] = mapped_column(Text)
    reply: Mapped[str] = mapped_column(Text)
    citations: Mapped[dict | None] = mapped_column(JSON)
    leaked: Mapped[bool] = mapped_column(Boolean)
    knowledge_base: Mapped[str] = mapped_column(String(64))
    model: Mapped[str] = mapped_column(String(128))
    request_ids: Mapped[list] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
