"""Signing in and out of the web UI.

With API keys configured, a person signs in with one (``POST /signin``): the server checks it, starts a
session (``store.sessions``) and sets an HttpOnly, SameSite=Strict cookie; the key itself is never kept in
the browser. A server with no keys (open access, for a local server) signs the browser in at once. The
form posts are checked against the request's ``Origin`` (a cross-site sign-in or sign-out is refused).
"""

from __future__ import annotations

from typing import Annotated

import anyio
from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse

from clearlm.server.auth import SESSION_COOKIE
from clearlm.store.sessions import SESSION_HOURS
from clearlm.web.pages import NAV, current, templates

router = APIRouter(include_in_schema=False)


def _safe_next(path: str | None) -> str:
    """Only a path on this server (never ``//other.site`` or a full URL)."""
    if not path or not path.startswith("/") or path.startswith("//") or "\\" in path:
        return "/chat"
    return path


def _same_origin(request: Request) -> bool:
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return origin is None
    host = request.headers.get("host", "")
    return origin.split("://", 1)[-1] == host


def _signed_in(request: Request, secret: str, to: str) -> RedirectResponse:
    response = RedirectResponse(to, status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        secret,
        max_age=int(SESSION_HOURS * 3600),
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/",
    )
    return response


@router.get("/signin")
async def sign_in_page(request: Request, next: str | None = None):
    s = request.app.state.clearlm
    to = _safe_next(next)
    signin = await current(request)
    needed = [scope for path, _, scope in NAV if to.startswith(path)] or ["user"]
    if signin is not None and needed[0] in signin.scopes:
        return RedirectResponse(to, status_code=303)
    if signin is not None:  # signed in without the scope that page needs: ask for another key (no loop)
        error = (
            f"{to} needs an {needed[0]} key and you are signed in with a user key: sign in with an admin key"
        )
        return templates.TemplateResponse(
            request, "signin.html", {"next": to, "error": error}, status_code=403
        )
    if not await anyio.to_thread.run_sync(s.keys.any):  # open access: nothing to ask
        secret, _ = await anyio.to_thread.run_sync(s.sessions.create, None)
        return _signed_in(request, secret, to)
    return templates.TemplateResponse(request, "signin.html", {"next": to, "error": None})


@router.post("/signin")
async def sign_in(
    request: Request, key: Annotated[str, Form(max_length=256)] = "", next: str = Form("/chat")
):
    s = request.app.state.clearlm
    to = _safe_next(next)
    error = None
    if not _same_origin(request):
        error = "this sign-in came from another site: open this server's own page and sign in there"
    elif not key.strip():
        error = "enter your API key (it starts with sk-clearlm-): an admin makes one with clearlm keys create"
    else:
        api_key = await anyio.to_thread.run_sync(s.keys.verify, key.strip())
        if api_key is None:
            error = "that API key is not valid (unknown or revoked): check it, or ask an admin for a new one"
        else:
            secret, _ = await anyio.to_thread.run_sync(s.sessions.create, api_key)
            return _signed_in(request, secret, to)
    return templates.TemplateResponse(
        request, "signin.html", {"next": to, "error": error}, status_code=401 if key.strip() else 400
    )


@router.post("/signout")
async def sign_out(request: Request, csrf: str = Form("")):
    s = request.app.state.clearlm
    signin = await current(request)
    if signin is not None and csrf == signin.csrf and _same_origin(request):
        await anyio.to_thread.run_sync(s.sessions.delete, request.cookies[SESSION_COOKIE])
    response = RedirectResponse("/signin", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response
