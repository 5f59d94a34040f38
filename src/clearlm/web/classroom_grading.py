"""``/classroom/grading``: the teacher's grading page (admins). The grades are read and decided through
``/v1/classroom/grades`` (``server.classroom_grades``) by ``static/classroom-grading.js``: the review
queue's grades first, each answer shown with every criterion's evidence spans highlighted (their effect
in points), an accept / override form, and a link to the rubric's CSV. Every text a learner or a model
wrote is set as text, never as HTML."""

from __future__ import annotations

from typing import Annotated

import anyio
from fastapi import APIRouter, Depends, Request

from clearlm.apps.classroom.gradebook import STATUSES, Gradebook
from clearlm.store.sessions import SignIn
from clearlm.web.pages import needs, render

router = APIRouter(include_in_schema=False)
Admin = Annotated[SignIn, Depends(needs("admin"))]


@router.get("/classroom/grading")
async def grading_page(request: Request, signin: Admin):
    book = Gradebook(request.app.state.clearlm.db)
    grades = await anyio.to_thread.run_sync(book.list, signin.tenant)
    rubrics = sorted({g.rubric_id for g in grades})
    return render(request, "classroom-grading.html", signin, statuses=STATUSES, rubrics=rubrics)
