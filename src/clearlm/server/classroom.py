"""/v1/classroom: the tutor over HTTP (``clearlm.apps.classroom.tutor``; this module only translates).

The courses are the YAML files in ``$CLEARLM_HOME/classroom/`` (``clearlm.apps.classroom.items``; read
again when a file changes). Learners belong to the caller's tenant and are named by the caller (an LMS id,
a user name); any key of the tenant may practise. Routes, under ``/v1/classroom/courses``:

- ``GET /`` the courses (id, title, skills, item count);
- ``GET /{course}/learners/{learner}/next`` the item to practise now (a due review first, else the skill
  at the edge of mastery), with its question and hints, never its answer; ``item`` null when all is
  mastered and nothing is due;
- ``POST /{course}/learners/{learner}/attempts`` an answer: right or not, the expected answer and worked
  solution, P(mastery) of every skill, the item's next review;
- ``GET /{course}/learners/{learner}/progress`` P(mastery) per skill, the mastered skills, the reviews;
- ``GET /{course}/mastery`` (admins) the class: every learner's P(mastery) per skill (``roster.py``);
- ``GET /{course}/learners/{learner}/attempts`` (admins) the learner's logged attempts, newest first.

An unknown course is 404; an unknown item, a bad hint count or a bad course file is 400 (OpenAI-style).
"""

from __future__ import annotations

import threading
from datetime import datetime
from pathlib import Path as FsPath
from typing import Annotated, Literal

import anyio
from fastapi import Depends, Path, Request
from pydantic import BaseModel, Field

from clearlm.apps.classroom import roster
from clearlm.apps.classroom.items import Course, load_courses
from clearlm.apps.classroom.tutor import MAX_ANSWER_CHARS, NextItem, Tutor
from clearlm.errors import ClearlmError
from clearlm.paths import clearlm_home
from clearlm.server.auth import require_admin, tenant_of
from clearlm.server.protocol import _Request
from clearlm.server.routes import api_router, state

router = api_router()
_cache: dict[str, tuple[tuple, dict[str, Course]]] = {}
_lock = threading.Lock()

