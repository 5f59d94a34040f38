"""THE review queue: the one place where work a person must decide waits for them.

Every application adds its items here rather than keeping a queue of its own: the pipeline adds a request
the policy escalated (kind ``escalated_request``, see ``pipeline/turn.py``); support hand-offs and grades
awaiting a teacher (issues 15 and 16) add theirs under their own kinds. An item belongs to a tenant; a
person of that tenant (today: an admin key) decides it once, by approving, answering or dismissing it.

Each kind may register handlers (:func:`on_decision`) that react to a decision: the escalated-request
handler appends a reviewer's answer to the chat conversation the request came from. The decision and its
handlers stand or fall together: the item is claimed with a conditional update (so two reviewers cannot
both decide it), the handlers run, and if one raises, the item is opened again and the error raised.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select, update

from clearlm.errors import ClearlmError, InvalidInputError
from clearlm.store.db import Database, as_utc
from clearlm.store.tables import ConversationRow, ReviewRow

log = logging.getLogger(__name__)

ESCALATED = "escalated_request"  # the pipeline's kind: a request the policy escalated
ACTIONS = {"approve": "approved", "answer": "answered", "dismiss": "dismissed"}  # action -> status
STATUSES = ("open", *ACTIONS.values())
FILTERS = (*STATUSES, "decided", "all")  # what list() accepts as ``status``
MAX_TITLE_CHARS = 200  # a title longer than this is cut (with an ellipsis)
MAX_KIND_CHARS = 32  # the column's width
MAX_ANSWER_CHARS = 100_000  # a reviewer's answer or note
MAX_LIST = 500  # items per list() call


class ReviewItemNotFoundError(ClearlmError, LookupError):
    """No review item with that id in the caller's tenant (another tenant's is not revealed)."""

    status_code = 404
    error_type = "not_found_error"
    code = "review_item_not_found"


class AlreadyDecidedError(ClearlmError):
    """The item was decided already (each item is decided once)."""

    status_code = 409
    error_type = "conflict_error"
    code = "review_item_decided"


@dataclass(frozen=True, slots=True)
class ReviewItem:
    """An item as read back. Fields: id (``rev_...``); tenant; kind; status (open, approved, answered,
    dismissed); title; payload (what the reviewer needs to see; its shape is the kind's); request_id (the
    audited request it came from, or None); created_at, decided_at (UTC); decided_by (the reviewer's key
    id, or ``local`` with open access); decision ({action, answer, note} once decided)."""

    id: str
    tenant: str
    kind: str
    status: str
    title: str
    payload: dict
    request_id: str | None
    created_at: datetime
    decided_at: datetime | None = None
    decided_by: str | None = None
    decision: dict | None = None

    def to_dict(self) -> dict:
        return {
            "id": self.id,
            "object": "review_item",
            "tenant": self.tenant,
            "kind": self.kind,
            "status": self.status,
            "title": self.title,
            "payload": self.payload,
            "request_id": self.request_id,
            "created_at": self.created_at.isoformat(),
            "decided_at": self.decided_at.isoformat() if self.decided_at else None,
            "decided_by": self.decided_by,
            "decision": self.decision,
        }


# A handler: fn(db, item) -> None, called with the item as decided (status, decision filled in).
Handler = Callable[[Database, ReviewItem], None]
_handlers: dict[str, list[Handler]] = {}


def on_decision(kind: str, fn: Handler) -> Handler:
    """Call ``fn(db, item)`` whenever an item of ``kind`` is decided (after it is marked, before the
    decision is final: if ``fn`` raises, the item is opened again and the error reaches the reviewer).
    Returns ``fn``, so it can be used as a decorator's body. Registering the same function twice for a
    kind registers it once."""
    fns = _handlers.setdefault(kind, [])
    if fn not in fns:
        fns.append(fn)
    return fn


def title_of(text: str) -> str:
    """A one-line title: whitespace collapsed, cut to ``MAX_TITLE_CHARS`` with an ellipsis."""
    line = " ".join(str(text).split())
    return line if len(line) <= MAX_TITLE_CHARS else line[: MAX_TITLE_CHARS - 1] + "…"


def _item(row: ReviewRow) -> ReviewItem:
    return ReviewItem(
        id=row.id,
        tenant=row.tenant,
        kind=row.kind,
        status=row.status,
        title=row.title,
        payload=row.payload or {},
        request_id=row.request_id,
        created_at=as_utc(row.created_at),
        decided_at=as_utc(row.decided_at),
        decided_by=row.decided_by,
        decision=row.decision,
    )


def _not_found(item_id: str) -> ReviewItemNotFoundError:
    return ReviewItemNotFoundError(
        f"no review item with id {item_id!r}: GET /v1/review?status=all lists your tenant's items"
    )


class ReviewQueue:
    """The review items held in ``db``, each within its tenant."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def add(
        self, tenant: str, kind: str, title: str, payload: dict, request_id: str | None = None
    ) -> ReviewItem:
        """A new open item of ``tenant``. ``kind`` names the application (1-32 characters); ``title`` is
        cut to one line of ``MAX_TITLE_CHARS``; ``payload`` must be JSON-serialisable.

        Raises:
            InvalidInputError: an empty or over-long kind.
        """
        if not kind or len(kind) > MAX_KIND_CHARS:
            raise InvalidInputError(f"a review item's kind is 1-{MAX_KIND_CHARS} characters, got {kind!r}")
        row = ReviewRow(
            id="rev_" + secrets.token_hex(8),
            tenant=tenant,
            kind=kind,
            status="open",
            title=title_of(title) or "(untitled)",
            payload=payload,
            request_id=request_id,
            created_at=datetime.now(UTC),
        )
        with self.db.session.begin() as session:
            session.add(row)
        return _item(row)

    def list(
        self, tenant: str, status: str = "open", kind: str | None = None, limit: int = 100
    ) -> list[ReviewItem]:
        """``tenant``'s items of ``status`` (open, approved, answered, dismissed; ``decided``: any but
        open; ``all``), of ``kind`` if given, at most ``limit`` (1-500). Open items come oldest first
        (the queue's order: the longest waiting first); every other listing newest first.

        Raises:
            InvalidInputError: an unknown status or a limit out of range.
        """
        if status not in FILTERS:
            raise InvalidInputError(f"unknown review status {status!r}: choose one of {', '.join(FILTERS)}")
        if not 1 <= limit <= MAX_LIST:
            raise InvalidInputError(f"limit must be between 1 and {MAX_LIST}, got {limit}")
        query = select(ReviewRow).where(ReviewRow.tenant == tenant)
        if status == "decided":
            query = query.where(ReviewRow.status != "open")
        elif status != "all":
            query = query.where(ReviewRow.status == status)
        if kind is not None:
            query = query.where(ReviewRow.kind == kind)
        if status == "open":
            query = query.order_by(ReviewRow.created_at, ReviewRow.id)
        else:
            query = query.order_by(ReviewRow.created_at.desc(), ReviewRow.id.desc())
        with self.db.session() as session:
            return [_item(r) for r in session.scalars(query.limit(limit))]

    def get(self, item_id: str, tenant: str) -> ReviewItem:
        """The item with this id in ``tenant``.

        Raises:
            ReviewItemNotFoundError (404): no such item in that tenant.
        """
        with self.db.session() as session:
            row = session.get(ReviewRow, item_id)
            if row is None or row.tenant != tenant:
                raise _not_found(item_id)
            return _item(row)

    def decide(
        self,
        item_id: str,
        tenant: str,
        action: str,
        by: str,
        answer: str | None = None,
        note: str | None = None,
    ) -> ReviewItem:
        """Decide an open item: ``approve`` (let it stand), ``answer`` (reply in the machine's place:
        ``answer`` is required) or ``dismiss``. ``by``: who decided (a key id, or ``local``). The kind's
        handlers (:func:`on_decision`) run before the decision is final.

        Returns the decided item (status approved, answered or dismissed; decision {action, answer, note}).

        Raises:
            InvalidInputError: an unknown action, an answer missing (or given to another action), a text
                past ``MAX_ANSWER_CHARS``. ReviewItemNotFoundError (404): not in ``tenant``.
                AlreadyDecidedError (409): decided before. Whatever a handler raises (the item stays open).
        """
        if action not in ACTIONS:
            raise InvalidInputError(f"unknown review action {action!r}: choose one of {', '.join(ACTIONS)}")
        if action == "answer" and not (answer or "").strip():
            raise InvalidInputError("an answer needs its text: write the reply the requester should get")
        if action != "answer" and answer is not None:
            raise InvalidInputError(f"only the answer action takes an answer (got one with {action!r})")
        for text in (answer, note):
            if text is not None and len(text) > MAX_ANSWER_CHARS:
                raise InvalidInputError(f"an answer or note is at most {MAX_ANSWER_CHARS:,} characters")
        current = self.get(item_id, tenant)
        if current.status != "open":
            raise _decided(current)
        decision = {"action": action, "answer": answer, "note": note}
        now = datetime.now(UTC)
        claim = (
            update(ReviewRow)
            .where(ReviewRow.id == item_id, ReviewRow.tenant == tenant, ReviewRow.status == "open")
            .values(status=ACTIONS[action], decided_at=now, decided_by=by, decision=decision)
        )
        with self.db.session.begin() as session:
            claimed = session.execute(claim).rowcount == 1
        if not claimed:  # another reviewer decided it between the read and the update
            raise _decided(self.get(item_id, tenant))
        item = self.get(item_id, tenant)
        try:
            for fn in _handlers.get(item.kind, []):
                fn(self.db, item)
        except BaseException:
            self._reopen(item_id)
            raise
        return item

    def _reopen(self, item_id: str) -> None:
        reopen = (
            update(ReviewRow)
            .where(ReviewRow.id == item_id)
            .values(status="open", decided_at=None, decided_by=None, decision=None)
        )
        with self.db.session.begin() as session:
            session.execute(reopen)


