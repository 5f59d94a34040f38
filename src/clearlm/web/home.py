"""The landing page: ``/`` opens the chat."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import RedirectResponse

router = APIRouter(include_in_schema=False)


@router.get("/")
async def home():
    return RedirectResponse("/chat", status_code=303)
