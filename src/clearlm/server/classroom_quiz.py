"""/v1/classroom/quiz: quiz questions from a knowledge base, approved by a teacher before use
(``clearlm.apps.classroom.quiz`` and ``quiz_store``; this module only translates). Admin keys only; the
questions and knowledge bases are the caller's tenant's. Routes:

- ``POST /v1/classroom/quiz/generate`` {kb, topic?, n (1-20), seed?}: write up to n questions from the
  knowledge base (one audited ``classroom:quiz`` turn per passage tried), keep them pending and queued for
  review (kind ``quiz_approval``); answers the run (tried, dropped counts) and the questions. Takes a
  generation slot (429 when none is free).
- ``GET /v1/classroom/quiz/questions?status=&kb=&limit=`` the questions, oldest first.
- ``POST /v1/classroom/quiz/questions/{id}/decision`` {action: approve | reject, question?, answer?, note?}:
  409 when decided before; the request's audit record holds the question as generated and as decided, the
  citation and the decision.
- ``GET /v1/classroom/quiz/questions/{id}/rubric.yaml``: an approved question's rubric file.

An unknown knowledge base or question is 404; an empty knowledge base, n out of range or a bad edit 400.
"""

from __future__ import annotations

from typing import Annotated, Literal

import anyio
from fastapi import Path, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from clearlm.apps.classroom.quiz import (
    MAX_QUESTIONS,
    MAX_TOPIC_CHARS,
    QuizGenerator,
    check_n,
    check_topic,
    pick_passages,
)
from clearlm.apps.classroom.quiz_checks import MAX_ANSWER_CHARS, MAX_QUESTION_CHARS
from clearlm.apps.classroom.quiz_store import MAX_LIST, MAX_NOTE_CHARS, STATUSES, QuizBook
from clearlm.errors import InvalidInputError
from clearlm.server.auth import tenant_of, user_of
from clearlm.server.knowledge import open_kb
from clearlm.server.protocol import _Request
from clearlm.server.routes import ADMIN, _error, api_router, state
from clearlm.server.serving import admit, policy_of

router = api_router()
QuestionId = Annotated[str, Path(max_length=32, description="The question's id (qz_...).")]
KB_NAME = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"


class QuizGenerate(_Request):
    """What to write questions from: a knowledge base of the tenant, an optional topic, how many."""

    kb: str = Field(pattern=KB_NAME, max_length=64, description="The knowledge base's name.")
    topic: str | None = Field(default=None, max_length=MAX_TOPIC_CHARS, description="What they are about.")
    n: int = Field(
        default=5, ge=1, le=MAX_QUESTIONS, description=f"How many questions, 1 to {MAX_QUESTIONS}."
    )
    seed: int = Field(default=0, ge=0, le=2**31, description="The order passages are tried in (no topic).")


class QuizDecision(_Request):
    """A teacher's decision: ``approve`` (``question`` and/or ``answer`` edited, if given) or ``reject``."""

    action: Literal["approve", "reject"]
    question: str | None = Field(default=None, max_length=MAX_QUESTION_CHARS)
    answer: str | None = Field(default=None, max_length=MAX_ANSWER_CHARS)
    note: str | None = Field(default=None, max_length=MAX_NOTE_CHARS, description="Why (audited).")


class QuestionOut(BaseModel):
    """A stored question: ``rubric`` a rubric's JSON (the ``clearlm classroom grade`` format);
    ``citation`` {kb, path, title, heading, chunk_id, quote, start, end, passage}."""

    id: str
    object: Literal["classroom.quiz_question"] = "classroom.quiz_question"
    tenant: str
    run_id: str
    kb: str
    question: str
    answer: str
    rubric: dict
    citation: dict
    support: float
    status: Literal["pending", "approved", "rejected"]
    model: str
    review_id: str | None
    created_at: str
    decided_by: str | None
    decided_at: str | None
    decision: dict | None


class QuestionList(BaseModel):
    object: Literal["list"] = "list"
    data: list[QuestionOut]


class QuizRunOut(BaseModel):
    """A generation: passages ``tried``, questions ``kept``, ``dropped`` {reason: count}, the questions."""

    id: str
    object: Literal["classroom.quiz_run"] = "classroom.quiz_run"
    kb: str
    topic: str | None
    requested: int
    tried: int
    kept: int
    dropped: dict[str, int]
    model: str
    questions: list[QuestionOut]


