"""/v1/classroom: the chat tutor and the learner's released grades over HTTP
(``clearlm.apps.classroom.tutor_chat`` and ``feedback``; this module only translates).

- ``POST /v1/classroom/courses/{course}/learners/{learner}/chat`` {question, item_id?, hints_seen?}: an
  answer from the course's knowledge base with citations (a ``CitedAnswer`` dict), or, when it would give
  the open item's answer away, a hint-style nudge (``leaked`` true, ``hint_index`` the hint it gives). Any
  key of the tenant (as for attempts); takes a generation slot (429 when none is free). 404: an unknown
  course, or the course's knowledge base missing in the tenant; 400: a course without a knowledge base,
  an empty question, an unknown item.
- ``GET /v1/classroom/courses/{course}/learners/{learner}/chat?limit=`` the learner's turns, oldest first.
- ``GET /v1/classroom/learners/{learner}/grades?limit=`` the learner's released grades, newest first
  (``feedback.learner_view``: per criterion the level, points, feedback and evidence spans). A user key
  reads its own (``learner`` is its key id, as on the practice page); an admin key any learner's of its
  tenant; anything else is 403.
"""

from __future__ import annotations

from typing import Annotated, Literal

import anyio
from fastapi import Query, Request
from pydantic import BaseModel, Field

from clearlm.apps.classroom.feedback import learner_view, released_grades
from clearlm.apps.classroom.tutor_chat import MAX_HISTORY, MAX_QUESTION_CHARS, TutorChat
from clearlm.server.auth import tenant_of, user_of
from clearlm.server.classroom import CourseId, LearnerId, _tutor
from clearlm.server.errors import PermissionDeniedError
from clearlm.server.knowledge import open_kb
from clearlm.server.protocol import _Request
from clearlm.server.routes import api_router, state
from clearlm.server.serving import admit, policy_of

router = api_router()


class ChatCreate(_Request):
    """A learner's question to the course's tutor."""

    question: str = Field(min_length=1, max_length=MAX_QUESTION_CHARS, description="What the learner asks.")
    item_id: str | None = Field(default=None, max_length=64, description="The item open on their page.")
    hints_seen: int = Field(default=0, ge=0, le=100, description="Hints of that item already seen.")


class ChatTurnOut(BaseModel):
    """One exchange: ``citations`` is a CitedAnswer dict (``knowledge/answer.py``), null for a nudge."""

    id: str
    object: Literal["classroom.chat_turn"] = "classroom.chat_turn"
    question: str
    reply: str
    citations: dict | None
    item_id: str | None
    leaked: bool
    hint_index: int | None
    knowledge_base: str
    model: str
    request_ids: list[str]
    created_at: str


class ChatList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ChatTurnOut]


class EvidenceOut(BaseModel):
    text: str
    start: int
    end: int
    effect: float


class CriterionOut(BaseModel):
    criterion_id: str
    description: str
    level: str
    points: int
    max_points: int
    feedback: str
    changed_by_teacher: bool
    evidence: list[EvidenceOut]


class LearnerGradeOut(BaseModel):
    """A released grade as its learner sees it (no confidence, review reasons or teacher's note)."""

    id: str
    object: Literal["classroom.learner_grade"] = "classroom.learner_grade"
    rubric_id: str
    rubric_version: int
    subject: str
    question: str
    answer_id: str
    answer: str
    score: int
    max_score: int
    points: int
    max_points: int
    status: Literal["released", "accepted", "overridden"]
    changed_by_teacher: bool
    instructions_removed: int
    created_at: str
    decided_at: str | None
    criteria: list[CriterionOut]


class LearnerGradeList(BaseModel):
    object: Literal["list"] = "list"
    data: list[LearnerGradeOut]


def _chat(request: Request, course_id: str) -> TutorChat:
    s = state(request)
    tutor = _tutor(request, course_id)
    key = getattr(request.state, "api_key", None)
    return TutorChat(
        tutor,
        s.backend,
        s.audit,
        policy_of(request, s),
        open_kb=lambda tenant, name: open_kb(s, name, tenant),
        api_key_id=key.id if key is not None else None,
    )


@router.post("/classroom/courses/{course_id}/learners/{learner}/chat", response_model=ChatTurnOut)
async def ask(request: Request, course_id: CourseId, learner: LearnerId, body: ChatCreate):
    """Ask the course's tutor; the answer cites the knowledge base, and never gives the open item away."""
    chat = await anyio.to_thread.run_sync(_chat, request, course_id)
    record = request.state.audit_record
    record.parameters = {"course": course_id, "learner": learner, "item_id": body.item_id}
    await admit(request, state(request))
    tenant = tenant_of(request)
    turn = await anyio.to_thread.run_sync(
        lambda: chat.ask(tenant, learner, body.question, body.item_id, body.hints_seen)
    )
    record.model = turn.model
    record.parameters.update(chat_turn_id=turn.id, request_ids=turn.request_ids, leaked=turn.leaked)
    return turn.to_dict()


@router.get("/classroom/courses/{course_id}/learners/{learner}/chat", response_model=ChatList)
async def chat_history(
    request: Request,
    course_id: CourseId,
    learner: LearnerId,
    limit: Annotated[int, Query(ge=1, le=MAX_HISTORY, description="The newest this many turns.")] = 50,
):
    chat = await anyio.to_thread.run_sync(_chat, request, course_id)
    turns = await anyio.to_thread.run_sync(chat.history, tenant_of(request), learner, limit)
    return {"data": [t.to_dict() for t in turns]}


@router.get("/classroom/learners/{learner}/grades", response_model=LearnerGradeList)
async def learner_grades(
    request: Request,
    learner: LearnerId,
    limit: Annotated[int, Query(ge=1, le=1000, description="At most this many, newest first.")] = 100,
):
    """A learner's released grades with feedback and evidence: their own (user key) or any (admin)."""
    if "admin" not in getattr(request.state, "scopes", ()) and learner != user_of(request):
        raise PermissionDeniedError(
            "a user key reads its own grades only (the learner id is the key's id): ask a teacher with an "
            "admin key for another learner's"
        )
    request.state.audit_record.parameters = {"learner": learner, "limit": limit}
    grades = await anyio.to_thread.run_sync(
        released_grades, state(request).db, tenant_of(request), learner, limit
    )
    return {"data": [learner_view(g) for g in grades]}
