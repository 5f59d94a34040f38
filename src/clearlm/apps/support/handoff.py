"""Hand-off to people through THE review queue (``store.review``), kind ``support_handoff``.

An item's payload: ``conversation_id``, ``customer_id``, ``customer_name``, ``language`` (the customer's),
``reason`` (customer_asked, policy_escalate, invalid_answers, tool_failed, negative_sentiment,
repeated_failure, low_confidence (:mod:`.triggers`), or a flow's own), ``detail``, ``sentiment`` (the mean
VADER score of the customer's latest messages, -1..1; None: none scored, e.g. not English), ``summary``
(the first and the last customer messages, for now) and ``transcript`` (every message: role, text,
created_at; as stored, so PII redacted under ``store_redacted``).

An agent answers the item (``ReviewQueue.decide(..., "answer", answer=...)``, or ``POST
/v1/review/{id}/decision``): the handler registered here appends the answer to the conversation as an
``agent`` message, which the customer sees in the same chat. The conversation stays handed off until an
agent hands it back (:func:`hand_back`), which also dismisses the conversation's open items.
"""

from __future__ import annotations

from clearlm.apps.support.conversations import SupportConversation, SupportConversations
from clearlm.apps.support.customers import Customer
from clearlm.errors import ClearlmError
from clearlm.store.db import Database
from clearlm.store.review import ReviewItem, ReviewQueue, on_decision

HANDOFF = "support_handoff"


class NotHandedOffError(ClearlmError):
    """A hand-back of a conversation no person has (it is open or closed)."""

    status_code = 409
    error_type = "conflict_error"
    code = "support_not_handed_off"


SUMMARY_CHARS = 300  # of each message quoted in the summary


def _cut(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= SUMMARY_CHARS else text[: SUMMARY_CHARS - 1] + "…"


def summary(conversation: SupportConversation) -> str:
    """The first and the last customer messages (one when there is one), each cut to 300 characters."""
    said = [m.text for m in conversation.messages if m.role == "customer"]
    if not said:
        return "(the customer has not written yet)"
    if len(said) == 1:
        return f"Customer: {_cut(said[0])}"
    return f"First: {_cut(said[0])} | Last: {_cut(said[-1])}"


def queue_handoff(
    db: Database,
    conversation: SupportConversation,
    customer: Customer,
    reason: str,
    detail: str | None = None,
    request_id: str | None = None,
    sentiment: float | None = None,
) -> ReviewItem:
    """A ``support_handoff`` item for ``conversation`` (read with its messages), in its tenant."""
    payload = {
        "conversation_id": conversation.id,
        "customer_id": customer.id,
        "customer_name": customer.name,
        "language": customer.language,
        "reason": reason,
        "detail": detail,
        "sentiment": sentiment,
        "summary": summary(conversation),
        "transcript": [
            {"role": m.role, "text": m.text, "created_at": m.created_at.isoformat()}
            for m in conversation.messages
        ],
    }
    title = f"{customer.name}: {reason}" + (f" ({detail})" if detail else "")
    return ReviewQueue(db).add(conversation.tenant, HANDOFF, title, payload, request_id=request_id)


def open_items(db: Database, tenant: str, conversation_id: str) -> list[ReviewItem]:
    """The conversation's open hand-off items (oldest first)."""
    items = ReviewQueue(db).list(tenant, "open", HANDOFF, limit=500)
    return [i for i in items if i.payload.get("conversation_id") == conversation_id]


def handed_off(
    conversations: SupportConversations, tenant: str, conversation_id: str, why: str
) -> SupportConversation:
    """The conversation, when a person has it. Raises NotHandedOffError (409, ``why`` ends its message)
    when it is open or closed; SupportConversationNotFoundError (404)."""
    conversation = conversations.get(tenant, conversation_id)
    if conversation.status != "handed_off":
        raise NotHandedOffError(
            f"the conversation {conversation_id!r} is {conversation.status}, not handed off: {why}"
        )
    return conversation


def hand_back(db: Database, tenant: str, conversation_id: str, by: str) -> SupportConversation:
    """Give the conversation back to the assistant: status ``open`` again, a system message saying so,
    and its open hand-off items dismissed (by ``by``). Returns the conversation with its messages.

    Raises:
        NotHandedOffError (409): the conversation is not handed off. SupportConversationNotFoundError (404).
    """
    conversations = SupportConversations(db)
    handed_off(conversations, tenant, conversation_id, "only a handed-off conversation can be handed back")
    for item in open_items(db, tenant, conversation_id):
        ReviewQueue(db).decide(item.id, tenant, "dismiss", by, note="handed back to the assistant")
    conversations.append_message(
        tenant, conversation_id, "system", "A person handed the chat back to the assistant."
    )
    conversations.update(tenant, conversation_id, status="open")
    return conversations.get(tenant, conversation_id)


def _agent_answer(db: Database, item: ReviewItem) -> None:
    """An answered hand-off: the agent's text joins the conversation as an ``agent`` message."""
    conversation_id = item.payload.get("conversation_id")
    if item.status != "answered" or not conversation_id:
        return
    SupportConversations(db).append_message(item.tenant, conversation_id, "agent", item.decision["answer"])


on_decision(HANDOFF, _agent_answer)
