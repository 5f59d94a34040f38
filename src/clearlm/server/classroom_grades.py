"""/v1/classroom/grades: the teacher's gradebook over HTTP (``clearlm.apps.classroom.gradebook``; this
module only translates).

The rubrics are the YAML files in ``$CLEARLM_HOME/classroom/rubrics/`` (read again when one changes).
Grades belong to the caller's tenant. Routes:

- ``POST /v1/classroom/grades`` {rubric, answer_id, learner, answer}: grade one answer (with evidence),
  any key of the tenant; the answer graded before under that rubric version is answered from the
  gradebook (``created`` false) without a model call. Takes a generation slot (429 when none is free).
- ``GET /v1/classroom/grades?rubric=&status=&limit=`` the grades, oldest first (admin key).
- ``POST /v1/classroom/grades/{id}/decision`` {action: accept | override, score?, criteria?, note?}
  (admin key): 409 when decided before; the request's audit record holds the model, the rubric version,
  the evidence and the decision.
- ``GET /v1/classroom/grades.csv?rubric=`` the rubric's grades and feedback as CSV (admin key).

An unknown rubric or grade is 404; a bad rubric file, bad points or a bad override is 400 (OpenAI-style).
"""

from __future__ import annotations

import threading
import weakref
from pathlib import Path as FsPath
from typing import Annotated, Literal

import anyio
from fastapi import Path, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from clearlm.apps.classroom.gradebook import MAX_LIST, MAX_NOTE_CHARS, STATUSES, Gradebook
from clearlm.apps.classroom.gradebook_io import MAX_ID_CHARS, AnswerIn, check_answer
from clearlm.apps.classroom.grading import MAX_ANSWER_CHARS
from clearlm.apps.classroom.rubrics import ID, Rubric, load_rubrics
from clearlm.errors import ClearlmError
from clearlm.paths import clearlm_home
from clearlm.server.auth import tenant_of, user_of
from clearlm.server.protocol import _Request
from clearlm.server.routes import ADMIN, _error, api_router, state
from clearlm.server.serving import admit, policy_of

router = api_router()
_rubrics: dict[str, tuple[tuple, dict[str, Rubric]]] = {}
_graders: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # ServerState -> {policy id: Grader}
_lock = threading.Lock()

GradeId = Annotated[str, Path(max_length=32, description="The grade's id (grd_...).")]
RubricId = Annotated[str, Query(max_length=64, pattern=ID, description="The rubric's id.")]


class RubricNotFoundError(ClearlmError, LookupError):
    """No rubric by that id in the server's rubric folder."""

    status_code = 404
    error_type = "not_found_error"
    code = "rubric_not_found"


class GradeCreate(_Request):
    """One answer to grade under a rubric of the server's folder."""

    rubric: str = Field(max_length=64, pattern=ID, description="The rubric's id.")
    answer_id: str = Field(min_length=1, max_length=MAX_ID_CHARS, description="Your id for the answer.")
    learner: str = Field(min_length=1, max_length=MAX_ID_CHARS, description="Who wrote it.")
    answer: str = Field(max_length=MAX_ANSWER_CHARS, description="What the learner wrote.")


class GradeDecision(_Request):
    """A teacher's decision: ``accept`` the grade, or ``override`` it with ``score`` (0-2) and/or
    ``criteria`` ({criterion id: points}; the rubric's scale then gives the score)."""

    action: Literal["accept", "override"]
    score: int | None = Field(default=None, ge=0, le=2)
    criteria: dict[Annotated[str, Field(max_length=64)], Annotated[int, Field(ge=0, le=1000)]] | None = Field(
        default=None, max_length=64
    )
    note: str | None = Field(default=None, max_length=MAX_NOTE_CHARS, description="Why (audited).")


class GradeOut(BaseModel):
    """A stored grade: ``grade`` is the grader's JSON (criteria with levels, feedback and evidence spans
    {text, start, end, effect in points}; findings; review_reasons; ...)."""

    id: str
    object: Literal["classroom.grade"] = "classroom.grade"
    created: bool | None = None
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
    status: Literal["released", "in_review", "overridden", "accepted"]
    model: str
    grading_id: str
    review_id: str | None
    created_at: str
    decided_by: str | None
    decided_at: str | None
    decision: dict | None


class GradeList(BaseModel):
    object: Literal["list"] = "list"
    data: list[GradeOut]


def rubrics_folder() -> FsPath:
    """Where the server reads rubrics: ``$CLEARLM_HOME/classroom/rubrics``."""
    return clearlm_home() / "classroom" / "rubrics"