def _decided(item: ReviewItem) -> AlreadyDecidedError:
    return AlreadyDecidedError(
        f"the review item {item.id!r} was already decided ({item.status} by {item.decided_by} at "
        f"{item.decided_at:%Y-%m-%d %H:%M} UTC): an item is decided once; reload the queue"
    )


def _answer_in_conversation(db: Database, item: ReviewItem) -> None:
    """An answered escalated request that came from a chat conversation: the reviewer's answer joins that
    conversation as an assistant message (its meta names the reviewer and the item)."""
    origin = item.payload.get("origin") or {}
    conversation_id = origin.get("conversation_id")
    if item.status != "answered" or not conversation_id:
        return
    from clearlm.store.conversations import Conversations  # the chat's store (imported when needed)

    with db.session() as session:  # the origin is the server's own note, but never cross a tenant
        conversation = session.get(ConversationRow, conversation_id)
        if conversation is None or conversation.tenant != item.tenant:
            raise InvalidInputError(
                f"the conversation {conversation_id!r} this request came from no longer exists, so the "
                "answer cannot reach it: approve or dismiss the item instead"
            )
    Conversations(db).append_message(
        conversation_id,
        "assistant",
        item.decision["answer"],
        meta={"reviewed_by": item.decided_by, "review_id": item.id},
    )


on_decision(ESCALATED, _answer_in_conversation)


def add_escalated(db: Database, record, origin: dict | None = None) -> ReviewItem:
    """Queue a request the policy escalated, from its audit record as written (prompt and output as
    stored: redacted when the policy says so). Title: the last user message (or the prompt text)."""
    prompt = record.prompt
    if isinstance(prompt, list):
        users = [m.get("content", "") for m in prompt if isinstance(m, dict) and m.get("role") == "user"]
        title = users[-1] if users else (prompt[-1].get("content", "") if prompt else "")
    else:
        title = prompt or ""
    payload = {
        "prompt": prompt,
        "output": record.output,
        "findings": record.governance,
        "endpoint": record.endpoint,
        "model": record.model,
        "status_code": record.status_code,
        "finish_reason": record.finish_reason,
    }
    if origin:
        payload["origin"] = origin
    return ReviewQueue(db).add(record.tenant, ESCALATED, title, payload, request_id=record.request_id)
