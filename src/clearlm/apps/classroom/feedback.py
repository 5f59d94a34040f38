"""The learner's view of their graded answers (issue 16): only released grades, with per criterion the
level, the points, the feedback and the evidence spans of their answer.

Released (:data:`RELEASED`): a grade the grader did not send to review (``released``), or one a teacher
decided: ``accepted``, or ``overridden`` (then the teacher's score and points count, and the criteria
they changed are marked). A grade ``in_review`` waits for the teacher and is not shown (EU AI Act, Annex
III 3(b): a person oversees a doubtful grade before the learner sees it). What the learner is not shown:
the teacher's note (written for the audit record), the review reasons, the grader's confidence and level
probabilities, the instructions removed from the answer (only that some were).
"""

from __future__ import annotations

from sqlalchemy import select

from clearlm.apps.classroom.gradebook import MAX_LIST, StoredGrade, _stored
from clearlm.errors import InvalidInputError
from clearlm.store.db import Database
from clearlm.store.tables import GradeRow

RELEASED = ("released", "accepted", "overridden")


def released_grades(db: Database, tenant: str, learner: str, limit: int = MAX_LIST) -> list[StoredGrade]:
    """``learner``'s grades in ``tenant`` that are released (status in :data:`RELEASED`), newest first,
    at most ``limit`` (1-1000).

    Raises:
        InvalidInputError: an empty learner id or one over 128 characters, a bad limit.
    """
    if not learner or not learner.strip() or len(learner) > 128:
        raise InvalidInputError("a learner is named by a non-empty id of at most 128 characters")
    if not 1 <= limit <= MAX_LIST:
        raise InvalidInputError(f"limit is 1 to {MAX_LIST}, got {limit}")
    query = (
        select(GradeRow)
        .where(GradeRow.tenant == tenant, GradeRow.learner == learner, GradeRow.status.in_(RELEASED))
        .order_by(GradeRow.created_at.desc(), GradeRow.id.desc())
        .limit(limit)
    )
    with db.session() as session:
        return [_stored(r) for r in session.scalars(query)]


def learner_view(g: StoredGrade) -> dict:
    """What the learner sees of a released grade: ``{"id", "object", "rubric_id", "rubric_version",
    "subject", "question", "answer_id", "answer", "score" (final, 0-2), "max_score" (2), "points",
    "max_points", "status", "changed_by_teacher", "instructions_removed" (count), "created_at",
    "decided_at", "criteria": [{"criterion_id", "description", "level" (descriptor), "points",
    "max_points", "feedback", "changed_by_teacher", "evidence": [{"text", "start", "end", "effect"}]}]}``.
    Evidence offsets are characters of ``answer``; ``effect`` in points (positive: the span earned
    points). Raises InvalidInputError for a grade that is not released."""
    if g.status not in RELEASED:
        raise InvalidInputError(f"grade {g.id!r} is {g.status}: a learner sees released grades only")
    rubric = g.grade.get("rubric") or {}
    described = {c["id"]: c for c in rubric.get("criteria", [])}
    changed = ((g.decision or {}).get("criteria") or {}) if g.status == "overridden" else {}
    criteria = []
    for c in g.grade.get("criteria", []):
        spec = described.get(c["criterion_id"], {})
        levels = {lv["points"]: lv["descriptor"] for lv in spec.get("levels", [])}
        points = changed.get(c["criterion_id"], c["points"])
        criteria.append(
            {
                "criterion_id": c["criterion_id"],
                "description": spec.get("description", ""),
                "level": levels.get(points, c.get("descriptor", "")),
                "points": points,
                "max_points": max(levels, default=points),
                "feedback": c.get("feedback", ""),
                "changed_by_teacher": c["criterion_id"] in changed,
                "evidence": [
                    {k: span[k] for k in ("text", "start", "end", "effect")} for span in c.get("evidence", [])
                ],
            }
        )
    return {
        "id": g.id,
        "object": "classroom.learner_grade",
        "rubric_id": g.rubric_id,
        "rubric_version": g.rubric_version,
        "subject": rubric.get("subject", ""),
        "question": rubric.get("question", ""),
        "answer_id": g.answer_id,
        "answer": g.answer,
        "score": g.final_score,
        "max_score": 2,
        "points": sum(c["points"] for c in criteria),
        "max_points": rubric.get("max_points", sum(c["max_points"] for c in criteria)),
        "status": g.status,
        "changed_by_teacher": g.status == "overridden",
        "instructions_removed": len(g.grade.get("findings", [])),
        "created_at": g.created_at.isoformat(),
        "decided_at": g.decided_at.isoformat() if g.decided_at else None,
        "criteria": criteria,
    }
