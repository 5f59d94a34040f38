"""/v1/support: the support desk over HTTP (``clearlm.apps.support``; this module only translates).

Customers and conversations belong to the caller's tenant: another tenant's ids are 404 with an
OpenAI-style body. A customer's message (``POST /v1/support/conversations/{id}/messages``) is answered by
the desk on the pipeline: each reply is its own audited turn (``support:*`` records, ids
``<conversation id>-...``, listed in the reply's ``request_ids``); this HTTP request's own record names the
conversation and those ids. The desk's flows and tools come from ``ServerConfig.support_desk`` (``clearlm
serve --support-desk DIR``: ``DIR/flows/*.yaml`` and ``DIR/tools.yaml``); without one, the desk answers
freely and hands off on request. Hand-offs are items of kind ``support_handoff`` in ``/v1/review``; an
admin's answer there joins the chat as an ``agent`` message; ``.../handback`` (admin) gives the chat
back to the assistant; ``.../close`` closes it. Webhooks, the chat widget and CORS: ``support_channels``.
"""

from __future__ import annotations

import contextlib
import json
import threading
import weakref
from datetime import datetime
from typing import Annotated, Any, Literal

import anyio
from fastapi import Path, Query, Request
from pydantic import BaseModel, BeforeValidator, Field

from clearlm.apps.support import Customers, Desk, DeskReply, SupportConversations, TurnRunner, hand_back
from clearlm.apps.support.analytics import desk_analytics
from clearlm.apps.support.approvals import serve_approvals
from clearlm.apps.support.closing import close_conversation
from clearlm.apps.support.conversations import MAX_TEXT_CHARS
from clearlm.apps.support.csat import MAX_COMMENT_CHARS, record_csat
from clearlm.apps.support.customers import MAX_LIST, MAX_NAME_CHARS
from clearlm.apps.support.tools import load_desk
from clearlm.apps.support.triggers import HandoffRules, load_rules
from clearlm.server.auth import tenant_of, user_of
from clearlm.server.protocol import MAX_ID_CHARS, _Request
from clearlm.server.routes import ADMIN, _error, api_router, state
from clearlm.server.serving import admit, policy_of
from clearlm.server.support_channels import announce_handoff, webhooks_of

router = api_router()
_desks: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # server state -> (flows, tools, rules)
_lock = threading.Lock()

CustomerId = Annotated[
    str, Path(max_length=MAX_ID_CHARS, pattern=r"^cus_[0-9a-f]+$", description="The customer's id (cus_...).")
]
ConversationId = Annotated[
    str,
    Path(max_length=MAX_ID_CHARS, pattern=r"^sup_[0-9a-f]+$", description="The conversation's id (sup_...)."),
]


class SupportCustomerCreate(_Request):
    """A new customer of the caller's tenant."""

    name: str = Field(min_length=1, max_length=MAX_NAME_CHARS, pattern=r"\S", description="Their name.")
    language: str = Field(default="en", pattern=r"^[A-Za-z]{2}$", description="ISO 639-1, e.g. en, de.")
    attributes: dict[str, Any] = Field(default_factory=dict, description="The desk's own fields (JSON).")


class SupportCustomerOut(BaseModel):
    id: str
    object: Literal["support.customer"] = "support.customer"
    name: str
    language: str
    attributes: dict[str, Any]
    created_at: str


class SupportCustomerList(BaseModel):
    object: Literal["list"] = "list"
    data: list[SupportCustomerOut]


class SupportConversationCreate(_Request):
    """A new conversation of a customer; with ``flow``, that flow starts and asks its first question."""

    customer_id: str = Field(max_length=MAX_ID_CHARS, description="The customer's id (cus_...).")
    flow: str | None = Field(default=None, max_length=64, description="A flow of the desk to start.")


class SupportMessageCreate(_Request):
    """What the customer wrote."""

    text: str = Field(min_length=1, max_length=MAX_TEXT_CHARS, pattern=r"\S", description="Not blank.")


class SupportOriginalOut(BaseModel):
    """What an agent wrote before the reply was translated into the customer's language."""

    text: str = Field(description="As the policy stores text.")
    language: str = Field(description="ISO 639-1, the agent's language.")
    engine: Literal["apertium", "bergamot", "model"] = Field(description="What translated it.")


