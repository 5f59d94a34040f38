"""``/review``: the review queue's page (admins). The items are read and decided through ``/v1/review``
by ``static/review.js``, which renders every text a request or a model wrote as text, never as HTML."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request

from clearlm.store.review import FILTERS
from clearlm.store.sessions import SignIn
from clearlm.web.pages import needs, render

router = APIRouter(include_in_schema=False)
Admin = Annotated[SignIn, Depends(needs("admin"))]


@router.get("/review")
async def review_page(request: Request, signin: Admin):
    return render(request, "review.html", signin, filters=FILTERS)
