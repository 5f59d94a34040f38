"""Mounting the web UI on the API's FastAPI app: the page routers, the static files, the security headers."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from clearlm.web import (
    adapters,
    adapters_compare,
    classroom,
    classroom_grading,
    classroom_quiz,
    pages,
    signin,
    studio,
    support,
)
from clearlm.web.security import SecurityHeaders

STATIC = Path(__file__).with_name("static")


def install(app: FastAPI) -> None:
    """Serve the web UI from ``app``: pages at ``/``, assets at ``/static``."""
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.include_router(signin.router)
    app.include_router(support.router)  # the support desk's pages (issue 15)
    app.include_router(classroom.router)  # the classroom's tutoring pages (issue 16)
    app.include_router(classroom_grading.router)  # the teacher's grading page (issue 16)
    app.include_router(classroom_quiz.router)  # the teacher's quiz approval page (issue 16)
    app.include_router(studio.router)  # the writing studio (issue 17)
    app.include_router(adapters.router)  # LoRA adapters' cards and reports (issue 19)
    app.include_router(adapters_compare.router)  # an adapter's attribution against its base (issue 19)
    for router in pages.routers():
        app.include_router(router)
    app.add_exception_handler(pages.SignInNeeded, pages.to_sign_in)
    app.add_middleware(SecurityHeaders)
