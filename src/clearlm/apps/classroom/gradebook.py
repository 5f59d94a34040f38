"""The teacher's gradebook (issue 16): grades stored, reviewed and exported.

:class:`Gradebook` grades answers with a :class:`~clearlm.apps.classroom.grading.Grader` and keeps each
grade in ``classroom_grades`` (one row per tenant, rubric id, rubric version and answer id): the answer as
the policy stores text, the score (0-2), confidence, and the Grade's JSON (criteria with their evidence
spans, findings, review reasons, and the rubric itself, so a decision can be checked without the file).

- A batch (:meth:`Gradebook.grade_batch`) skips the answers already graded for that rubric version, so a
  rerun resumes; ``progress(done, total)`` is called after each answer.
- A grade the grader flags (``needs_review``) is ``in_review`` and becomes an item of THE review queue
  (``store.review``, kind ``grade_review``), as support hand-offs do; any other is ``released``.
- A teacher decides (:meth:`Gradebook.decide`): ``accept`` the grade or ``override`` it (a new score,
  and/or points per criterion, from which the rubric's scale gives the score; a note). Each decision is
  audited: a record with the model, the rubric version, the evidence and the decision (as the support
  desk audits its approvals). A queue item decided through ``/v1/review`` instead: approve or dismiss
  accepts the grade; an answer is refused (an override needs a score).
- Instructions to the grader inside an answer never change a grade: the grader removes them (its
  ``findings``) and sends the grade to review.
"""

from __future__ import annotations

import dataclasses
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from clearlm.apps.classroom.gradebook_io import AnswerIn, grades_csv
from clearlm.apps.classroom.rubrics import Rubric
from clearlm.errors import ClearlmError, InvalidInputError
from clearlm.store.db import Database, as_utc
from clearlm.store.review import ReviewQueue
from clearlm.store.tables import GradeRow

GRADE_REVIEW = "grade_review"
STATUSES = ("released", "in_review", "overridden", "accepted")
ACTIONS = {"accept": "accepted", "override": "overridden"}
MAX_NOTE_CHARS = 10_000
MAX_LIST = 1000
_grading = threading.Lock()  # a grader's turns name its tenant: one grade at a time

Progress = Callable[[int, int], None]


class GradeNotFoundError(ClearlmError, LookupError):
    """No grade with that id in the caller's tenant."""

    status_code = 404
    error_type = "not_found_error"
    code = "grade_not_found"


class GradeDecidedError(ClearlmError):
    """The grade was accepted or overridden already (a grade is decided once)."""

    status_code = 409
    error_type = "conflict_error"
    code = "grade_decided"


@dataclass(frozen=True, slots=True)
class StoredGrade:
    """A grade as read back: ``score`` is the grader's, ``final_score`` the one that counts (the
    teacher's after an override); ``grade`` the Grade's JSON; ``decision`` {action, score, criteria,
    note} once decided."""

    id: str
    tenant: str
    rubric_id: str
    rubric_version: int
    answer_id: str
    learner: str
    answer: str
    score: int
    final_score: int
    confidence: float
    grade: dict
    status: str
    model: str
    grading_id: str
    review_id: str | None
    created_at: datetime
    decided_by: str | None = None
    decided_at: datetime | None = None
    decision: dict | None = None

    def points(self) -> dict[str, int]:
        """{criterion id: points}: the teacher's where they overrode a criterion, else the grader's."""
        given = {c["criterion_id"]: c["points"] for c in self.grade.get("criteria", [])}
        return {**given, **((self.decision or {}).get("criteria") or {})}

    def feedback(self) -> str:
        """Each criterion's feedback, one ``criterion: feedback`` per line."""
        return "\n".join(f"{c['criterion_id']}: {c['feedback']}" for c in self.grade.get("criteria", []))

    def to_dict(self) -> dict:
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        out["created_at"] = self.created_at.isoformat()
        out["decided_at"] = self.decided_at.isoformat() if self.decided_at else None
        out["grade"] = {k: v for k, v in self.grade.items() if k != "rubric"}
        return {"object": "classroom.grade", **out}


