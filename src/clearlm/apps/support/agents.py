"""What the desk's agents (people) see and do beyond the review queue: the active conversations with
their customers (the web UI's desk view), and a reply to a handed-off conversation.

A reply answers the conversation's oldest open ``support_handoff`` item through THE review queue
(``ReviewQueue.decide(..., "answer", answer=...)``, whose handler in :mod:`.handoff` appends it as an
``agent`` message); once no item is open (the agent answered it already, the customer wrote again) the
reply is appended as an ``agent`` message directly. Either way the conversation stays with a person until
:func:`~clearlm.apps.support.handoff.hand_back`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from sqlalchemy import func, select

from clearlm.apps.support.conversations import (
    SupportConversation,
    SupportConversations,
    SupportMessage,
    _conversation,
)
from clearlm.apps.support.handoff import HANDOFF, handed_off, open_items
from clearlm.errors import InvalidInputError
from clearlm.store.db import Database
from clearlm.store.review import ReviewItem, ReviewQueue, _item
from clearlm.store.tables import CustomerRow, ReviewRow, SupportConversationRow, SupportMessageRow

MAX_ACTIVE = 500  # conversations per active_conversations() call


@dataclass(frozen=True, slots=True)
class ActiveConversation:
    """An open or handed-off conversation as the desk lists it. Fields: conversation (without messages);
    customer_name; messages (how many it has)."""

    conversation: SupportConversation
    customer_name: str
    messages: int


def active_conversations(db: Database, tenant: str, limit: int = 100) -> list[ActiveConversation]:
    """``tenant``'s open and handed-off conversations, handed-off first, then the most recently changed,
    at most ``limit`` (1-500), with each customer's name and message count (one query).

    Raises:
        InvalidInputError: a limit out of range.
    """
    if not 1 <= limit <= MAX_ACTIVE:
        raise InvalidInputError(f"limit must be between 1 and {MAX_ACTIVE}, got {limit}")
    c = SupportConversationRow
    counted = (
        select(SupportMessageRow.conversation_id, func.count().label("n"))
        .group_by(SupportMessageRow.conversation_id)
        .subquery()
    )
    query = (
        select(c, CustomerRow.name, func.coalesce(counted.c.n, 0))
        .join(CustomerRow, CustomerRow.id == c.customer_id)
        .outerjoin(counted, counted.c.conversation_id == c.id)
        .where(c.tenant == tenant, c.status.in_(("open", "handed_off")))
        .order_by((c.status == "handed_off").desc(), c.updated_at.desc(), c.id)
        .limit(limit)
    )
    with db.session() as session:
        return [ActiveConversation(_conversation(row), name, n) for row, name, n in session.execute(query)]


def handoff_items(db: Database, tenant: str, conversation_id: str, limit: int = 100) -> list[ReviewItem]:
    """The conversation's hand-off items, open or decided, oldest first, at most ``limit``."""
    query = (
        select(ReviewRow)
        .where(
            ReviewRow.tenant == tenant,
            ReviewRow.kind == HANDOFF,
            ReviewRow.payload["conversation_id"].as_string() == conversation_id,
        )
        .order_by(ReviewRow.created_at, ReviewRow.id)
        .limit(limit)
    )
    with db.session() as session:
        return [_item(r) for r in session.scalars(query)]


def agent_reply(
    db: Database,
    tenant: str,
    conversation_id: str,
    text: str,
    by: str,
    note: str | None = None,
    original: dict | None = None,
) -> SupportMessage:
    """An agent's reply (``text``, as it should be stored) in a handed-off conversation; ``by``: who (a key
    id, or ``local``); ``note``: kept in the review item's decision when the reply answers one (e.g. the
    agent's original of a translated reply, ``translation.agent_reply_in``); ``original``: kept on the
    stored message for the desk (``SupportMessage.original``). Returns the stored ``agent`` message.

    Raises:
        InvalidInputError: an empty or over-long text. NotHandedOffError (409): the conversation is open
            or closed (the assistant, or nobody, answers it). SupportConversationNotFoundError (404).
    """
    conversations = SupportConversations(db)
    handed_off(
        conversations, tenant, conversation_id, "a person answers only a conversation handed off to people"
    )
    if not text or not text.strip():
        raise InvalidInputError("a reply needs its text: write what the customer should read")
    items = open_items(db, tenant, conversation_id)
    if not items:
        return conversations.append_message(tenant, conversation_id, "agent", text, original=original)
    ReviewQueue(db).decide(items[0].id, tenant, "answer", by, answer=text, note=note)
    message = conversations.get(tenant, conversation_id).messages[-1]
    if original is None:
        return message
    conversations.keep_original(tenant, conversation_id, message.id, original)  # (the note keeps it too)
    return replace(message, original=original)