def rubrics() -> dict[str, Rubric]:
    """The folder's rubrics, loaded again when a file is added, removed or changed (RubricError)."""
    folder = rubrics_folder()
    files = sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")]) if folder.is_dir() else []
    signature = tuple((str(f), f.stat().st_mtime_ns, f.stat().st_size) for f in files)
    with _lock:
        cached = _rubrics.get(str(folder))
        if cached is None or cached[0] != signature:
            cached = (signature, load_rubrics(folder) if files else {})
            _rubrics[str(folder)] = cached
        return cached[1]


def _rubric(rubric_id: str) -> Rubric:
    found = rubrics().get(rubric_id)
    if found is None:
        raise RubricNotFoundError(f"no rubric {rubric_id!r}: rubric files go in {rubrics_folder()}")
    return found


def _grader(s, policy):
    """The server's grader for ``policy`` (made once: it loads the embedder and the scanner)."""
    from clearlm.apps.classroom.grading import Grader

    with _lock:
        per_state = _graders.setdefault(s, {})
        if id(policy) not in per_state:
            per_state[id(policy)] = Grader(s.backend, s.audit, policy)
        return per_state[id(policy)]


@router.post("/classroom/grades", response_model=GradeOut)
async def create_grade(request: Request, body: GradeCreate):
    s, record = state(request), request.state.audit_record
    tenant = tenant_of(request)
    rubric = await anyio.to_thread.run_sync(_rubric, body.rubric)
    fields = {"id": body.answer_id, "learner": body.learner, "answer": body.answer}
    answer: AnswerIn = check_answer(fields, "the request")
    record.parameters = {"rubric_id": rubric.id, "rubric_version": rubric.version, "answer_id": answer.id}
    policy = policy_of(request, s)
    book = Gradebook(s.db, policy=policy)
    found = await anyio.to_thread.run_sync(lambda: book.find(tenant, rubric, answer.id))
    if found is None:
        await admit(request, s)
        book.grader = await anyio.to_thread.run_sync(_grader, s, policy)
        found, created = await anyio.to_thread.run_sync(lambda: book.grade(tenant, rubric, answer))
    else:
        created = False
    record.model = found.model
    record.parameters.update(grade_id=found.id, grading_id=found.grading_id, created=created)
    record.output = {"score": found.score, "status": found.status, "confidence": found.confidence}
    return {**found.to_dict(), "created": created}


@router.get("/classroom/grades", response_model=GradeList, **ADMIN)
async def list_grades(
    request: Request,
    rubric: Annotated[str | None, Query(max_length=64, pattern=ID, description="Only this rubric's.")] = None,
    status: Annotated[
        Literal[STATUSES] | None,  # type: ignore[valid-type]
        Query(description="released, in_review, overridden or accepted."),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIST, description=f"At most this many, 1 to {MAX_LIST}.")] = 100,
):
    request.state.audit_record.parameters = {"rubric": rubric, "status": status, "limit": limit}
    book = Gradebook(state(request).db)
    grades = await anyio.to_thread.run_sync(lambda: book.list(tenant_of(request), rubric, status, limit))
    return {"data": [g.to_dict() for g in grades]}


@router.get(
    "/classroom/grades.csv",
    response_class=Response,
    responses={**ADMIN["responses"], 200: {"content": {"text/csv": {}}, "description": "The grades as CSV."}},
    dependencies=ADMIN["dependencies"],
)
async def export_grades(request: Request, rubric: RubricId):
    request.state.audit_record.parameters = {"rubric": rubric}
    book = Gradebook(state(request).db)
    text = await anyio.to_thread.run_sync(lambda: book.export_csv(tenant_of(request), rubric))
    headers = {"Content-Disposition": f'attachment; filename="{rubric}-grades.csv"'}
    return Response(text, media_type="text/csv; charset=utf-8", headers=headers)


@router.post(
    "/classroom/grades/{grade_id}/decision",
    response_model=GradeOut,
    responses={**ADMIN["responses"], 409: _error("The grade was decided already (a grade is decided once).")},
    dependencies=ADMIN["dependencies"],
)
async def decide_grade(grade_id: GradeId, body: GradeDecision, request: Request):
    """Accept or override a grade once; audited with the model, rubric version, evidence and decision."""
    s, record = state(request), request.state.audit_record
    book = Gradebook(s.db, policy=policy_of(request, s))
    decided = await anyio.to_thread.run_sync(
        lambda: book.decide(
            grade_id,
            tenant_of(request),
            body.action,
            user_of(request),
            score=body.score,
            criteria=body.criteria,
            note=body.note,
            record=record,
        )
    )
    return decided.to_dict()
