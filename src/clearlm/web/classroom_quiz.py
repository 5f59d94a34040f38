"""``/classroom/quizzes``: the teacher's quiz page (admins). Questions are written, read and decided
through ``/v1/classroom/quiz`` (``server.classroom_quiz``) by ``static/classroom-quizzes.js``: a form to
generate questions from one of the tenant's knowledge bases, then each pending question with its answer
key and the passage it cites (the quoted sentence marked), to approve (the question and key editable) or
reject. Every text a model or a document wrote is set as text, never as HTML."""

from __future__ import annotations

from typing import Annotated

import anyio
from fastapi import APIRouter, Depends, Request

from clearlm.apps.classroom.quiz import MAX_QUESTIONS
from clearlm.apps.classroom.quiz_store import STATUSES
from clearlm.knowledge import list_knowledge_bases
from clearlm.store.sessions import SignIn
from clearlm.web.pages import needs, render

router = APIRouter(include_in_schema=False)
Admin = Annotated[SignIn, Depends(needs("admin"))]


@router.get("/classroom/quizzes")
async def quizzes_page(request: Request, signin: Admin):
    s = request.app.state.clearlm
    bases = await anyio.to_thread.run_sync(lambda: list_knowledge_bases(store=s.kb_store(signin.tenant)))
    names = [b.name for b in bases]
    return render(
        request, "classroom-quizzes.html", signin, kbs=names, statuses=STATUSES, max_questions=MAX_QUESTIONS
    )
