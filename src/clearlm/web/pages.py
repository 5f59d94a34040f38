"""What every page shares: who is signed in, the scope a page needs, rendering a template.

A page is a GET route that renders a template with the signed-in person (``signin``) and the CSRF token
its scripts send back. Scripts change things through ``/v1`` (``static/app.js``'s ``api``).
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

import anyio
from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse
from fastapi.templating import Jinja2Templates

from clearlm import __version__
from clearlm.server.auth import SESSION_COOKIE
from clearlm.store.sessions import SignIn

templates = Jinja2Templates(directory=Path(__file__).with_name("templates"))
templates.env.globals["version"] = __version__

# The navigation: (path, label, scope needed).
NAV = [
    ("/chat", "Chat", "user"),
    ("/knowledge", "Knowledge", "user"),
    ("/classroom/practice", "Practice", "user"),
    ("/studio", "Studio", "user"),
    ("/governance", "Governance", "admin"),
    ("/audit", "Audit log", "admin"),
    ("/review", "Review queue", "admin"),
    ("/support", "Support desk", "admin"),
    ("/classroom/class", "Class mastery", "admin"),
    ("/classroom/grading", "Grading", "admin"),
    ("/classroom/quizzes", "Quizzes", "admin"),
    ("/keys", "API keys", "admin"),
    ("/models", "Models", "admin"),
    ("/adapters", "Adapters", "admin"),
]


class SignInNeeded(Exception):
    """The page needs a sign-in (or a scope the session lacks): the browser is sent to /signin."""

    def __init__(self, path: str) -> None:
        self.path = path


async def to_sign_in(request: Request, exc: SignInNeeded) -> RedirectResponse:
    return RedirectResponse("/signin?next=" + quote(exc.path, safe="/"), status_code=303)


async def current(request: Request) -> SignIn | None:
    """The session of the request's cookie, or None."""
    secret = request.cookies.get(SESSION_COOKIE)
    if not secret:
        return None
    return await anyio.to_thread.run_sync(request.app.state.clearlm.sessions.get, secret)


def needs(scope: str = "user"):
    """A dependency: the signed-in session, which must carry ``scope`` (else: to /signin)."""

    async def dependency(request: Request) -> SignIn:
        signin = await current(request)
        if signin is None or scope not in signin.scopes:
            raise SignInNeeded(request.url.path)
        return signin

    return dependency


def render(request: Request, template: str, signin: SignIn, **context):
    """The template rendered for ``signin`` (the navigation shows only what its scopes allow)."""
    nav = [(path, label) for path, label, scope in NAV if scope in signin.scopes]
    s = request.app.state.clearlm
    return templates.TemplateResponse(
        request,
        template,
        {"signin": signin, "nav": nav, "model_id": s.model_id, "csrf": signin.csrf, **context},
    )


def routers() -> list[APIRouter]:
    """Every page router (each feature's module has one)."""
    from clearlm.web import admin, audit, chat, governance, home, knowledge, review

    return [m.router for m in (home, chat, knowledge, governance, audit, review, admin)]
