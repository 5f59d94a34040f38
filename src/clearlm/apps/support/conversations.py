"""Support conversations and their messages: what a customer and the desk said, per tenant.

Every read and change names the tenant; a conversation of another tenant is answered as if it did not
exist (:class:`SupportConversationNotFoundError`, 404). A conversation's messages and a customer's
history are selected by the conversation's or the customer's id *and* the tenant, so another customer's
words never enter a conversation's context.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select

from clearlm.apps.support.customers import customer_row, language_code, now
from clearlm.errors import ClearlmError, InvalidInputError
from clearlm.store.db import Database, as_utc
from clearlm.store.tables import SupportConversationRow, SupportMessageRow

ROLES = ("customer", "assistant", "agent", "system")
STATUSES = ("open", "handed_off", "closed")
MAX_TEXT_CHARS = 100_000
MAX_HISTORY = 10_000  # messages per history() call


class SupportConversationNotFoundError(ClearlmError, LookupError):
    """No support conversation with that id in the caller's tenant."""

    status_code = 404
    error_type = "not_found_error"
    code = "support_conversation_not_found"


@dataclass(frozen=True, slots=True)
class SupportMessage:
    """A message as read back. Fields: id (increasing in the order written); conversation_id; role
    (customer, assistant, agent, system); text; language (ISO 639-1 or None); created_at (UTC);
    withheld (the input policy blocked its turn: it never enters a model context again); original (an
    agent reply translated for the customer: ``{"text", "language", "engine"}``, what the agent wrote,
    for the desk only; else None)."""

    id: int
    conversation_id: str
    role: str
    text: str
    language: str | None
    created_at: datetime
    withheld: bool = False
    original: dict | None = None

    def to_dict(self) -> dict:
        return {
            "id": self.id,
            "conversation_id": self.conversation_id,
            "role": self.role,
            "text": self.text,
            "language": self.language,
            "created_at": self.created_at.isoformat(),
            "withheld": self.withheld,
            "original": self.original,
        }


@dataclass(frozen=True, slots=True)
class SupportConversation:
    """A conversation as read back. Fields: id (``sup_...``); tenant; customer_id; status (open,
    handed_off, closed); flow_state (the flow's JSON state, or None); created_at, updated_at (UTC);
    messages (in order; filled by :meth:`SupportConversations.get`, empty elsewhere)."""

    id: str
    tenant: str
    customer_id: str
    status: str
    flow_state: dict | None
    created_at: datetime
    updated_at: datetime
    messages: list[SupportMessage] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "id": self.id,
            "object": "support.conversation",
            "customer_id": self.customer_id,
            "status": self.status,
            "flow_state": self.flow_state,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
            "messages": [m.to_dict() for m in self.messages],
        }


def _conversation(row: SupportConversationRow, messages=()) -> SupportConversation:
    return SupportConversation(
        id=row.id,
        tenant=row.tenant,
        customer_id=row.customer_id,
        status=row.status,
        flow_state=row.flow_state,
        created_at=as_utc(row.created_at),
        updated_at=as_utc(row.updated_at),
        messages=[_message(m) for m in messages],
    )


def _message(row: SupportMessageRow) -> SupportMessage:
    return SupportMessage(
        id=row.id,
        conversation_id=row.conversation_id,
        role=row.role,
        text=row.text,
        language=row.language,
        created_at=as_utc(row.created_at),
        withheld=bool(row.withheld),
        original=row.original,
    )


def _row(session, tenant: str, conversation_id: str) -> SupportConversationRow:
    row = session.get(SupportConversationRow, conversation_id)
    if row is None or row.tenant != tenant:
        raise SupportConversationNotFoundError(
            f"no support conversation with id {conversation_id!r}: a customer's history lists theirs"
        )
    return row