class SupportMessageOut(BaseModel):
    """A stored message: role customer, assistant, agent (a person) or system (a note); ``withheld``:
    the policy blocked the turn of this customer message, so the assistant never reads it again;
    ``original``: a translated agent reply's original, in the desk's reads (``.../messages``) only."""

    id: int
    conversation_id: str
    role: Literal["customer", "assistant", "agent", "system"]
    text: str
    language: str | None
    created_at: str
    withheld: bool = False
    original: SupportOriginalOut | None = None


class SupportConversationOut(BaseModel):
    """A conversation: status open, handed_off (a person answers) or closed; ``flow_state``: where it
    is in a flow (flow, step, slots, status), or null."""

    id: str
    object: Literal["support.conversation"] = "support.conversation"
    customer_id: str
    status: Literal["open", "handed_off", "closed"]
    flow_state: dict[str, Any] | None
    created_at: str
    updated_at: str
    messages: list[SupportMessageOut]


class SupportToolCallOut(BaseModel):
    tool: str
    arguments: dict[str, Any]
    result: Any = None
    error: str | None = None


class SupportHandoffOut(BaseModel):
    """Why the conversation went to a person, and its review item (``/v1/review/{review_id}``)."""

    reason: str
    detail: str | None
    review_id: str | None


class SupportReplyOut(BaseModel):
    """What one turn did: ``messages`` it stored (the customer's first, then the desk's replies),
    ``conversation`` after it (without messages), ``flow`` state, ``tool_calls``, ``handoff`` (when this
    turn handed off), ``notice`` (not stored: e.g. a person will answer), ``request_ids`` (audit records
    of its pipeline turns), ``confirmations`` (a tool call confirmed or declined: {tool, arguments, by,
    approved, at}; a person's approval asked: approved null and its ``review_id``)."""

    object: Literal["support.reply"] = "support.reply"
    conversation: SupportConversationOut
    messages: list[SupportMessageOut]
    flow: dict[str, Any] | None
    tool_calls: list[SupportToolCallOut]
    handoff: SupportHandoffOut | None
    notice: str | None
    request_ids: list[str]
    confirmations: list[dict[str, Any]] = []


def _desk_files(s) -> tuple[dict, dict, HandoffRules]:
    """The desk folder's flows, tools and hand-off rules, loaded once per server (state ``s``)."""
    with _lock:
        if s not in _desks:
            folder = s.config.support_desk
            _desks[s] = (*load_desk(folder), load_rules(folder)) if folder else ({}, {}, HandoffRules())
            _serve_approvals(s)
        return _desks[s]


def _desk(request: Request) -> Desk:
    """The desk as this request sees it: the server's flows and tools, the caller's policy and key."""
    from clearlm.server.knowledge import open_kb

    s = state(request)
    flows, tools, rules = _desk_files(s)
    runner = TurnRunner(
        s.backend,
        s.audit,
        policy_of(request, s),
        max_tokens=s.config.default_max_tokens,
        api_key_id=request.state.audit_record.api_key_id,
    )
    return Desk(
        s.db, runner, flows, tools, open_kb=lambda tenant, name: open_kb(s, name, tenant), rules=rules
    )


def _governed(policy, value: Any, field: str, notes: list) -> Any:
    """A JSON value (a tool's result, a flow's slots) as the output policy lets it be returned: its JSON
    text checked as a document's (PII redacted); the text itself when it no longer parses (withheld)."""
    from clearlm.govern.outputs import govern_text

    if value is None:
        return None
    text, found = govern_text(policy, json.dumps(value), "document", field)
    notes += found
    try:
        return json.loads(text)
    except ValueError:
        return text


def _conversation(policy, conversation, notes: list) -> dict:
    """The conversation as its customer reads it: a translated agent reply without its original."""
    out = conversation.to_dict()
    out["flow_state"] = _governed(policy, out["flow_state"], "flow_state", notes)
    out["messages"] = [{**m, "original": None} for m in out["messages"]]
    return out