@dataclass(slots=True)
class BatchResult:
    """What a batch did: the grades made now, the answer ids skipped (graded before), the answers that
    could not be graded ({answer id: message})."""

    graded: list[StoredGrade]
    skipped: list[str]
    errors: dict[str, str]


def _stored(row: GradeRow) -> StoredGrade:
    values = {f.name: getattr(row, f.name) for f in dataclasses.fields(StoredGrade)}
    values.update(created_at=as_utc(row.created_at), decided_at=as_utc(row.decided_at))
    return StoredGrade(**values)


class Gradebook:
    """The grades held in ``db``, each within its tenant. ``grader``: a Grader (needed to grade, not to
    read or decide); ``policy``: how answer text is stored (None: as given); ``audit``: an AuditLog for
    the decision records (None: :meth:`decide` fills the ``record`` it is given, or audits nothing)."""

    def __init__(self, db: Database, grader=None, policy=None, audit=None) -> None:
        self.db, self.grader, self.policy, self.audit = db, grader, policy, audit

    def _store(self, text: str) -> str:
        return text if self.policy is None else self.policy.stored(text)

    def find(self, tenant: str, rubric: Rubric, answer_id: str) -> StoredGrade | None:
        """The grade of ``answer_id`` under this rubric version, or None."""
        query = select(GradeRow).where(
            GradeRow.tenant == tenant,
            GradeRow.rubric_id == rubric.id,
            GradeRow.rubric_version == rubric.version,
            GradeRow.answer_id == answer_id,
        )
        with self.db.session() as session:
            row = session.scalars(query).first()
            return _stored(row) if row is not None else None

    def grade(self, tenant: str, rubric: Rubric, answer: AnswerIn) -> tuple[StoredGrade, bool]:
        """Grade one answer (with evidence) and keep it; (the grade, True) or, when this rubric version
        graded that answer id before, (the stored grade, False) without a model call.

        Raises:
            GradingError: an answer over 20,000 characters. InvalidInputError: no grader was given.
        """
        found = self.find(tenant, rubric, answer.id)
        if found is not None:
            return found, False
        if self.grader is None:
            raise InvalidInputError("this gradebook has no grader: open it with a model to grade answers")
        with _grading:
            self.grader.reader.tenant = tenant  # the grader's turns join the tenant's audit chain
            g = self.grader.grade(rubric, answer.answer, evidence=True)
        data = dataclasses.asdict(g)
        data.pop("features", None)
        for c in data["criteria"]:
            c["probabilities"] = {str(k): v for k, v in c["probabilities"].items()}
            for span in c["evidence"]:
                span["text"] = self._store(span["text"])
        for f in data["findings"]:
            if "text" in f:
                f["text"] = self._store(f["text"])
        data["rubric"] = rubric.model_dump(mode="json")
        row = GradeRow(
            id="grd_" + secrets.token_hex(8),
            tenant=tenant,
            rubric_id=rubric.id,
            rubric_version=rubric.version,
            answer_id=answer.id,
            learner=answer.learner,
            answer=self._store(answer.answer),
            score=g.score,
            final_score=g.score,
            confidence=g.confidence,
            grade=data,
            status="in_review" if g.needs_review else "released",
            model=g.model,
            grading_id=g.grading_id,
            created_at=datetime.now(UTC),
        )
        if g.needs_review:
            title = f"{rubric.id} v{rubric.version} · {answer.learner}: {row.answer}"
            payload = {
                "grade_id": row.id,
                "rubric_id": rubric.id,
                "rubric_version": rubric.version,
                "answer_id": answer.id,
                "learner": answer.learner,
                "score": g.score,
                "confidence": g.confidence,
                "review_reasons": list(g.review_reasons),
            }
            item = ReviewQueue(self.db).add(tenant, GRADE_REVIEW, title, payload, request_id=g.grading_id)
            row.review_id = item.id
        try:
            with self.db.session.begin() as session:
                session.add(row)
        except IntegrityError:  # graded at the same time by another process: keep theirs
            if row.review_id:
                ReviewQueue(self.db).decide(row.review_id, tenant, "dismiss", "local", note="graded twice")
            return self.find(tenant, rubric, answer.id), False
        return _stored(row), True

    def grade_batch(
        self, tenant: str, rubric: Rubric, answers: list[AnswerIn], progress: Progress | None = None
    ) -> BatchResult:
        """Grade ``answers`` in order, skipping those this rubric version graded before; an answer the
        grader refuses (over-long) is listed in ``errors`` and the batch goes on."""
        result = BatchResult([], [], {})
        for n, answer in enumerate(answers, 1):
            try:
                stored, new = self.grade(tenant, rubric, answer)
                (result.graded.append(stored) if new else result.skipped.append(answer.id))
            except InvalidInputError as exc:
                result.errors[answer.id] = str(exc)
            if progress is not None:
                progress(n, len(answers))
        return result

    def get(self, grade_id: str, tenant: str) -> StoredGrade:
        """The grade ``grade_id`` of ``tenant`` (GradeNotFoundError: none there)."""
        with self.db.session() as session:
            row = session.get(GradeRow, grade_id)
            if row is None or row.tenant != tenant:
                raise GradeNotFoundError(
                    f"no grade with id {grade_id!r}: GET /v1/classroom/grades lists your tenant's grades"
                )
            return _stored(row)

    def list(
        self, tenant: str, rubric_id: str | None = None, status: str | None = None, limit: int = MAX_LIST
    ) -> list[StoredGrade]:
        """``tenant``'s grades (of ``rubric_id``, of ``status``), oldest first, at most ``limit``
        (InvalidInputError: an unknown status)."""
        if status is not None and status not in STATUSES:
            raise InvalidInputError(f"unknown grade status {status!r}: choose one of {', '.join(STATUSES)}")
        query = select(GradeRow).where(GradeRow.tenant == tenant)
        if rubric_id is not None:
            query = query.where(GradeRow.rubric_id == rubric_id)
        if status is not None:
            query = query.where(GradeRow.status == status)
        query = query.order_by(GradeRow.created_at, GradeRow.id).limit(limit)
        with self.db.session() as session:
            return [_stored(r) for r in session.scalars(query)]

    def export_csv(self, tenant: str, rubric_id: str) -> str:
        """CSV of the rubric's grades and feedback (``gradebook_io.grades_csv``), every version."""
        grades = self.list(tenant, rubric_id)
        criteria: list[str] = []
        for g in grades:
            criteria += [c for c in g.points() if c not in criteria]
        return grades_csv(grades, criteria)

    def decide(
        self,
        grade_id: str,
        tenant: str,
        action: str,
        by: str,
        score: int | None = None,
        criteria: dict[str, int] | None = None,
        note: str | None = None,
        record=None,
    ) -> StoredGrade:
        """A teacher's decision on a grade (released or in review): ``accept`` it, or ``override`` it
        with ``score`` (0-2) and/or ``criteria`` ({criterion id: points}, the others kept; the score is
        then the rubric's for the total, and a ``score`` given too must agree). ``by``: who (a key id or
        ``local``). The review item, if any, is decided with it. Audited: ``record`` (an AuditRecord, the
        API request's) is filled in, or a new ``classroom:grade_decision`` record written to ``audit``.

        Raises:
            InvalidInputError: an unknown action; an override without score or criteria; an accept with
                them; points that are no level of the rubric; a note over 10,000 characters.
            GradeNotFoundError (404). GradeDecidedError (409): accepted or overridden before.
        """
        return _decisions.decide(self, grade_id, tenant, action, by, score, criteria, note, record)


# the decisions (and the grade_review handler they register) need the names above
from clearlm.apps.classroom import gradebook_decisions as _decisions  # noqa: E402
