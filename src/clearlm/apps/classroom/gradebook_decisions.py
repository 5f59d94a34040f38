"""A teacher's decisions on grades (``Gradebook.decide``), and grade-review items decided through the
review queue (``/v1/review``): see :mod:`clearlm.apps.classroom.gradebook`."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy import update

from clearlm.apps.classroom.gradebook import (
    ACTIONS,
    GRADE_REVIEW,
    MAX_NOTE_CHARS,
    Gradebook,
    GradeDecidedError,
    StoredGrade,
)
from clearlm.apps.classroom.rubrics import Rubric
from clearlm.errors import InvalidInputError
from clearlm.store.db import Database
from clearlm.store.review import ReviewItem, ReviewQueue, on_decision
from clearlm.store.tables import GradeRow


def decide(
    book: Gradebook,
    grade_id: str,
    tenant: str,
    action: str,
    by: str,
    score: int | None = None,
    criteria: dict[str, int] | None = None,
    note: str | None = None,
    record=None,
) -> StoredGrade:
    """``book.decide`` (see :meth:`Gradebook.decide`)."""
    if action not in ACTIONS:
        raise InvalidInputError(f"unknown action {action!r}: choose accept or override")
    if note is not None and len(note) > MAX_NOTE_CHARS:
        raise InvalidInputError(f"a note is at most {MAX_NOTE_CHARS:,} characters")
    current = book.get(grade_id, tenant)
    if current.status not in ("released", "in_review"):
        raise _decided(current)
    final, points = _final(current, action, score, criteria)
    decision = {"action": action, "score": final, "criteria": points, "note": note}
    now = datetime.now(UTC)
    claim = (
        update(GradeRow)
        .where(GradeRow.id == grade_id, GradeRow.status == current.status)
        .values(status=ACTIONS[action], final_score=final, decided_by=by, decided_at=now, decision=decision)
    )
    with book.db.session.begin() as session:
        if session.execute(claim).rowcount != 1:
            raise _decided(book.get(grade_id, tenant))
    if current.review_id:
        queue = ReviewQueue(book.db)
        if queue.get(current.review_id, tenant).status == "open":
            answer = f"score {final} (overridden)" if action == "override" else None
            queue.decide(current.review_id, tenant, "approve" if action == "accept" else "answer", by,
                         answer=answer, note=note)  # fmt: skip
    decided = book.get(grade_id, tenant)
    _audit(book, decided, by, record)
    return decided


def _final(g: StoredGrade, action, score, criteria) -> tuple[int, dict | None]:
    if action == "accept":
        if score is not None or criteria:
            raise InvalidInputError("accept keeps the grade as it is: give a score or criteria to override")
        return g.score, None
    if score is None and not criteria:
        raise InvalidInputError("an override needs the new score (0-2) and/or points per criterion")
    if score is not None and score not in (0, 1, 2):
        raise InvalidInputError(f"a score is 0, 1 or 2, got {score}")
    if not criteria:
        return score, None
    rubric = Rubric.model_validate(g.grade["rubric"])
    points = {c["criterion_id"]: c["points"] for c in g.grade["criteria"]}
    for cid, p in criteria.items():
        rubric.criterion(cid).level(p)  # RubricError (an InvalidInputError) names what is wrong
    total = rubric.grade({**points, **criteria})
    if score is not None and score != total:
        raise InvalidInputError(
            f"the criteria's points give score {total} under the rubric's scale, not {score}: "
            "give one of them, or make them agree"
        )
    return total, dict(criteria)


def _audit(book: Gradebook, g: StoredGrade, by: str, record) -> None:
    if record is None and book.audit is None:
        return
    from clearlm.store import AuditRecord

    if record is None:
        record = AuditRecord(
            request_id=f"grade-decision-{uuid.uuid4().hex[:20]}",
            created_at=datetime.now(UTC),
            endpoint="classroom:grade_decision",
            api_key_id=None if by == "local" else by,
            tenant=g.tenant,
        )
    decision = dict(g.decision or {})
    if decision.get("note"):
        decision["note"] = book._store(decision["note"])
    record.model = g.model
    record.parameters = {
        "grade_id": g.id,
        "rubric_id": g.rubric_id,
        "rubric_version": g.rubric_version,
        "answer_id": g.answer_id,
        "learner": g.learner,
        "grading_id": g.grading_id,
        "review_id": g.review_id,
    }
    record.prompt = g.answer
    record.output = {
        "status": g.status,
        "model_score": g.score,
        "final_score": g.final_score,
        "confidence": g.confidence,
        "decision": decision,
        "evidence": {c["criterion_id"]: c["evidence"] for c in g.grade.get("criteria", [])},
        "review_reasons": g.grade.get("review_reasons", []),
    }
    if book.audit is not None and record.endpoint == "classroom:grade_decision":
        book.audit.write(record)


def _decided(g: StoredGrade) -> GradeDecidedError:
    return GradeDecidedError(
        f"the grade {g.id!r} was already {g.status} by {g.decided_by}: a grade is decided once; reload"
    )


def _from_review(db: Database, item: ReviewItem) -> None:
    """A grade-review item decided through ``/v1/review``: approve or dismiss accepts the grade (unless
    the gradebook decided it already); an answer is refused (an override needs a score)."""
    grade_id = item.payload.get("grade_id")
    with db.session() as session:
        row = session.get(GradeRow, grade_id) if grade_id else None
        if row is None or row.tenant != item.tenant or row.status != "in_review":
            return
    if item.status == "answered":
        raise InvalidInputError(
            f"override a grade with POST /v1/classroom/grades/{grade_id}/decision (a score or points per "
            "criterion), not with a written answer; approve or dismiss here accepts it"
        )
    note = (item.decision or {}).get("note")
    decide(Gradebook(db), grade_id, item.tenant, "accept", item.decided_by or "local", note=note)


on_decision(GRADE_REVIEW, _from_review)