class SupportConversations:
    """The support conversations held in ``db``, each within its tenant."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def open(self, tenant: str, customer_id: str, flow_state: dict | None = None) -> SupportConversation:
        """A new open conversation of the customer (CustomerNotFoundError, 404: not in ``tenant``)."""
        with self.db.writing() as session:
            customer_row(session, tenant, customer_id)
            stamp = now()
            row = SupportConversationRow(
                id="sup_" + secrets.token_hex(10),
                tenant=tenant,
                customer_id=customer_id,
                status="open",
                flow_state=flow_state,
                created_at=stamp,
                updated_at=stamp,
            )
            session.add(row)
        return _conversation(row)

    def get(self, tenant: str, conversation_id: str) -> SupportConversation:
        """The conversation with its messages in order (SupportConversationNotFoundError, 404)."""
        with self.db.session() as session:
            row = _row(session, tenant, conversation_id)
            query = select(SupportMessageRow).where(SupportMessageRow.conversation_id == row.id)
            return _conversation(row, session.scalars(query.order_by(SupportMessageRow.id)))

    def append_message(
        self,
        tenant: str,
        conversation_id: str,
        role: str,
        text: str,
        language: str | None = None,
        original: dict | None = None,
    ) -> SupportMessage:
        """Add a message after the conversation's last one (its ``updated_at`` moves to now);
        ``original``: see :class:`SupportMessage`.

        Raises:
            InvalidInputError: an unknown role, an empty text or one over 100,000 characters, a language
                that is not ISO 639-1. SupportConversationNotFoundError (404): not in ``tenant``.
        """
        if role not in ROLES:
            raise InvalidInputError(f"a support message's role is one of {', '.join(ROLES)}, not {role!r}")
        if not text or not text.strip() or len(text) > MAX_TEXT_CHARS:
            raise InvalidInputError(f"a support message is 1-{MAX_TEXT_CHARS:,} characters of text")
        language = language_code(language, "a message's language")
        with self.db.writing() as session:
            conversation = _row(session, tenant, conversation_id)
            stamp = now()
            row = SupportMessageRow(
                conversation_id=conversation_id,
                role=role,
                text=text,
                language=language,
                created_at=stamp,
                original=original,
            )
            session.add(row)
            conversation.updated_at = stamp
            session.flush()
            return _message(row)

    def update(
        self,
        tenant: str,
        conversation_id: str,
        status: str | None = None,
        flow_state: dict | None = None,
    ) -> SupportConversation:
        """Set the status (open, handed_off, closed) and/or save the flow's state; None leaves a field
        as it is. Returns the conversation without its messages.

        Raises:
            InvalidInputError: an unknown status. SupportConversationNotFoundError (404).
        """
        if status is not None and status not in STATUSES:
            raise InvalidInputError(
                f"a conversation's status is one of {', '.join(STATUSES)}, not {status!r}"
            )
        with self.db.writing() as session:
            row = _row(session, tenant, conversation_id)
            if status is not None:
                row.status = status
            if flow_state is not None:
                row.flow_state = flow_state
            row.updated_at = now()
            return _conversation(row)

    def withhold(self, tenant: str, conversation_id: str, message_id: int) -> None:
        """Mark the message ``withheld``: the input policy blocked its turn (see :class:`SupportMessage`).

        Raises:
            SupportConversationNotFoundError (404): not in ``tenant``, or no such message in it.
        """
        self._mark(tenant, conversation_id, message_id, withheld=True)

    def keep_original(self, tenant: str, conversation_id: str, message_id: int, original: dict) -> None:
        """Keep an agent reply's original on the stored message (see :class:`SupportMessage`): for a
        reply that another path stored (a hand-off item's answer). SupportConversationNotFoundError (404)."""
        self._mark(tenant, conversation_id, message_id, original=original)

    def _mark(self, tenant: str, conversation_id: str, message_id: int, **values) -> None:
        with self.db.writing() as session:
            _row(session, tenant, conversation_id)
            row = session.get(SupportMessageRow, message_id)
            if row is None or row.conversation_id != conversation_id:
                raise SupportConversationNotFoundError(
                    f"the conversation {conversation_id!r} has no message {message_id}"
                )
            for name, value in values.items():
                setattr(row, name, value)

    def list(self, tenant: str, customer_id: str) -> list[SupportConversation]:
        """The customer's conversations, most recently changed first, without their messages
        (CustomerNotFoundError, 404: not in ``tenant``)."""
        with self.db.session() as session:
            customer_row(session, tenant, customer_id)
            query = select(SupportConversationRow).where(
                SupportConversationRow.tenant == tenant, SupportConversationRow.customer_id == customer_id
            )
            order = (SupportConversationRow.updated_at.desc(), SupportConversationRow.id)
            return [_conversation(r) for r in session.scalars(query.order_by(*order))]

    def history(self, tenant: str, customer_id: str, limit: int | None = None) -> list[SupportMessage]:
        """Every message of the customer's conversations, oldest first; with ``limit`` (1-10,000), only
        the latest ``limit`` of them (still oldest first).

        Raises:
            InvalidInputError: a limit out of range. CustomerNotFoundError (404): not in ``tenant``.
        """
        if limit is not None and not 1 <= limit <= MAX_HISTORY:
            raise InvalidInputError(f"limit must be between 1 and {MAX_HISTORY:,}, got {limit}")
        query = (
            select(SupportMessageRow)
            .join(SupportConversationRow, SupportConversationRow.id == SupportMessageRow.conversation_id)
            .where(SupportConversationRow.tenant == tenant, SupportConversationRow.customer_id == customer_id)
            .order_by(SupportMessageRow.id.desc())
        )
        if limit is not None:
            query = query.limit(limit)
        with self.db.session() as session:
            customer_row(session, tenant, customer_id)
            return [_message(r) for r in reversed(list(session.scalars(query)))]