def _reply(request: Request, reply: DeskReply) -> dict:
    """The reply as JSON, what it returns besides messages (tools' results, the flow's slots) as the
    output policy lets it be returned (``govern.outputs``, as for everything returned with an answer).
    This request's audit record names the conversation, its turns' records and the tools called (their
    arguments stored as the policy stores text; results stay out of the log)."""
    policy = policy_of(request, state(request))
    record = request.state.audit_record
    record.parameters = {"conversation_id": reply.conversation.id, "request_ids": reply.request_ids}
    stored = (lambda t: t) if policy is None else policy.stored
    notes: list = []
    calls = [
        {**t, "result": _governed(policy, t["result"], f"tool_calls[{i}].result", notes)}
        for i, t in enumerate(reply.tool_calls)
    ]
    if reply.tool_calls:
        record.parameters["tool_calls"] = [
            {"tool": t["tool"], "arguments": stored(json.dumps(t["arguments"])), "error": t["error"]}
            for t in reply.tool_calls
        ]
    if reply.confirmations:
        record.parameters["confirmations"] = _confirmations(stored, reply)
    out = {
        "conversation": _conversation(policy, reply.conversation, notes),
        "messages": [m.to_dict() for m in reply.messages],
        "flow": _governed(policy, reply.flow, "flow", notes),
        "tool_calls": calls,
        "handoff": reply.handoff,
        "notice": reply.notice,
        "request_ids": reply.request_ids,
        "confirmations": [
            {**c, "arguments": _governed(policy, c["arguments"], f"confirmations[{i}].arguments", notes)}
            for i, c in enumerate(reply.confirmations)
        ],
    }
    if notes:
        record.governance = {"policy": policy.name, "returned": notes}
    return out


@router.post("/support/customers", response_model=SupportCustomerOut, status_code=201)
async def create_customer(body: SupportCustomerCreate, request: Request):
    customers = Customers(state(request).db)
    tenant = tenant_of(request)
    made = await anyio.to_thread.run_sync(
        lambda: customers.create(tenant, body.name, body.language, body.attributes)
    )
    return made.to_dict()


@router.get("/support/customers", response_model=SupportCustomerList)
async def list_customers(
    request: Request,
    limit: Annotated[int, Query(ge=1, le=MAX_LIST, description=f"At most this many, 1 to {MAX_LIST}.")] = 100,
):
    customers = Customers(state(request).db)
    found = await anyio.to_thread.run_sync(lambda: customers.list(tenant_of(request), limit))
    return {"data": [c.to_dict() for c in found]}


@router.get("/support/customers/{customer_id}", response_model=SupportCustomerOut)
async def get_customer(customer_id: CustomerId, request: Request):
    customers = Customers(state(request).db)
    found = await anyio.to_thread.run_sync(lambda: customers.get(tenant_of(request), customer_id))
    return found.to_dict()


@router.post("/support/conversations", response_model=SupportReplyOut, status_code=201)
async def create_conversation(body: SupportConversationCreate, request: Request):
    """Open a conversation (a flow's first question is a pipeline turn: admitted like a generation)."""
    s = state(request)
    if body.flow is not None:
        await admit(request, s)
    desk = await anyio.to_thread.run_sync(_desk, request)
    reply = await anyio.to_thread.run_sync(
        lambda: desk.open_conversation(tenant_of(request), body.customer_id, body.flow)
    )
    announce_handoff(state(request), tenant_of(request), reply)
    return await anyio.to_thread.run_sync(_reply, request, reply)


@router.get("/support/conversations/{conversation_id}", response_model=SupportConversationOut)
async def get_conversation(conversation_id: ConversationId, request: Request):
    s = state(request)
    conversations = SupportConversations(s.db)

    def work() -> dict:
        notes: list = []
        out = _conversation(
            policy_of(request, s), conversations.get(tenant_of(request), conversation_id), notes
        )
        if notes:
            request.state.audit_record.governance = {"policy": policy_of(request, s).name, "returned": notes}
        return out

    return await anyio.to_thread.run_sync(work)


@router.post("/support/conversations/{conversation_id}/messages", response_model=SupportReplyOut)
async def post_message(conversation_id: ConversationId, body: SupportMessageCreate, request: Request):
    """The customer's message, and the desk's answer (none while a person has the conversation)."""
    s = state(request)
    await admit(request, s)
    desk = await anyio.to_thread.run_sync(_desk, request)
    reply = await anyio.to_thread.run_sync(
        lambda: desk.customer_message(tenant_of(request), conversation_id, body.text)
    )
    announce_handoff(state(request), tenant_of(request), reply)
    return await anyio.to_thread.run_sync(_reply, request, reply)


