"""Generated quiz questions kept for a teacher's approval (issue 16): ``classroom_quiz_runs`` and
``classroom_quiz_questions`` (migration 0012).

- :meth:`QuizBook.save` keeps a :class:`~clearlm.apps.classroom.quiz.QuizResult`: the run (with its drop
  counts) and each kept question as ``pending``, each an item of THE review queue (``store.review``, kind
  ``quiz_approval``) whose payload carries the question, the key and the cited passage.
- A teacher decides once (:meth:`QuizBook.decide`): ``approve`` (optionally editing the question and/or
  the key; the rubric is rebuilt from them) or ``reject``. Each decision is audited like a grade's
  (``gradebook_decisions``): the request's record is filled in, or a ``classroom:quiz_decision`` record is
  written, holding the question as generated, as approved, the citation and the decision.
- A ``quiz_approval`` item decided through ``/v1/review``: approve approves the question as it is, an
  answer approves it with the answer as the new key, dismiss rejects it.
- :meth:`QuizBook.export_rubrics` writes each approved question as a rubric YAML file
  (``rubrics.parse_rubric`` reads it back; ``clearlm classroom grade`` grades against it).
"""

from __future__ import annotations

import dataclasses
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import yaml
from sqlalchemy import select, update

from clearlm.apps.classroom.quiz import QuizResult
from clearlm.apps.classroom.quiz_checks import MAX_ANSWER_CHARS, MAX_QUESTION_CHARS, quiz_rubric, support
from clearlm.errors import ClearlmError, InvalidInputError
from clearlm.paths import write_text_atomic
from clearlm.store.db import Database, as_utc
from clearlm.store.review import ReviewItem, ReviewQueue, on_decision
from clearlm.store.tables import QuizQuestionRow, QuizRunRow

QUIZ_APPROVAL = "quiz_approval"
STATUSES = ("pending", "approved", "rejected")
ACTIONS = {"approve": "approved", "reject": "rejected"}
MAX_NOTE_CHARS = 10_000
MAX_LIST = 1000


class QuizQuestionNotFoundError(ClearlmError, LookupError):
    """No quiz question with that id in the caller's tenant."""

    status_code = 404
    error_type = "not_found_error"
    code = "quiz_question_not_found"


class QuizQuestionDecidedError(ClearlmError):
    """The question was approved or rejected already (a question is decided once)."""

    status_code = 409
    error_type = "conflict_error"
    code = "quiz_question_decided"


@dataclass(frozen=True, slots=True)
class StoredQuestion:
    """A question as read back: ``question`` and ``answer`` as they stand (the teacher's after an edit;
    ``decision["generated"]`` keeps the model's), ``rubric`` (a Rubric's JSON), ``citation`` {kb, path,
    title, heading, chunk_id, quote, start, end, passage}, ``support`` (0-1, the key's words found in the
    passage), ``status`` (pending, approved, rejected)."""

    id: str
    tenant: str
    run_id: str
    kb: str
    question: str
    answer: str
    rubric: dict
    citation: dict
    support: float
    status: str
    model: str
    review_id: str | None
    created_at: datetime
    decided_by: str | None = None
    decided_at: datetime | None = None
    decision: dict | None = None

    def to_dict(self) -> dict:
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        out["created_at"] = self.created_at.isoformat()
        out["decided_at"] = self.decided_at.isoformat() if self.decided_at else None
        return {"object": "classroom.quiz_question", **out}

    def rubric_yaml(self) -> str:
        """The question's rubric as YAML (the format ``rubrics.parse_rubric`` reads)."""
        return yaml.safe_dump(self.rubric, sort_keys=False, allow_unicode=True, width=100)


def _stored(row: QuizQuestionRow) -> StoredQuestion:
    values = {f.name: getattr(row, f.name) for f in dataclasses.fields(StoredQuestion)}
    values.update(created_at=as_utc(row.created_at), decided_at=as_utc(row.decided_at))
    return StoredQuestion(**values)


def _text(value: str | None, what: str, limit: int) -> str | None:
    if value is None:
        return None
    value = " ".join(value.split())
    if not value:
        raise InvalidInputError(f"the edited {what} is empty: write it, or leave it out to keep the model's")
    if len(value) > limit:
        raise InvalidInputError(f"the {what} is at most {limit} characters, got {len(value):,}")
    return value


