"""The chat page: ``/chat`` (a new conversation) and ``/chat/{id}``.

The conversation list and the stored messages are rendered here (answers as Markdown by
``web.markdown``, a person's messages as typed), so a long conversation opens in one response with no
script work per message; ``static/chat.js`` sends turns through ``/v1/conversations`` and streams the
answer.
"""

from __future__ import annotations

from typing import Annotated

import anyio
from fastapi import APIRouter, Depends, Path, Request

from clearlm.govern import disclosure
from clearlm.server import protocol as p
from clearlm.store.conversations import DEFAULT_TITLE, ConversationNotFoundError, Conversations
from clearlm.store.sessions import SignIn
from clearlm.web.markdown import message_html
from clearlm.web.pages import needs, render

router = APIRouter(include_in_schema=False)
GOVERNANCE_BADGES = {"redact": "redacted", "block": "refused", "warn": "flagged"}


def badges(message: dict) -> list[tuple[str, str, str]]:
    """The badges under a message: (text, css class, title)."""
    meta, out = message["meta"], []
    mark = meta.get("ai_generated")
    if mark:
        out.append((f"AI-generated · {mark.get('model')}", "ai", mark.get("notice", disclosure.NOTICE)))
    if meta.get("reviewed_by"):
        out.append(("answered by a reviewer", "ok", f"review {meta.get('review_id', '')}"))
    if message["status"] != "complete":
        out.append(
            (message["status"], "bad" if message["status"] == "failed" else "warn", meta.get("error") or "")
        )
    gov = meta.get("governance") or {}
    if gov.get("action") in GOVERNANCE_BADGES and message["status"] != "refused":
        found = ", ".join(gov.get("findings") or [])
        out.append((GOVERNANCE_BADGES[gov["action"]], "warn", f"policy {gov.get('policy')}: {found}"))
    if gov.get("escalated"):
        out.append(("sent for review", "warn", f"policy {gov.get('policy')}"))
    return out


def view(message: dict) -> dict:
    """A stored message as the template shows it."""
    return {**message, "html": message_html(message), "badges": badges(message)}


@router.get("/chat")
async def new_chat(request: Request, signin: Annotated[SignIn, Depends(needs("user"))]):
    return await _page(request, signin, None)


@router.get("/chat/{conversation_id}")
async def chat(
    request: Request,
    conversation_id: Annotated[str, Path(max_length=p.MAX_ID_CHARS)],
    signin: Annotated[SignIn, Depends(needs("user"))],
):
    return await _page(request, signin, conversation_id)


async def _page(request: Request, signin: SignIn, conversation_id: str | None):
    s = request.app.state.clearlm
    store = Conversations(s.db)

    def load() -> tuple[list[dict], dict | None]:
        listed = store.list(signin.tenant, signin.user, limit=200)
        if conversation_id is None:
            return listed, None
        try:
            return listed, store.get(signin.tenant, signin.user, conversation_id)
        except ConversationNotFoundError:
            return listed, {}

    listed, conv = await anyio.to_thread.run_sync(load)
    missing = conv == {}
    messages = [view(m) for m in conv["messages"]] if conv else []
    data = {  # what the script needs that the HTML does not carry: each message's text and citations
        "messages": [
            {
                "id": m["id"],
                "role": m["role"],
                "content": m["content"],
                "citations": m["meta"].get("citations"),
            }
            for m in (conv["messages"] if conv else [])
        ],
        "settings": conv["settings"] if conv else {},
    }
    last_answer = messages[-1]["id"] if messages and messages[-1]["role"] == "assistant" else None
    response = render(
        request,
        "chat.html",
        signin,
        conversations=listed,
        conv=conv or None,
        missing=missing,
        messages=messages,
        last_answer=last_answer,
        data=data,
        default_title=DEFAULT_TITLE,
        embedding_model=s.config.embedding_model,
    )
    if missing:
        response.status_code = 404
    return response