@router.post(
    "/support/conversations/{conversation_id}/handback",
    response_model=SupportConversationOut,
    responses={**ADMIN["responses"], 409: _error("The conversation is not handed off.")},
    dependencies=ADMIN["dependencies"],
)
async def hand_back_conversation(conversation_id: ConversationId, request: Request):
    """Give a handed-off conversation back to the assistant (an admin: the desk's agents); its open
    hand-off items are dismissed. 409 when it is not handed off."""
    s = state(request)
    request.state.audit_record.parameters = {"conversation_id": conversation_id}
    done = await anyio.to_thread.run_sync(
        lambda: hand_back(s.db, tenant_of(request), conversation_id, user_of(request))
    )
    return done.to_dict()


# --- Tool confirmations (issue 15): a person approves or declines a tool call of ``confirm: agent``
# (``apps.support.approvals``), here or through ``/v1/review``.


class SupportToolConfirmation(_Request):
    """A person's decision on the tool call the conversation's flow waits for."""

    approve: bool = Field(description="true: the tool is called and the flow goes on; false: declined.")


def _confirmations(stored, reply: DeskReply) -> list[dict]:
    """The turn's confirmations for an audit record: arguments as the policy stores text."""
    return [{**c, "arguments": stored(json.dumps(c["arguments"]))} for c in reply.confirmations]


@router.post(
    "/support/conversations/{conversation_id}/tool-confirmation",
    response_model=SupportReplyOut,
    responses={**ADMIN["responses"], 409: _error("The conversation waits for no approval.")},
    dependencies=ADMIN["dependencies"],
)
async def confirm_tool_route(
    conversation_id: ConversationId, body: SupportToolConfirmation, request: Request
):
    """Approve or decline the tool call the conversation waits for (an admin: the desk's agents): its
    review item is decided, and the flow resumes (the tool called, the next replies said to the
    customer, each an audited turn; this request's record names the tool call and the decision). 409
    when the conversation waits for no approval."""
    s, tenant, by = state(request), tenant_of(request), user_of(request)
    await admit(request, s)
    desk = await anyio.to_thread.run_sync(_desk, request)
    reply = await anyio.to_thread.run_sync(
        lambda: desk.confirm_tool(tenant, conversation_id, body.approve, by)
    )
    announce_handoff(s, tenant, reply)
    return await anyio.to_thread.run_sync(_reply, request, reply)


def _serve_approvals(s) -> None:
    """A decision made through ``/v1/review`` resumes its conversation on this server's desk (its own
    policy; the reviewer's key on the turns' records) and is audited in a ``support:tool_confirmation``
    record (the tool calls, the decision, the turns' ids)."""

    def runner(item) -> TurnRunner:
        key = None if item.decided_by == "local" else item.decided_by
        return TurnRunner(s.backend, s.audit, s.policy, s.config.default_max_tokens, key)

    def desk_for(item) -> Desk:
        flows, tools, rules = _desk_files(s)
        return Desk(s.db, runner(item), flows, tools, open_kb=_open_kb(s), rules=rules)

    def done(item, reply: DeskReply) -> None:
        stored = (lambda t: t) if s.policy is None else s.policy.stored
        record = runner(item).record(item.tenant, reply.conversation.id, "tool_confirmation")
        record.parameters = {
            "conversation_id": reply.conversation.id,
            "review_id": item.id,
            "confirmations": _confirmations(stored, reply),
            "tool_calls": [
                {"tool": t["tool"], "arguments": stored(json.dumps(t["arguments"])), "error": t["error"]}
                for t in reply.tool_calls
            ],
            "request_ids": reply.request_ids,
        }
        record.output = {"status": item.status}
        s.audit.write(record)
        announce_handoff(s, item.tenant, reply)

    serve_approvals(s.db, desk_for, done)


def _open_kb(s):
    from clearlm.server.knowledge import open_kb

    return lambda tenant, name: open_kb(s, name, tenant)


@contextlib.asynccontextmanager
async def _lifespan(app):
    """At start: decisions through ``/v1/review`` find this server's desk before any support request."""
    _serve_approvals(app.state.clearlm)
    yield


router.lifespan_context = _lifespan


# --- Channels (issue 15): closing a conversation; the webhooks, the chat widget and CORS are in
# ``server.support_channels``.


