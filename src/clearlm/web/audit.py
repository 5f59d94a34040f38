"""The audit log page (admins): filter the tenant's records by time, key, status and endpoint, open one
(prompt, output, governance findings, its place in the hash chain), verify the chain, export JSONL. Its
script (``static/audit.js``) reads ``/v1/audit``, ``/v1/audit/{id}``, ``/v1/audit/verify`` and ``/v1/keys``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request

from clearlm.store.sessions import SignIn
from clearlm.web.pages import needs, render

router = APIRouter(include_in_schema=False)


@router.get("/audit")
async def audit_page(request: Request, signin: Annotated[SignIn, Depends(needs("admin"))]):
    return render(request, "audit.html", signin)
