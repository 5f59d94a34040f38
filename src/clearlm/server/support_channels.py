"""The support desk's channels besides its REST API: the chat widget's script at ``GET
/support/widget.js`` (one tag embeds it in any page), CORS on the support routes for the origins of
``ServerConfig.support_origins``, and the desk's webhooks (``apps.support.webhooks``: the desk folder's
``webhooks.yaml``, loaded once per server).

The script (``web/static/support-widget.js``) calls ``/v1/support`` from the embedding page, another
origin: the browser lets it only when the server answers CORS for that origin. Only the support API's
routes (``/v1/support/...``) answer it (Starlette's ``CORSMiddleware``), and only to the
configured origins (``*``: any); without any, no CORS header is sent and only the server's own pages can
call them. Credentials (cookies) are never allowed cross-origin: the widget authenticates with the key of
its ``data-key`` attribute (``Authorization: Bearer``), so a signed-in agent's session cannot be used
by another site.
"""

from __future__ import annotations

import threading
import weakref
from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.responses import FileResponse
from starlette.middleware.cors import CORSMiddleware

from clearlm.apps.support import DeskReply
from clearlm.apps.support.webhooks import Webhooks, load_webhooks
from clearlm.errors import InvalidInputError

WIDGET = Path(__file__).resolve().parents[1] / "web" / "static" / "support-widget.js"
PATHS = ("/v1/support/",)  # (not the desk's web pages at /support: a classic script tag needs no CORS)
MAX_AGE_S = 600  # how long a browser may keep a preflight's answer

router = APIRouter()
_hooks: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # server state -> Webhooks
_lock = threading.Lock()


@router.get("/support/widget.js", include_in_schema=False)
async def widget_js() -> FileResponse:
    """The widget's script (revalidated on each load: a new server version shows at once)."""
    headers = {"Cache-Control": "no-cache", "Cross-Origin-Resource-Policy": "cross-origin"}
    return FileResponse(WIDGET, media_type="text/javascript; charset=utf-8", headers=headers)


def check_origin(origin: str) -> str:
    """``origin`` if it is ``*`` or ``scheme://host[:port]`` (no path, no trailing slash).

    Raises:
        InvalidInputError: anything else (a browser's Origin header never has a path).
    """
    from urllib.parse import urlsplit

    parts = urlsplit(origin)
    if origin == "*" or (parts.scheme in ("http", "https") and parts.netloc and origin.count("/") == 2):
        return origin
    raise InvalidInputError(
        f"a support origin is scheme://host[:port] (e.g. https://shop.example) or *, got {origin!r}"
    )


class SupportCors:
    """CORS for the support routes only (pure ASGI): other paths pass through untouched."""

    def __init__(self, app, origins: tuple[str, ...]) -> None:
        self.app = app
        self.cors = CORSMiddleware(
            app,
            allow_origins=list(origins),
            allow_methods=["GET", "POST"],
            allow_headers=["authorization", "content-type"],
            expose_headers=["retry-after"],
            allow_credentials=False,
            max_age=MAX_AGE_S,
        )

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http" and scope["path"].startswith(PATHS):
            await self.cors(scope, receive, send)
        else:
            await self.app(scope, receive, send)


def install(app: FastAPI, origins: tuple[str, ...]) -> None:
    """Serve the widget's script from ``app``, and answer CORS to ``origins`` on the support routes
    (outermost, so a preflight is answered before authentication and is not audited).

    Raises:
        InvalidInputError: an origin that is not ``scheme://host[:port]`` or ``*``.
    """
    app.include_router(router)
    if origins:
        app.add_middleware(SupportCors, origins=tuple(check_origin(o) for o in origins))


def webhooks_of(s) -> Webhooks:
    """The webhooks of the server whose state is ``s`` (none without a desk folder or its webhooks.yaml).

    Raises:
        WebhookConfigError: a bad webhooks.yaml (``clearlm serve`` checks it before it starts).
    """
    with _lock:
        if s not in _hooks:
            folder = s.config.support_desk
            _hooks[s] = Webhooks(load_webhooks(folder) if folder else [])
        return _hooks[s]


def announce_handoff(s, tenant: str, reply: DeskReply) -> None:
    """``handoff.created`` when the turn of ``reply`` handed its conversation off (delivered off the
    request's path; a receiver's fault never reaches the turn)."""
    if reply.handoff is not None and reply.handoff.get("review_id"):
        data = {"conversation_id": reply.conversation.id, "customer_id": reply.conversation.customer_id}
        data |= {k: reply.handoff.get(k) for k in ("review_id", "reason", "detail")}
        webhooks_of(s).emit("handoff.created", tenant, data)