CourseId = Annotated[str, Path(max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]*$")]
LearnerId = Annotated[
    str,
    Path(max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.@-]*$", description="The caller's name for them."),
]


class CourseNotFoundError(ClearlmError, LookupError):
    """No course by that id in the server's course folder."""

    status_code = 404
    error_type = "not_found_error"
    code = "course_not_found"


class SkillOut(BaseModel):
    id: str
    name: str


class CourseOut(BaseModel):
    id: str
    object: Literal["classroom.course"] = "classroom.course"
    title: str
    mastery_threshold: float
    skills: list[SkillOut]
    n_items: int
    knowledge_base: str | None = None  # the chat tutor's (POST .../learners/{learner}/chat); None: no tutor


class CourseList(BaseModel):
    object: Literal["list"] = "list"
    data: list[CourseOut]


class ItemOut(BaseModel):
    """An item as a learner sees it: no answer, no solution (those come with the attempt's result)."""

    id: str
    question: str
    skills: list[str]
    hints: list[str]


class NextItemOut(BaseModel):
    """``reason``: review (a due review, since ``due``), practice (for ``skill``), or done (``item`` null)."""

    object: Literal["classroom.next_item"] = "classroom.next_item"
    reason: Literal["review", "practice", "done"]
    skill: str | None
    due: str | None
    item: ItemOut | None


class AttemptCreate(_Request):
    """A learner's answer to an item."""

    item_id: str = Field(max_length=64, description="The item answered.")
    answer: str = Field(max_length=MAX_ANSWER_CHARS, description="What the learner wrote.")
    hints_used: int = Field(default=0, ge=0, le=100, description="Hints seen before answering.")
    seconds: float | None = Field(default=None, ge=0, le=86_400, description="Time taken, seconds.")


class AttemptOut(BaseModel):
    object: Literal["classroom.attempt"] = "classroom.attempt"
    item_id: str
    correct: bool
    expected: str
    solution: str
    mastery: dict[str, float]
    next_review: str


class ReviewOut(BaseModel):
    item_id: str
    due: str


class ProgressOut(BaseModel):
    object: Literal["classroom.progress"] = "classroom.progress"
    mastery: dict[str, float]
    mastered: list[str]
    reviews: list[ReviewOut]


def courses_folder() -> FsPath:
    """Where the server reads courses: ``$CLEARLM_HOME/classroom``."""
    return clearlm_home() / "classroom"


def courses() -> dict[str, Course]:
    """The folder's courses, loaded again when a file is added, removed or changed (CourseError: a bad
    file)."""
    folder = courses_folder()
    files = sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")]) if folder.is_dir() else []
    signature = tuple((str(f), f.stat().st_mtime_ns, f.stat().st_size) for f in files)
    with _lock:
        cached = _cache.get(str(folder))
        if cached is None or cached[0] != signature:
            cached = (signature, load_courses(folder) if files else {})
            _cache[str(folder)] = cached
        return cached[1]


def _tutor(request: Request, course_id: str) -> Tutor:
    found = courses().get(course_id)
    if found is None:
        raise CourseNotFoundError(
            f"no course {course_id!r}; GET /v1/classroom/courses lists them (course files go in "
            f"{courses_folder()})"
        )
    return Tutor(state(request).db, found)


def _iso(when: datetime | None) -> str | None:
    return when.isoformat() if when is not None else None


@router.get("/classroom/courses", response_model=CourseList)
async def list_courses():
    found = await anyio.to_thread.run_sync(courses)
    data = [
        CourseOut(
            id=c.id,
            title=c.title,
            mastery_threshold=c.mastery_threshold,
            skills=[SkillOut(id=s.id, name=s.name) for s in c.skills],
            n_items=len(c.items),
            knowledge_base=c.knowledge_base,
        )
        for c in found.values()
    ]
    return CourseList(data=data)


@router.get("/classroom/courses/{course_id}/learners/{learner}/next", response_model=NextItemOut)
async def next_item(request: Request, course_id: CourseId, learner: LearnerId):
    tutor = await anyio.to_thread.run_sync(_tutor, request, course_id)
    nxt: NextItem | None = await anyio.to_thread.run_sync(tutor.next_item, tenant_of(request), learner)
    if nxt is None:
        return NextItemOut(reason="done", skill=None, due=None, item=None)
    item = ItemOut(
        id=nxt.item.id, question=nxt.item.question, skills=list(nxt.item.skills), hints=list(nxt.item.hints)
    )
    return NextItemOut(reason=nxt.reason, skill=nxt.skill, due=_iso(nxt.due), item=item)


@router.post("/classroom/courses/{course_id}/learners/{learner}/attempts", response_model=AttemptOut)
async def attempt(request: Request, course_id: CourseId, learner: LearnerId, body: AttemptCreate):
    tutor = await anyio.to_thread.run_sync(_tutor, request, course_id)
    tenant = tenant_of(request)
    result = await anyio.to_thread.run_sync(
        lambda: tutor.attempt(
            tenant, learner, body.item_id, body.answer, hints_used=body.hints_used, seconds=body.seconds
        )
    )
    return AttemptOut(
        item_id=result.item_id,
        correct=result.correct,
        expected=result.expected,
        solution=result.solution,
        mastery=result.mastery,
        next_review=result.next_review.isoformat(),
    )


@router.get("/classroom/courses/{course_id}/learners/{learner}/progress", response_model=ProgressOut)
async def progress(request: Request, course_id: CourseId, learner: LearnerId):
    tutor = await anyio.to_thread.run_sync(_tutor, request, course_id)
    tenant = tenant_of(request)
    mastery = await anyio.to_thread.run_sync(tutor.mastery, tenant, learner)
    due = await anyio.to_thread.run_sync(tutor.due_reviews, tenant, learner)
    threshold = tutor.course.mastery_threshold
    return ProgressOut(
        mastery=mastery,
        mastered=[s for s, p in mastery.items() if p >= threshold],
        reviews=[ReviewOut(item_id=i, due=d.isoformat()) for i, d in sorted(due.items(), key=lambda x: x[1])],
    )


class LearnerMasteryOut(BaseModel):
    learner: str
    mastery: dict[str, float]
    attempts: int
    last_attempt: str | None


class ClassMasteryOut(BaseModel):
    """The class's heatmap: a row per learner who attempted an item of the course, by name."""

    object: Literal["classroom.class_mastery"] = "classroom.class_mastery"
    course: str
    mastery_threshold: float
    skills: list[SkillOut]
    learners: list[LearnerMasteryOut]


class LoggedAttemptOut(BaseModel):
    item_id: str
    answer: str
    correct: bool
    hints_used: int
    seconds: float | None
    created_at: str


class AttemptList(BaseModel):
    object: Literal["list"] = "list"
    data: list[LoggedAttemptOut]


@router.get(
    "/classroom/courses/{course_id}/mastery",
    response_model=ClassMasteryOut,
    dependencies=[Depends(require_admin)],
)
async def class_mastery(request: Request, course_id: CourseId):
    tutor = await anyio.to_thread.run_sync(_tutor, request, course_id)
    rows = await anyio.to_thread.run_sync(roster.class_mastery, tutor, tenant_of(request))
    c = tutor.course
    return ClassMasteryOut(
        course=c.id,
        mastery_threshold=c.mastery_threshold,
        skills=[SkillOut(id=s.id, name=s.name) for s in c.skills],
        learners=[
            LearnerMasteryOut(
                learner=r.learner, mastery=r.mastery, attempts=r.attempts, last_attempt=_iso(r.last_attempt)
            )
            for r in rows
        ],
    )


@router.get(
    "/classroom/courses/{course_id}/learners/{learner}/attempts",
    response_model=AttemptList,
    dependencies=[Depends(require_admin)],
)
async def list_attempts(request: Request, course_id: CourseId, learner: LearnerId):
    tutor = await anyio.to_thread.run_sync(_tutor, request, course_id)
    rows = await anyio.to_thread.run_sync(roster.attempts_of, tutor, tenant_of(request), learner)
    return AttemptList(
        data=[
            LoggedAttemptOut(
                item_id=a.item_id,
                answer=a.answer,
                correct=a.correct,
                hints_used=a.hints_used,
                seconds=a.seconds,
                created_at=a.created_at.isoformat(),
            )
            for a in rows
        ]
    )
