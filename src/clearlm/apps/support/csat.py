"""The one-question survey at close (CSAT): "How satisfied were you?", a score of 1 (not at all) to 5
(very), and an optional comment, stored on the conversation (``support_conversations.csat_*``, migration
0007). A conversation is rated once, after it is closed (:mod:`.closing`); :mod:`.analytics` averages the
scores. Chatwoot's CSAT survey is the model (one rating per conversation, sent when it is resolved)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update

from clearlm.apps.support.conversations import SupportConversations
from clearlm.apps.support.customers import now
from clearlm.errors import ClearlmError, InvalidInputError
from clearlm.store.db import Database, as_utc
from clearlm.store.tables import SupportConversationRow

QUESTION = "How satisfied were you with this conversation? (1: not at all, 5: very)"
SCORES = range(1, 6)
MAX_COMMENT_CHARS = 2_000


class CsatNotAllowedError(ClearlmError):
    """A score for a conversation that is not closed yet, or that was rated already."""

    status_code = 409
    error_type = "conflict_error"
    code = "support_csat_not_allowed"


@dataclass(frozen=True, slots=True)
class Csat:
    """A conversation's answer to the survey. Fields: conversation_id; score (1-5); comment (or None);
    created_at (UTC)."""

    conversation_id: str
    score: int
    comment: str | None
    created_at: datetime

    def to_dict(self) -> dict:
        return {
            "object": "support.csat",
            "conversation_id": self.conversation_id,
            "score": self.score,
            "comment": self.comment,
            "created_at": self.created_at.isoformat(),
        }


def record_csat(
    db: Database, tenant: str, conversation_id: str, score: int, comment: str | None = None
) -> Csat:
    """Store the customer's score (an int 1-5) and comment (blank: None) on the closed conversation.

    Raises:
        InvalidInputError: a score that is not an integer 1-5, a comment over 2,000 characters.
        CsatNotAllowedError (409): the conversation is not closed yet, or has a score already.
        SupportConversationNotFoundError (404): not in ``tenant``.
    """
    if isinstance(score, bool) or not isinstance(score, int) or score not in SCORES:
        raise InvalidInputError(f"a satisfaction score is a whole number from 1 to 5, not {score!r}")
    comment = comment.strip() if comment else None
    if comment and len(comment) > MAX_COMMENT_CHARS:
        raise InvalidInputError(f"a survey comment is at most {MAX_COMMENT_CHARS:,} characters")
    row, stamp = SupportConversationRow, now()
    rating = (
        update(row)
        .where(
            row.id == conversation_id,
            row.tenant == tenant,
            row.status == "closed",
            row.csat_score.is_(None),
        )
        .values(csat_score=score, csat_comment=comment or None, csat_at=stamp)
    )
    with db.writing() as session:  # conditional: of two answers at once, one is kept
        rated = session.execute(rating).rowcount == 1
    if not rated:
        conversation = SupportConversations(db).get(tenant, conversation_id)  # 404 when not there
        why = (
            "is not closed yet: the survey is asked at close"
            if conversation.status != "closed"
            else "was rated already (once per conversation)"
        )
        raise CsatNotAllowedError(f"the conversation {conversation_id!r} {why}")
    return Csat(conversation_id, score, comment or None, stamp)


def csat_of(db: Database, tenant: str, conversation_ids: list[str]) -> dict[str, Csat]:
    """The survey answers of those conversations of ``tenant`` (at most 500 ids), by conversation id;
    an unrated conversation is absent.

    Raises:
        InvalidInputError: more than 500 ids.
    """
    if len(conversation_ids) > 500:
        raise InvalidInputError(f"at most 500 conversations at once, got {len(conversation_ids)}")
    row = SupportConversationRow
    query = select(row.id, row.csat_score, row.csat_comment, row.csat_at).where(
        row.tenant == tenant, row.id.in_(conversation_ids), row.csat_score.is_not(None)
    )
    with db.session() as session:
        return {i: Csat(i, score, comment, as_utc(at)) for i, score, comment, at in session.execute(query)}
