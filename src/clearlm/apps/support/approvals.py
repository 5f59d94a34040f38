"""A person's approval of a tool call (``confirm: agent``) through THE review queue, kind
``support_tool_confirmation``.

When a flow reaches a call of such a tool, the engine (:mod:`.confirm`) tells the customer that a
colleague must approve it and asks for approval (:class:`~clearlm.apps.support.state.AwaitApproval`);
:func:`act` puts an item in the review queue, the way :mod:`.handoff` queues hand-offs. Its payload:
``conversation_id``, ``customer_id``, ``customer_name``, ``language``, ``flow``, ``step``, ``tool``,
``arguments`` (as the flow rendered them, the customer was told the same), ``summary`` and
``transcript`` (as stored).

A person decides it, either through the review queue (``ReviewQueue.decide``, ``POST
/v1/review/{id}/decision``: ``approve`` runs the tool, ``dismiss`` declines; ``answer`` is refused) or
with :func:`decide_approval` (``Desk.confirm_tool``, ``POST
/v1/support/conversations/{id}/tool-confirmation``), which decides the same item. Then the flow resumes
on the desk (the tool called, its result recorded as every tool call, the flow's next replies said to the
customer through the pipeline). A decision made through the review queue needs a desk to resume on: a
server registers one per database with :func:`serve_approvals`.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from contextvars import ContextVar
from typing import TYPE_CHECKING

from clearlm.apps.support.customers import Customer
from clearlm.apps.support.handoff import summary
from clearlm.apps.support.state import ApprovalWithdrawn, AwaitApproval, Confirmed, Decision, FlowState
from clearlm.errors import ClearlmError, InvalidInputError
from clearlm.store.db import Database
from clearlm.store.review import ReviewItem, ReviewQueue, on_decision

if TYPE_CHECKING:
    from clearlm.apps.support.desk import Desk, DeskReply

CONFIRMATION = "support_tool_confirmation"

DeskFor = Callable[[ReviewItem], "Desk"]  # the desk to resume a conversation on, for a decided item
Done = Callable[[ReviewItem, "DeskReply"], None]  # what the server does after (its audit record)
_served: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # Database -> (DeskFor, Done | None)
_deciding: ContextVar[tuple[Desk, list] | None] = ContextVar("support_approval_desk", default=None)


class NotAwaitingApprovalError(ClearlmError):
    """A decision on a conversation that waits for no person's approval of a tool call."""

    status_code = 409
    error_type = "conflict_error"
    code = "support_no_pending_approval"


def serve_approvals(db: Database, desk_for: DeskFor, done: Done | None = None) -> None:
    """Decisions made through the review queue on ``db`` resume their conversations on
    ``desk_for(item)``; ``done(item, reply)`` is called after each (the server audits it there)."""
    _served[db] = (desk_for, done)


def queue_approval(
    db: Database, flow: str, conversation, customer: Customer, action: AwaitApproval
) -> ReviewItem:
    """A ``support_tool_confirmation`` item for ``action`` in ``conversation`` (read with its messages)."""
    payload = {
        "conversation_id": conversation.id,
        "customer_id": customer.id,
        "customer_name": customer.name,
        "language": customer.language,
        "flow": flow,
        "step": action.step,
        "tool": action.tool,
        "arguments": action.arguments,
        "summary": summary(conversation),
        "transcript": [
            {"role": m.role, "text": m.text, "created_at": m.created_at.isoformat()}
            for m in conversation.messages
        ],
    }
    title = f"{customer.name}: approve {action.tool}"
    return ReviewQueue(db).add(conversation.tenant, CONFIRMATION, title, payload)


def open_approvals(db: Database, tenant: str, conversation_id: str) -> list[ReviewItem]:
    """The conversation's open approval items (oldest first)."""
    items = ReviewQueue(db).list(tenant, "open", CONFIRMATION, limit=500)
    return [i for i in items if i.payload.get("conversation_id") == conversation_id]


def act(desk: Desk, reply: DeskReply, customer: Customer, action) -> None:
    """Carry out a confirmation action of the flow engine on the desk (other actions: nothing):
    :class:`Confirmed` joins ``reply.confirmations`` (a customer's with their ``customer_id``),
    :class:`AwaitApproval` queues an item (listed in
    ``reply.confirmations`` with ``approved`` None and its ``review_id``), :class:`ApprovalWithdrawn`
    dismisses the conversation's open items."""
    tenant, cid = customer.tenant, reply.conversation.id
    if isinstance(action, Confirmed):
        reply.confirmations.append(
            {
                "tool": action.tool,
                "arguments": action.arguments,
                "by": action.by,
                "approved": action.approved,
                "at": action.at,
            }
            | ({"customer_id": customer.id} if action.by == "customer" else {})
        )
    elif isinstance(action, AwaitApproval):
        conversation = desk.conversations.get(tenant, cid)
        state = FlowState.from_json(conversation.flow_state) if conversation.flow_state else None
        item = queue_approval(desk.db, state.flow if state else "", conversation, customer, action)
        asked = {"tool": action.tool, "arguments": action.arguments, "by": None, "approved": None, "at": None}
        reply.confirmations.append({**asked, "review_id": item.id})
    elif isinstance(action, ApprovalWithdrawn):
        for item in open_approvals(desk.db, tenant, cid):
            note = "withdrawn: the customer cancelled or asked for a person"
            ReviewQueue(desk.db).decide(item.id, tenant, "dismiss", "assistant", note=note)


