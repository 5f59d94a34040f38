"""The governance page (admins): the policy in force as YAML to edit and save (errors name the key), a
summary of its rules, and the scan playground. Its script (``static/governance.js``) reads and writes
through ``/v1/policy`` and ``/v1/scan``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request

from clearlm.store.sessions import SignIn
from clearlm.web.pages import needs, render

router = APIRouter(include_in_schema=False)


@router.get("/governance")
async def governance_page(request: Request, signin: Annotated[SignIn, Depends(needs("admin"))]):
    return render(request, "governance.html", signin)