def _generate(s, tenant: str, by: str, body: QuizGenerate, policy):
    book = QuizBook(s.db)
    generator = QuizGenerator(s.backend, s.audit, policy, None if by == "local" else by, tenant)
    with open_kb(s, body.kb, tenant) as kb:
        result = generator.generate(kb, body.n, body.topic, body.seed, book.held_questions(tenant, body.kb))
    return result, book.save(tenant, result, by)


@router.post("/classroom/quiz/generate", response_model=QuizRunOut, **ADMIN)
async def generate_quiz(request: Request, body: QuizGenerate):
    """Write up to n questions from a knowledge base, pending a teacher's approval."""
    s, record = state(request), request.state.audit_record
    tenant = tenant_of(request)
    topic = check_topic(body.topic)
    record.parameters = {"kb": body.kb, "topic": topic, "n": body.n, "seed": body.seed}
    check_n(body.n)

    def check() -> None:  # an unknown or empty knowledge base answers before a slot is taken
        with open_kb(s, body.kb, tenant) as kb:
            pick_passages(kb, body.n, topic, body.seed)

    await anyio.to_thread.run_sync(check)
    await admit(request, s)
    policy = await anyio.to_thread.run_sync(policy_of, request, s)
    result, stored = await anyio.to_thread.run_sync(_generate, s, tenant, user_of(request), body, policy)
    record.model = result.model
    record.output = {"run_id": result.run_id, "tried": result.tried, "kept": len(stored),
                     "dropped": result.dropped_counts, "questions": [q.id for q in stored]}  # fmt: skip
    return {
        "id": result.run_id,
        "kb": result.kb,
        "topic": result.topic,
        "requested": result.requested,
        "tried": result.tried,
        "kept": len(stored),
        "dropped": result.dropped_counts,
        "model": result.model,
        "questions": [q.to_dict() for q in stored],
    }


@router.get("/classroom/quiz/questions", response_model=QuestionList, **ADMIN)
async def list_questions(
    request: Request,
    status: Annotated[
        Literal[STATUSES] | None,  # type: ignore[valid-type]
        Query(description="pending, approved or rejected."),
    ] = None,
    kb: Annotated[str | None, Query(max_length=64, pattern=KB_NAME, description="Only this KB's.")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIST, description=f"At most this many, 1 to {MAX_LIST}.")] = 100,
):
    request.state.audit_record.parameters = {"status": status, "kb": kb, "limit": limit}
    book = QuizBook(state(request).db)
    questions = await anyio.to_thread.run_sync(lambda: book.list(tenant_of(request), status, kb, limit))
    return {"data": [q.to_dict() for q in questions]}


@router.post(
    "/classroom/quiz/questions/{question_id}/decision",
    response_model=QuestionOut,
    responses={**ADMIN["responses"], 409: _error("The question was decided already (it is decided once).")},
    dependencies=ADMIN["dependencies"],
)
async def decide_question(question_id: QuestionId, body: QuizDecision, request: Request):
    """Approve (optionally edited) or reject a question once; audited."""
    s, record = state(request), request.state.audit_record
    book = QuizBook(s.db)
    decided = await anyio.to_thread.run_sync(
        lambda: book.decide(
            question_id,
            tenant_of(request),
            body.action,
            user_of(request),
            question=body.question,
            answer=body.answer,
            note=body.note,
            record=record,
        )
    )
    return decided.to_dict()


@router.get(
    "/classroom/quiz/questions/{question_id}/rubric.yaml",
    response_class=Response,
    responses={
        **ADMIN["responses"],
        200: {"content": {"application/yaml": {}}, "description": "The rubric."},
    },
    dependencies=ADMIN["dependencies"],
)
async def question_rubric(question_id: QuestionId, request: Request):
    request.state.audit_record.parameters = {"question_id": question_id}
    q = await anyio.to_thread.run_sync(QuizBook(state(request).db).get, question_id, tenant_of(request))
    if q.status != "approved":
        raise InvalidInputError(
            f"the question {q.id!r} is {q.status}: only an approved question has a rubric file"
        )
    headers = {"Content-Disposition": f'attachment; filename="{q.id}.yaml"'}
    return Response(q.rubric_yaml(), media_type="application/yaml; charset=utf-8", headers=headers)
