"""Closing a support conversation: its status becomes ``closed`` (no more customer messages: a new
conversation is opened instead), a system message says so, and its open hand-off items are dismissed."""

from __future__ import annotations

from sqlalchemy import update

from clearlm.apps.support.conversations import SupportConversation, SupportConversations
from clearlm.apps.support.customers import now
from clearlm.apps.support.handoff import open_items
from clearlm.errors import ClearlmError
from clearlm.store.db import Database
from clearlm.store.review import ReviewQueue
from clearlm.store.tables import SupportConversationRow

CLOSED_MESSAGE = "The conversation was closed."


class AlreadyClosedError(ClearlmError):
    """A close of a conversation that is closed already."""

    status_code = 409
    error_type = "conflict_error"
    code = "support_conversation_closed"


def close_conversation(db: Database, tenant: str, conversation_id: str, by: str) -> SupportConversation:
    """Close the conversation (``by``: who closed it, a key id or ``local``, recorded on the dismissed
    hand-off items). Returns it with its messages.

    Raises:
        AlreadyClosedError (409): it is closed already. SupportConversationNotFoundError (404): not in
            ``tenant``.
    """
    conversations = SupportConversations(db)
    row = SupportConversationRow
    closing = (
        update(row)
        .where(row.id == conversation_id, row.tenant == tenant, row.status != "closed")
        .values(status="closed", updated_at=now())
    )
    with db.writing() as session:  # a conditional update: of two closes at once, one wins
        closed = session.execute(closing).rowcount == 1
    if not closed:
        conversations.get(tenant, conversation_id)  # 404 when it is not there
        raise AlreadyClosedError(
            f"the conversation {conversation_id!r} is closed already: open a new one to write again"
        )
    for item in open_items(db, tenant, conversation_id):
        ReviewQueue(db).decide(item.id, tenant, "dismiss", by, note="the conversation was closed")
    conversations.append_message(tenant, conversation_id, "system", CLOSED_MESSAGE)
    return conversations.get(tenant, conversation_id)
