"""/v1/review: the review queue over HTTP (``store.review``: the one queue every application adds to).

Reviewers are the tenant's admins for now: every route needs an admin key (403 for a user key), and sees
its own tenant's items alone (another tenant's item is 404). Each decision is audited: the decision
request's own audit record names the item (``parameters``) and holds the decision (``output``), the answer
and note stored as the policy stores text (PII-redacted with ``store_redacted``).
"""

from __future__ import annotations

from typing import Annotated, Literal

import anyio
from fastapi import Path, Query, Request
from pydantic import BaseModel, Field

from clearlm.server.auth import tenant_of, user_of
from clearlm.server.protocol import MAX_ID_CHARS, _Request
from clearlm.server.routes import ADMIN, _error, api_router, state
from clearlm.server.serving import policy_of
from clearlm.store.review import FILTERS, MAX_ANSWER_CHARS, MAX_KIND_CHARS, MAX_LIST, ReviewQueue

router = api_router()

ItemId = Annotated[str, Path(max_length=MAX_ID_CHARS, description="The item's id (rev_...).")]


class _Decision(_Request):
    note: str | None = Field(
        default=None, max_length=MAX_ANSWER_CHARS, description="Why, for the audit record (optional)."
    )


class Approve(_Decision):
    """Let the machine's answer stand."""

    action: Literal["approve"]


class Answer(_Decision):
    """Reply in the machine's place (into the conversation the request came from, if any)."""

    action: Literal["answer"]
    answer: str = Field(
        min_length=1, max_length=MAX_ANSWER_CHARS, pattern=r"\S", description="The reply (not blank)."
    )


class Dismiss(_Decision):
    """Close the item: nothing to do."""

    action: Literal["dismiss"]


# ``POST /v1/review/{id}/decision``: one of the three, told apart by ``action``.
ReviewDecision = Annotated[Approve | Answer | Dismiss, Field(discriminator="action")]


class ReviewItemOut(BaseModel):
    """An item: ``payload``'s shape is its kind's (escalated_request: prompt, output, findings, endpoint,
    model, status_code, finish_reason, origin)."""

    id: str
    object: Literal["review_item"] = "review_item"
    tenant: str
    kind: str
    status: Literal["open", "approved", "answered", "dismissed"]
    title: str
    payload: dict
    request_id: str | None
    created_at: str
    decided_at: str | None
    decided_by: str | None
    decision: dict | None


class ReviewList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ReviewItemOut]


@router.get("/review", response_model=ReviewList, **ADMIN)
async def list_review(
    request: Request,
    status: Annotated[
        Literal[FILTERS],  # type: ignore[valid-type]
        Query(description="open (the default, oldest first), approved, answered, dismissed, decided, all."),
    ] = "open",
    kind: Annotated[
        str | None, Query(max_length=MAX_KIND_CHARS, description="Only items of this kind.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIST, description=f"At most this many, 1 to {MAX_LIST}.")] = 100,
):
    """The caller's tenant's items: open ones oldest first (the queue's order), others newest first."""
    request.state.audit_record.parameters = {"status": status, "kind": kind, "limit": limit}
    queue = ReviewQueue(state(request).db)
    items = await anyio.to_thread.run_sync(lambda: queue.list(tenant_of(request), status, kind, limit))
    return {"data": [i.to_dict() for i in items]}


@router.get("/review/{item_id}", response_model=ReviewItemOut, **ADMIN)
async def get_review_item(item_id: ItemId, request: Request):
    queue = ReviewQueue(state(request).db)
    item = await anyio.to_thread.run_sync(lambda: queue.get(item_id, tenant_of(request)))
    return item.to_dict()


@router.post(
    "/review/{item_id}/decision",
    response_model=ReviewItemOut,
    responses={**ADMIN["responses"], 409: _error("The item was decided already (an item is decided once).")},
    dependencies=ADMIN["dependencies"],
)
async def decide_review_item(item_id: ItemId, body: ReviewDecision, request: Request):
    """Decide an open item once. An answer to a request that came from a chat conversation joins that
    conversation as an assistant message."""
    s, record = state(request), request.state.audit_record
    record.parameters = {"review_id": item_id, "action": body.action}
    queue = ReviewQueue(s.db)
    answer = getattr(body, "answer", None)

    def decide() -> dict:
        item = queue.decide(item_id, tenant_of(request), body.action, user_of(request), answer, body.note)
        policy = policy_of(request, s)
        stored = {
            k: (v if v is None or policy is None else policy.stored(v))
            for k, v in (("answer", answer), ("note", body.note))
        }
        record.parameters.update(kind=item.kind, item_request_id=item.request_id)
        record.output = {"status": item.status, "action": body.action, **stored}
        return item.to_dict()

    return await anyio.to_thread.run_sync(decide)
