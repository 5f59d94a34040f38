"""``/studio``: the writing studio's page (any signed-in user of the tenant). Everything is read and changed
through ``/v1/studio`` (``server.studio``) by ``static/studio.js``: the outline tree, the scene editor with
its operations (draft, continue, rewrite a selection, tone, check against the bible), the versions with
word diffs and restore, the bible, and the export links. Every text a person or a model wrote is set as
text, never as HTML."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request

from clearlm.apps.studio.bible import KINDS
from clearlm.store.sessions import SignIn
from clearlm.web.pages import needs, render

router = APIRouter(include_in_schema=False)
User = Annotated[SignIn, Depends(needs("user"))]
INSTRUCTIONS = ("shorter", "more formal", "in the first person", "more vivid", "simpler words")


@router.get("/studio")
async def studio_page(request: Request, signin: User):
    return render(request, "studio.html", signin, kinds=KINDS, instructions=INSTRUCTIONS)