class QuizBook:
    """The quiz questions held in ``db``, each within its tenant; ``audit``: an AuditLog for decision
    records (None: :meth:`decide` fills the ``record`` it is given, or audits nothing)."""

    def __init__(self, db: Database, audit=None) -> None:
        self.db, self.audit = db, audit

    def save(self, tenant: str, result: QuizResult, by: str = "local") -> list[StoredQuestion]:
        """Keep ``result`` (its run and its questions, each pending and queued for review); returns the
        questions as stored, in order."""
        now = datetime.now(UTC)
        run = QuizRunRow(
            id=result.run_id,
            tenant=tenant,
            kb=result.kb,
            topic=result.topic,
            requested=result.requested,
            tried=result.tried,
            kept=len(result.questions),
            dropped=result.dropped_counts,
            model=result.model,
            created_by=by,
            created_at=now,
        )
        rows = []
        queue = ReviewQueue(self.db)
        for i, q in enumerate(result.questions):
            qid = "qz_" + secrets.token_hex(8)
            rubric = quiz_rubric(qid, result.kb, q.question, q.answer).model_dump(mode="json")
            payload = {"question_id": qid, "question": q.question, "answer": q.answer, "citation": q.citation}
            item = queue.add(tenant, QUIZ_APPROVAL, f"{result.kb}: {q.question}", payload, result.run_id)
            rows.append(
                QuizQuestionRow(
                    id=qid,
                    tenant=tenant,
                    run_id=result.run_id,
                    kb=result.kb,
                    question=q.question,
                    answer=q.answer,
                    rubric=rubric,
                    citation=q.citation,
                    support=q.support,
                    status="pending",
                    model=result.model,
                    review_id=item.id,
                    created_at=now + timedelta(microseconds=i),  # listed in the run's order
                )
            )
        with self.db.session.begin() as session:
            session.add(run)
            session.flush()
            session.add_all(rows)
        return [_stored(r) for r in rows]

    def get(self, question_id: str, tenant: str) -> StoredQuestion:
        """The question ``question_id`` of ``tenant`` (QuizQuestionNotFoundError: none there)."""
        with self.db.session() as session:
            row = session.get(QuizQuestionRow, question_id)
            if row is None or row.tenant != tenant:
                raise QuizQuestionNotFoundError(
                    f"no quiz question with id {question_id!r}: `clearlm classroom quiz list` (or GET "
                    "/v1/classroom/quiz/questions) lists your tenant's questions"
                )
            return _stored(row)

    def list(
        self, tenant: str, status: str | None = None, kb: str | None = None, limit: int = MAX_LIST
    ) -> list[StoredQuestion]:
        """``tenant``'s questions (of ``status``, of the knowledge base ``kb``), oldest first, at most
        ``limit`` (InvalidInputError: an unknown status)."""
        if status is not None and status not in STATUSES:
            raise InvalidInputError(
                f"unknown question status {status!r}: choose one of {', '.join(STATUSES)}"
            )
        query = select(QuizQuestionRow).where(QuizQuestionRow.tenant == tenant)
        if status is not None:
            query = query.where(QuizQuestionRow.status == status)
        if kb is not None:
            query = query.where(QuizQuestionRow.kb == kb)
        query = query.order_by(QuizQuestionRow.created_at, QuizQuestionRow.id).limit(limit)
        with self.db.session() as session:
            return [_stored(r) for r in session.scalars(query)]

    def held_questions(self, tenant: str, kb: str) -> tuple[str, ...]:
        """The pending and approved questions of ``kb`` (a new generation drops near-duplicates of them)."""
        return tuple(q.question for q in self.list(tenant, kb=kb) if q.status != "rejected")

    def decide(
        self,
        question_id: str,
        tenant: str,
        action: str,
        by: str,
        question: str | None = None,
        answer: str | None = None,
        note: str | None = None,
        record=None,
    ) -> StoredQuestion:
        """A teacher's decision on a pending question: ``approve`` it (with ``question`` and/or
        ``answer`` edited, the rubric rebuilt from them) or ``reject`` it. ``by``: who (a key id or
        ``local``). The review item is decided with it. Audited: ``record`` (an AuditRecord, the API
        request's) is filled in, or a ``classroom:quiz_decision`` record written to ``audit``.

        Raises:
            InvalidInputError: an unknown action; an edit with reject; an empty or over-long edit or note.
            QuizQuestionNotFoundError (404). QuizQuestionDecidedError (409): decided before.
        """
        if action not in ACTIONS:
            raise InvalidInputError(f"unknown action {action!r}: choose approve or reject")
        if action == "reject" and (question is not None or answer is not None):
            raise InvalidInputError("reject takes no edits: approve with the question or key edited instead")
        if note is not None and len(note) > MAX_NOTE_CHARS:
            raise InvalidInputError(f"a note is at most {MAX_NOTE_CHARS:,} characters")
        question = _text(question, "question", MAX_QUESTION_CHARS)
        answer = _text(answer, "answer key", MAX_ANSWER_CHARS)
        current = self.get(question_id, tenant)
        if current.status != "pending":
            raise _decided(current)
        new_q, new_a = question or current.question, answer or current.answer
        edited = [f for f, new, old in (("question", new_q, current.question), ("answer", new_a, current.answer))
                  if new != old]  # fmt: skip
        decision = {
            "action": action,
            "note": note,
            "edited": edited,
            "generated": {"question": current.question, "answer": current.answer},
        }
        values = dict(status=ACTIONS[action], decided_by=by, decided_at=datetime.now(UTC), decision=decision)
        if edited:
            rubric = quiz_rubric(current.id, current.kb, new_q, new_a).model_dump(mode="json")
            share = round(support(new_a, current.citation.get("passage", "")), 4)
            values.update(question=new_q, answer=new_a, rubric=rubric, support=share)
        claim = (
            update(QuizQuestionRow)
            .where(QuizQuestionRow.id == question_id, QuizQuestionRow.status == "pending")
            .values(**values)
        )
        with self.db.session.begin() as session:
            if session.execute(claim).rowcount != 1:
                raise _decided(self.get(question_id, tenant))
        if current.review_id:
            queue = ReviewQueue(self.db)
            if queue.get(current.review_id, tenant).status == "open":
                queue.decide(current.review_id, tenant, "approve" if action == "approve" else "dismiss", by,
                             note=note)  # fmt: skip
        decided = self.get(question_id, tenant)
        self._audit(decided, by, record)
        return decided

    def _audit(self, q: StoredQuestion, by: str, record) -> None:
        if record is None and self.audit is None:
            return
        from clearlm.store import AuditRecord

        if record is None:
            record = AuditRecord(
                request_id=f"quiz-decision-{uuid.uuid4().hex[:20]}",
                created_at=datetime.now(UTC),
                endpoint="classroom:quiz_decision",
                api_key_id=None if by == "local" else by,
                tenant=q.tenant,
            )
        record.model = q.model
        record.parameters = {
            "question_id": q.id,
            "run_id": q.run_id,
            "kb": q.kb,
            "review_id": q.review_id,
            "citation": {k: v for k, v in q.citation.items() if k != "passage"},
        }
        record.prompt = (q.decision or {}).get("generated")
        record.output = {
            "status": q.status,
            "question": q.question,
            "answer": q.answer,
            "support": q.support,
            "decision": {k: v for k, v in (q.decision or {}).items() if k != "generated"},
        }
        if self.audit is not None and record.endpoint == "classroom:quiz_decision":
            self.audit.write(record)

    def export_rubrics(self, tenant: str, folder: str | Path, kb: str | None = None) -> list[Path]:
        """Write each approved question (of ``kb``) as ``folder/<question id>.yaml``, a rubric file that
        ``clearlm classroom grade`` reads; returns the paths written, oldest question first.

        Raises:
            InvalidInputError: ``folder`` cannot be made; no approved question (to approve one:
                ``clearlm classroom quiz approve ID``).
        """
        approved = self.list(tenant, "approved", kb)
        if not approved:
            where = f" of the knowledge base {kb!r}" if kb else ""
            raise InvalidInputError(
                f"no approved quiz question{where} to export: approve one with `clearlm classroom quiz "
                "approve ID` (or on the /classroom/quizzes page)"
            )
        folder = Path(folder)
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InvalidInputError(f"cannot make the folder {folder}: {exc.strerror}") from None
        paths = []
        for q in approved:
            path = folder / f"{q.id}.yaml"
            write_text_atomic(path, q.rubric_yaml())
            paths.append(path)
        return paths


def _decided(q: StoredQuestion) -> QuizQuestionDecidedError:
    return QuizQuestionDecidedError(
        f"the quiz question {q.id!r} was already {q.status} by {q.decided_by}: a question is decided once; "
        "reload"
    )


def _from_review(db: Database, item: ReviewItem) -> None:
    """A ``quiz_approval`` item decided through ``/v1/review``: approve approves the question as it is,
    an answer approves it with that answer as the key, dismiss rejects it (unless decided already)."""
    qid = item.payload.get("question_id")
    with db.session() as session:
        row = session.get(QuizQuestionRow, qid) if qid else None
        if row is None or row.tenant != item.tenant or row.status != "pending":
            return
    decision = item.decision or {}
    action = "reject" if item.status == "dismissed" else "approve"
    answer = decision.get("answer") if item.status == "answered" else None
    QuizBook(db).decide(qid, item.tenant, action, item.decided_by or "local", answer=answer,
                        note=decision.get("note"))  # fmt: skip


on_decision(QUIZ_APPROVAL, _from_review)
