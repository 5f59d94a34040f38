"""Chat conversations kept server-side, per tenant and per user (``owner``: the API key's id, or ``local``
with open access), with their messages in ``position`` order.

Every read and change names the tenant and owner: another user's or tenant's conversation is answered
as if it did not exist (:class:`ConversationNotFoundError`, 404). ``append_message`` takes only the
conversation's id: it is for code acting for the server (a turn's answer, a reviewer's answer).
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime

from sqlalchemy import delete, exists, func, or_, select
from sqlalchemy.exc import IntegrityError

from clearlm.errors import ClearlmError, InvalidInputError
from clearlm.store.db import Database, as_utc
from clearlm.store.tables import ConversationRow, MessageRow, ReviewRow

MAX_TITLE_CHARS = 200
MAX_LIST = 500  # conversations listed at most
ROLES = ("system", "user", "assistant")
STATUSES = ("complete", "stopped", "refused", "failed", "held")
DEFAULT_TITLE = "New conversation"


class ConversationNotFoundError(ClearlmError, LookupError):
    """No conversation (or message) with that id for this user of this tenant."""

    status_code = 404
    error_type = "not_found_error"
    code = "conversation_not_found"


def _now() -> datetime:
    return datetime.now(UTC)


def _not_found(conversation_id: str) -> ConversationNotFoundError:
    return ConversationNotFoundError(
        f"no conversation {conversation_id!r}: GET /v1/conversations lists yours (open /chat to start one)"
    )


def _title(title: str | None) -> str:
    title = " ".join((title or "").split())
    if len(title) > MAX_TITLE_CHARS:
        raise InvalidInputError(f"a title is at most {MAX_TITLE_CHARS} characters: shorten it")
    return title or DEFAULT_TITLE


def conversation_dict(row: ConversationRow) -> dict:
    return {
        "id": row.id,
        "title": row.title,
        "settings": dict(row.settings or {}),
        "created_at": as_utc(row.created_at).isoformat(),
        "updated_at": as_utc(row.updated_at).isoformat(),
    }


def message_dict(row: MessageRow) -> dict:
    return {
        "id": row.id,
        "position": row.position,
        "role": row.role,
        "content": row.content,
        "status": row.status,
        "meta": dict(row.meta or {}),
        "created_at": as_utc(row.created_at).isoformat(),
    }


class Conversations:
    """The conversations held in ``db``. Conversations are dicts ``{id, title, settings, created_at,
    updated_at}`` (``get`` adds ``messages``); messages are dicts ``{id, position, role, content, status,
    meta, created_at}`` (times in ISO 8601, UTC)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def create(self, tenant: str, owner: str, title: str | None = None, settings: dict | None = None) -> dict:
        """A new, empty conversation (InvalidInputError for a title over 200 characters)."""
        now = _now()
        row = ConversationRow(
            id="conv_" + secrets.token_hex(12),
            tenant=tenant,
            owner=owner,
            title=_title(title),
            settings=dict(settings or {}),
            created_at=now,
            updated_at=now,
        )
        with self.db.writing() as session:
            session.add(row)
        return conversation_dict(row)

    def list(self, tenant: str, owner: str, q: str | None = None, limit: int = 100) -> list[dict]:
        """The user's conversations, most recently changed first; with ``q``, those whose title or any
        message contains it (case-insensitive for ASCII letters)."""
        query = select(ConversationRow).where(
            ConversationRow.tenant == tenant, ConversationRow.owner == owner
        )
        if q and q.strip():
            q = q.strip()
            in_messages = exists().where(
                MessageRow.conversation_id == ConversationRow.id,
                MessageRow.content.icontains(q, autoescape=True),
            )
            query = query.where(or_(ConversationRow.title.icontains(q, autoescape=True), in_messages))
        query = query.order_by(ConversationRow.updated_at.desc(), ConversationRow.id).limit(
            max(1, min(limit, MAX_LIST))
        )
        with self.db.session() as session:
            return [conversation_dict(r) for r in session.scalars(query)]

    def _row(self, session, tenant: str, owner: str, conversation_id: str) -> ConversationRow:
        row = session.get(ConversationRow, conversation_id)
        if row is None or row.tenant != tenant or row.owner != owner:
            raise _not_found(conversation_id)
        return row

    def get(self, tenant: str, owner: str, conversation_id: str) -> dict:
        """The conversation with its messages in order (ConversationNotFoundError: none of this user's)."""
        with self.db.session() as session:
            row = self._row(session, tenant, owner, conversation_id)
            messages = session.scalars(
                select(MessageRow).where(MessageRow.conversation_id == row.id).order_by(MessageRow.position)
            )
            return {**conversation_dict(row), "messages": [message_dict(m) for m in messages]}

    def update(
        self,
        tenant: str,
        owner: str,
        conversation_id: str,
        title: str | None = None,
        settings: dict | None = None,
    ) -> dict:
        """Rename it and/or replace its settings (``None`` leaves a field as it is)."""
        with self.db.writing() as session:
            row = self._row(session, tenant, owner, conversation_id)
            if title is not None:
                row.title = _title(title)
            if settings is not None:
                row.settings = dict(settings)
            row.updated_at = _now()
            return conversation_dict(row)

    def delete(self, tenant: str, owner: str, conversation_id: str) -> None:
        """Delete it and its messages (deleted explicitly: SQLite does not enforce the cascade)."""
        with self.db.writing() as session:
            row = self._row(session, tenant, owner, conversation_id)
            session.execute(delete(MessageRow).where(MessageRow.conversation_id == row.id))
            session.delete(row)

    def count_messages(self, conversation_id: str) -> int:
        with self.db.session() as session:
            return session.scalar(
                select(func.count())
                .select_from(MessageRow)
                .where(MessageRow.conversation_id == conversation_id)
            )

    def append_message(
        self,
        conversation_id: str,
        role: str,
        content: str,
        status: str = "complete",
        meta: dict | None = None,
    ) -> dict:
        """Add a message after the conversation's last one and return it (the conversation's
        ``updated_at`` moves to now). For code acting for the server: it checks no owner.

        Raises:
            InvalidInputError: an unknown role or status. ConversationNotFoundError: no such conversation.
        """
        if role not in ROLES:
            raise InvalidInputError(f"a message's role is one of {', '.join(ROLES)}, not {role!r}")
        if status not in STATUSES:
            raise InvalidInputError(f"a message's status is one of {', '.join(STATUSES)}, not {status!r}")
        for attempt in range(5):  # two writers picked the same position: the later one tries again
            try:
                with self.db.writing() as session:
                    conv = session.get(ConversationRow, conversation_id)
                    if conv is None:
                        raise _not_found(conversation_id)
                    last = session.scalar(
                        select(func.max(MessageRow.position)).where(
                            MessageRow.conversation_id == conversation_id
                        )
                    )
                    now = _now()
                    row = MessageRow(
                        conversation_id=conversation_id,
                        position=0 if last is None else last + 1,
                        role=role,
                        content=content,
                        status=status,
                        meta=dict(meta or {}),
                        created_at=now,
                    )
                    session.add(row)
                    conv.updated_at = now
                    session.flush()
                    return message_dict(row)
            except IntegrityError:
                if attempt == 4:
                    raise
        raise AssertionError("unreachable")

    def update_message(
        self, conversation_id: str, message_id: int, status: str | None = None, meta: dict | None = None
    ) -> dict:
        """Change a message's status and/or merge ``meta`` into its meta (the review queue marks the
        answer it holds). ConversationNotFoundError: no such message in that conversation."""
        if status is not None and status not in STATUSES:
            raise InvalidInputError(f"a message's status is one of {', '.join(STATUSES)}, not {status!r}")
        with self.db.writing() as session:
            row = session.get(MessageRow, message_id)
            if row is None or row.conversation_id != conversation_id:
                raise _not_found(conversation_id)
            if status is not None:
                row.status = status
            if meta:
                row.meta = {**(row.meta or {}), **meta}
            return message_dict(row)

    def truncate_from(self, tenant: str, owner: str, conversation_id: str, position: int) -> int:
        """Delete the messages at ``position`` and after (to edit or regenerate); returns how many."""
        with self.db.writing() as session:
            row = self._row(session, tenant, owner, conversation_id)
            result = session.execute(
                delete(MessageRow).where(
                    MessageRow.conversation_id == row.id, MessageRow.position >= position
                )
            )
            row.updated_at = _now()
            return result.rowcount

    def review_of(self, request_id: str) -> str | None:
        """The id of the review item that holds the request ``request_id`` (an escalated answer), if any."""
        with self.db.session() as session:
            return session.scalar(select(ReviewRow.id).where(ReviewRow.request_id == request_id).limit(1))
