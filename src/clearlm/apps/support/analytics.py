"""The desk's figures (the web UI's desk view, ``GET /v1/support/analytics``): conversations, resolution
without hand-off, hand-off rate and reasons, median first-response time, CSAT. The figures Chatwoot's
reports give, computed from the desk's own tables and the review queue.

Counts come from SQL aggregates (COUNT, AVG, GROUP BY; JSON fields read with SQLAlchemy's portable JSON
index, so SQLite and PostgreSQL both work); the median needs the single values, so it reads one pair of
timestamps per conversation, of at most :data:`MAX_MEDIAN_CONVERSATIONS` (the newest).
"""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass, field
from datetime import datetime

from sqlalchemy import and_, func, select

from clearlm.apps.support.handoff import HANDOFF
from clearlm.errors import InvalidInputError
from clearlm.store.db import Database, as_utc
from clearlm.store.tables import ReviewRow
from clearlm.store.tables import SupportConversationRow as C
from clearlm.store.tables import SupportMessageRow as M

MAX_MEDIAN_CONVERSATIONS = 50_000  # the newest conversations the median first-response time reads
RESPONDERS = ("assistant", "agent")


@dataclass(slots=True)
class DeskAnalytics:
    """The desk's figures over the conversations created since ``since`` (all when None).

    Fields: conversations (count); open, handed_off_now, closed (counts by current status);
    handed_off (conversations with at least one hand-off item, ever); resolved_without_handoff (closed and
    never handed off); resolution_rate (resolved_without_handoff / conversations, 0-1, None with no
    conversations); handoff_rate (handed_off / conversations, 0-1, or None); reasons ({reason: hand-off
    items of those conversations}, most first); median_first_response_s (seconds from a conversation's
    first customer message to the first assistant or agent message after it, median over the
    conversations that have both; None when none has); first_responses (how many that median is over);
    csat_mean (mean score 1-5, None when none was given); csat_count; csat_scores ({score: count},
    1..5); since (ISO 8601 or None)."""

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
    csat_scores: dict[int, int] = field(default_factory=dict)
    since: str | None = None

    def to_dict(self) -> dict:
        out = asdict(self)
        out["object"] = "support.analytics"
        out["csat_scores"] = {str(k): v for k, v in self.csat_scores.items()}
        return out


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def desk_analytics(db: Database, tenant: str, since: datetime | None = None) -> DeskAnalytics:
    """The figures of ``tenant``'s desk over the conversations created at or after ``since`` (an aware
    datetime; None: all). Reads with five bounded queries.

    Raises:
        InvalidInputError: ``since`` without a time zone.
    """
    if since is not None and since.tzinfo is None:
        raise InvalidInputError("since needs a time zone (e.g. 2026-12-01T00:00:00Z)")
    scope = [C.tenant == tenant] + ([C.created_at >= since] if since is not None else [])
    item_conversation = ReviewRow.payload["conversation_id"].as_string()
    handoffs = and_(ReviewRow.tenant == tenant, ReviewRow.kind == HANDOFF, item_conversation == C.id)
    ever = select(ReviewRow.id).where(handoffs).exists()
    with db.session() as session:
        by_status = dict(
            session.execute(select(C.status, func.count()).where(*scope).group_by(C.status)).all()
        )
        handed_off, resolved = session.execute(
            select(
                func.count().filter(ever),
                func.count().filter(and_(C.status == "closed", ~ever)),
            ).where(*scope)
        ).one()
        reason = ReviewRow.payload["reason"].as_string()
        reasons = session.execute(
            select(reason, func.count())
            .join(C, handoffs)
            .where(*scope)
            .group_by(reason)
            .order_by(func.count().desc(), reason)
        ).all()
        scores = dict(
            session.execute(
                select(C.csat_score, func.count())
                .where(*scope, C.csat_score.is_not(None))
                .group_by(C.csat_score)
            ).all()
        )
        waits = _first_response_waits(session, scope)
    total = sum(by_status.values())
    rated = sum(scores.values())
    return DeskAnalytics(
        conversations=total,
        open=by_status.get("open", 0),
        handed_off_now=by_status.get("handed_off", 0),
        closed=by_status.get("closed", 0),
        handed_off=handed_off,
        resolved_without_handoff=resolved,
        resolution_rate=_rate(resolved, total),
        handoff_rate=_rate(handed_off, total),
        reasons={r or "unknown": n for r, n in reasons},
        median_first_response_s=round(statistics.median(waits), 3) if waits else None,
        first_responses=len(waits),
        csat_mean=round(sum(s * n for s, n in scores.items()) / rated, 3) if rated else None,
        csat_count=rated,
        csat_scores={s: scores.get(s, 0) for s in range(1, 6)},
        since=since.isoformat() if since is not None else None,
    )


def _first_response_waits(session, scope: list) -> list[float]:
    """Seconds from each conversation's first customer message to the first assistant or agent message
    written after it (by message id, the order written), for the newest conversations in ``scope``."""
    first_ask = (
        select(M.conversation_id, func.min(M.id).label("ask_id"))
        .join(C, C.id == M.conversation_id)
        .where(*scope, M.role == "customer")
        .group_by(M.conversation_id)
        .order_by(func.max(C.created_at).desc())
        .limit(MAX_MEDIAN_CONVERSATIONS)
        .subquery()
    )
    answer_id = (
        select(func.min(M.id))
        .where(
            M.conversation_id == first_ask.c.conversation_id,
            M.id > first_ask.c.ask_id,
            M.role.in_(RESPONDERS),
        )
        .scalar_subquery()
    )
    ask, answer = M.__table__.alias("ask"), M.__table__.alias("answer")
    pairs = session.execute(
        select(ask.c.created_at, answer.c.created_at)
        .select_from(first_ask)
        .join(ask, ask.c.id == first_ask.c.ask_id)
        .join(answer, answer.c.id == answer_id)
    ).all()
    return [(as_utc(b) - as_utc(a)).total_seconds() for a, b in pairs]