@router.post(
    "/support/conversations/{conversation_id}/close",
    response_model=SupportConversationOut,
    responses={409: _error("The conversation is closed already.")},
)
async def close_conversation_route(conversation_id: ConversationId, request: Request):
    """Close the conversation (the customer, from the widget, or an agent): no more messages in it, its
    open hand-off items dismissed, ``conversation.closed`` sent to the desk's webhooks. 409 when it is
    closed already."""
    s, tenant, by = state(request), tenant_of(request), user_of(request)
    request.state.audit_record.parameters = {"conversation_id": conversation_id}

    def work() -> dict:
        done = close_conversation(s.db, tenant, conversation_id, by)
        data = {"conversation_id": done.id, "customer_id": done.customer_id, "closed_by": by}
        webhooks_of(s).emit("conversation.closed", tenant, data)
        notes: list = []
        out = _conversation(policy_of(request, s), done, notes)
        if notes:
            request.state.audit_record.governance = {"policy": policy_of(request, s).name, "returned": notes}
        return out

    return await anyio.to_thread.run_sync(work)


# --- Desk view (issue 15): the one-question survey at close and the desk's figures
# (``apps.support.csat``, ``apps.support.analytics``); the desk's web pages are ``web/support.py``.


def desk_config(s) -> tuple[dict, dict]:
    """The desk of the server whose state is ``s``: ({flow name: Flow}, {tool name: function}), as its
    routes use them (loaded once per server; empty without ``--support-desk``)."""
    flows, tools, _ = _desk_files(s)
    return flows, tools


def _whole(value: Any) -> Any:
    """A JSON number with no fraction (4, 4.0: what JSON Schema calls an integer), not a string or a
    bool; pydantic's lax int takes "4" and true, its strict one refuses 4.0."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError("a satisfaction score is a whole number from 1 to 5")
    return value


class SupportCsatCreate(_Request):
    """The customer's answer to "How satisfied were you?" once the conversation is closed."""

    score: Annotated[int, BeforeValidator(_whole)] = Field(
        ge=1, le=5, description="1 (not at all satisfied) to 5 (very satisfied)."
    )
    comment: str | None = Field(
        default=None, max_length=MAX_COMMENT_CHARS, description="Optional words of the customer's."
    )


class SupportCsatOut(BaseModel):
    object: Literal["support.csat"] = "support.csat"
    conversation_id: str
    score: int
    comment: str | None
    created_at: str


class SupportAnalyticsOut(BaseModel):
    """The desk's figures (``apps.support.analytics.DeskAnalytics``): rates 0-1, seconds, CSAT 1-5."""

    object: Literal["support.analytics"] = "support.analytics"
    conversations: int
    open: int
    handed_off_now: int
    closed: int
    handed_off: int
    resolved_without_handoff: int
    resolution_rate: float | None
    handoff_rate: float | None
    reasons: dict[str, int]
    median_first_response_s: float | None
    first_responses: int
    csat_mean: float | None
    csat_count: int
    csat_scores: dict[str, int]
    since: str | None


@router.post(
    "/support/conversations/{conversation_id}/csat",
    response_model=SupportCsatOut,
    status_code=201,
    responses={409: _error("The conversation is not closed yet, or was rated already.")},
)
async def rate_conversation(conversation_id: ConversationId, body: SupportCsatCreate, request: Request):
    """The survey at close: a score of 1-5 and an optional comment (stored as the policy stores text),
    once per closed conversation. 409 when it is not closed or was rated already."""
    s, tenant = state(request), tenant_of(request)
    request.state.audit_record.parameters = {"conversation_id": conversation_id, "score": body.score}
    policy = policy_of(request, s)
    comment = body.comment if policy is None or not body.comment else policy.stored(body.comment)
    done = await anyio.to_thread.run_sync(
        lambda: record_csat(s.db, tenant, conversation_id, body.score, comment)
    )
    return done.to_dict()


@router.get("/support/analytics", response_model=SupportAnalyticsOut, **ADMIN)
async def support_analytics(
    request: Request,
    since: Annotated[
        datetime | None,
        Query(description="Only conversations created at or after this time (ISO 8601 with a zone)."),
    ] = None,
):
    """The desk's figures for the caller's tenant: conversations, resolution without hand-off, hand-off
    rate and reasons, median first-response time (seconds), CSAT."""
    s, tenant = state(request), tenant_of(request)
    figures = await anyio.to_thread.run_sync(lambda: desk_analytics(s.db, tenant, since))
    return figures.to_dict()
