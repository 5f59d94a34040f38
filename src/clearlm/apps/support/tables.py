"""The support desk's tables (SQLAlchemy 2 declarative mapping, on the store's ``Base`` so that one
metadata and one Alembic history cover them): customers, their conversations, the messages.

Created by the migration ``store/migrations/versions/0005_support_desk.py``; a change here needs a
migration (``tests/store/test_migrations.py`` checks that the two agree).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, DateTime, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from clearlm.store.tables import Base


class CustomerRow(Base):
    """A customer of a tenant's desk. ``language``: ISO 639-1 (``en``); ``attributes``: what the desk
    defines (plan, country, order count, ...), JSON."""

    __tablename__ = "support_customers"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(64), index=True)
    name: Mapped[str] = mapped_column(Text)
    language: Mapped[str] = mapped_column(String(8))
    attributes: Mapped[dict] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


class SupportConversationRow(Base):
    """A conversation of one customer with the desk. ``status``: open, handed_off, closed;
    ``flow_state``: the dialog flow's state (``FlowState.to_json()``), or None outside a flow."""

    __tablename__ = "support_conversations"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(64), index=True)
    customer_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("support_customers.id", ondelete="CASCADE"), index=True
    )
    status: Mapped[str] = mapped_column(String(16), index=True, default="open")
    flow_state: Mapped[dict | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


class SupportMessageRow(Base):
    """A message of a support conversation, in ``id`` order. ``role``: customer, assistant, agent,
    system; ``language``: ISO 639-1 of ``text``, or None when unknown."""

    __tablename__ = "support_messages"
    __table_args__ = {"sqlite_autoincrement": True}  # ids never reused: they order the messages

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    conversation_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("support_conversations.id", ondelete="CASCADE"), index=True
    )
    role: Mapped[str] = mapped_column(String(16))
    text: Mapped[str] = mapped_column(Text)
    language: Mapped[str | None] = mapped_column(String(8))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
