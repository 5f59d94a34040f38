"""The classroom's tutoring pages (issue 16): ``/classroom/practice`` (a signed-in learner: the tutor's
next item, hints one at a time, right or wrong with the worked solution, P(mastery) of each skill and the
reviews due), ``/classroom/class`` (admins: the class's mastery heatmap, learners x skills, sortable) and
``/classroom/class/{course}/learners/{learner}`` (admins: a learner's attempts and released grades), and
``/classroom/feedback`` (a signed-in learner: their released grades with feedback and evidence,
``static/classroom-feedback.js``). The pages are thin: their
scripts (``static/classroom-*.js``) read and write ``/v1/classroom`` (``server.classroom``); the learner a
person practises as is their key's id (``SignIn.user``: ``local`` with open access); the teacher's pages
show the key's name beside it."""

from __future__ import annotations

from typing import Annotated

import anyio
from fastapi import APIRouter, Depends, Path, Request

from clearlm.store.sessions import SignIn
from clearlm.web.pages import needs, render

router = APIRouter(include_in_schema=False)
CourseId = Annotated[str, Path(max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]*$")]
LearnerId = Annotated[str, Path(max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.@-]*$")]


async def _key_names(request: Request, tenant: str) -> dict[str, str]:
    """The name of each key of ``tenant`` by id (a learner practising in the web UI is named by key id)."""
    keys = await anyio.to_thread.run_sync(request.app.state.clearlm.keys.list, tenant)
    return {k.id: k.name for k in keys}


@router.get("/classroom/practice")
async def practice_page(request: Request, signin: Annotated[SignIn, Depends(needs("user"))]):
    return render(request, "classroom-practice.html", signin, learner=signin.user)


@router.get("/classroom/feedback")
async def feedback_page(request: Request, signin: Annotated[SignIn, Depends(needs("user"))]):
    return render(request, "classroom-feedback.html", signin, learner=signin.user)


@router.get("/classroom/class")
async def class_page(request: Request, signin: Annotated[SignIn, Depends(needs("admin"))]):
    names = await _key_names(request, signin.tenant)
    return render(request, "classroom-class.html", signin, names=names)


@router.get("/classroom/class/{course}/learners/{learner}")
async def learner_page(
    request: Request,
    course: CourseId,
    learner: LearnerId,
    signin: Annotated[SignIn, Depends(needs("admin"))],
):
    name = (await _key_names(request, signin.tenant)).get(learner)
    return render(request, "classroom-learner.html", signin, course=course, learner=learner, name=name)