def _waiting(desk: Desk, tenant: str, conversation_id: str):
    """(conversation, its flow state) when it waits for a person's approval, else None."""
    conversation = desk.conversations.get(tenant, conversation_id)
    state = FlowState.from_json(conversation.flow_state) if conversation.flow_state else None
    if conversation.status == "closed" or state is None or state.status != "active":
        return None
    return (conversation, state) if state.waiting == "agent" else None


def resume(desk: Desk, tenant: str, conversation_id: str, decision: Decision) -> DeskReply:
    """Advance the conversation's flow with a person's ``decision`` on ``desk``: approved, the tool is
    called and the flow runs on; declined, its ``on_declined`` step or its end. Returns what the turn did
    (``tool_calls``, ``confirmations``, the replies said to the customer).

    Raises:
        NotAwaitingApprovalError (409): the conversation waits for no approval. InvalidInputError: its
            flow is no longer on the desk.
    """
    from clearlm.apps.support.desk import DeskReply

    found = _waiting(desk, tenant, conversation_id)
    if found is None:
        raise NotAwaitingApprovalError(
            f"the conversation {conversation_id!r} is not waiting for a person's approval of a tool call"
        )
    conversation, state = found
    flow = desk.flows.get(state.flow)
    if flow is None:
        raise InvalidInputError(f"the flow {state.flow!r} is no longer on this desk: decline the request")
    customer = desk.customers.get(tenant, conversation.customer_id)
    reply = DeskReply(conversation)
    desk._run_flow(reply, customer, flow, state, decision, "")
    return desk._finish(tenant, conversation_id, reply)


def decide_approval(desk: Desk, tenant: str, conversation_id: str, approve: bool, by: str) -> DeskReply:
    """A person (``by``: their key id) approves or declines the tool call the conversation waits for:
    its review item is decided (approved or dismissed) and the flow resumes on ``desk`` (:func:`resume`).

    Raises:
        NotAwaitingApprovalError (409): nothing waits for approval. SupportConversationNotFoundError (404).
    """
    if _waiting(desk, tenant, conversation_id) is None:
        raise NotAwaitingApprovalError(
            f"the conversation {conversation_id!r} is not waiting for a person's approval of a tool call"
        )
    items = open_approvals(desk.db, tenant, conversation_id)
    if not items:  # queued by no one (a desk built without the queue): decide it here
        return resume(desk, tenant, conversation_id, Decision(approve, by))
    box: list = []
    token = _deciding.set((desk, box))
    try:
        note = "approved on the desk" if approve else "declined on the desk"
        ReviewQueue(desk.db).decide(items[0].id, tenant, "approve" if approve else "dismiss", by, note=note)
    finally:
        _deciding.reset(token)
    return box[0]


def _decided(db: Database, item: ReviewItem) -> None:
    """An approval item decided: resume its conversation (on the desk deciding it, or the server's)."""
    if item.status == "answered":
        raise InvalidInputError(
            "a tool confirmation is approved (the tool runs) or dismissed (declined), not answered"
        )
    approved, note = item.status == "approved", (item.decision or {}).get("note") or ""
    if note.startswith("withdrawn:"):  # the assistant closing it: nothing to resume
        return
    at = item.decided_at.isoformat() if item.decided_at else None
    decision = Decision(approved, item.decided_by or "local", at)
    current = _deciding.get()
    if current is not None:
        desk, box = current
        box.append(resume(desk, item.tenant, item.payload["conversation_id"], decision))
        return
    if db not in _served:
        raise InvalidInputError(
            "no support desk runs on this server to carry out the decision: decide it with POST "
            "/v1/support/conversations/{id}/tool-confirmation on the desk's server"
        )
    desk_for, done = _served[db]
    desk = desk_for(item)
    if not approved and _waiting(desk, item.tenant, item.payload["conversation_id"]) is None:
        return  # declining what no longer waits (the conversation moved on or closed): just close it
    reply = resume(desk, item.tenant, item.payload["conversation_id"], decision)
    if done is not None:
        done(item, reply)


on_decision(CONFIRMATION, _decided)
