"""/v1/conversations: chat conversations kept server-side per user, and their turns.

A turn (``POST /v1/conversations/{id}/turns``) stores the person's message, then answers it through the
same code as ``/v1/chat/completions`` (``completions.chat_completion``: the pipeline turn, the policies,
the audit record, the disclosure mark), with the conversation's settings and history as the request. The
answer is stored when the stream ends; when the client leaves mid-stream, with the text so far (status
``stopped``); when generation fails, as ``failed`` with the error. Streamed like chat completions (SSE),
with two more events: the stored user message first, the stored answer (with its rendered ``html``) last,
each ``{"object": "conversation.message", "message": {...}}``. One answer is written at a time per
conversation (a second turn meanwhile is answered 409; the guard is per server process).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated, Literal

import anyio
from fastapi import Path, Query, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from clearlm.errors import ClearlmError, PolicyViolationError
from clearlm.govern import disclosure
from clearlm.server import protocol as p
from clearlm.server.auth import tenant_of, user_of
from clearlm.server.chat_turns import Answer, chat_request, prepare, to_markdown
from clearlm.server.completions import chat_completion
from clearlm.server.lifecycle import on_exit
from clearlm.server.routes import api_router
from clearlm.server.serving import policy_of, sse
from clearlm.store.conversations import MAX_TITLE_CHARS, ConversationNotFoundError, Conversations
from clearlm.web.markdown import message_html

router = api_router()
_ANSWERING: set[tuple[int, str]] = set()  # (server, conversation) pairs with an answer being written


class TurnInProgressError(ClearlmError):
    """Another answer is being written in the conversation."""

    status_code = 409
    code = "turn_in_progress"


MAX_QUERY_CHARS = 200  # a search of the conversation list
MAX_SAFE_INTEGER = 2**53 - 1  # JavaScript's Number.MAX_SAFE_INTEGER: the page round-trips settings
NO_NUL = r"^[^\x00]*$"  # text a database column takes (PostgreSQL refuses NUL characters)
ID_PATTERN = r"^conv_[0-9a-f]{1,59}$"  # "conv_" and 24 hex digits, as Conversations.create makes them
ConversationId = Annotated[
    str,
    Path(
        max_length=p.MAX_ID_CHARS,
        pattern=ID_PATTERN,
        description="The conversation's id: conv_ and hex digits (GET /v1/conversations lists them).",
    ),
]


class ConversationSettings(BaseModel):
    """How a conversation's turns are answered."""

    model_config = ConfigDict(extra="forbid")
    model: str | None = Field(
        default=None, max_length=p.MAX_MODEL_CHARS, description="None: the served model."
    )
    system_prompt: str = Field(default="", max_length=p.MAX_MESSAGE_CHARS, pattern=NO_NUL)
    temperature: float = Field(default=0.7, ge=0, le=2)
    max_tokens: int | None = Field(default=None, ge=1, le=p.MAX_TOKENS)
    knowledge_base: p.KnowledgeBaseName | None = None
    knowledge_answer: Literal["generate", "extract"] = Field(
        default="generate",
        description="With a knowledge base: generate (the model answers) or extract (the closest sentences, "
        "quoted and cited).",
    )
    seed: int | None = Field(
        default=None,
        ge=0,
        le=MAX_SAFE_INTEGER,
        description="None: a new draw each time; else 0 to 2**53 - 1 (a number JavaScript and JSON keep exact).",
    )


class ConversationCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    title: str | None = Field(default=None, max_length=MAX_TITLE_CHARS, pattern=NO_NUL)
    settings: ConversationSettings | None = None


class ConversationPatch(BaseModel):
    """A new title and/or settings (only the settings' fields given change)."""

    model_config = ConfigDict(extra="forbid")
    title: str | None = Field(default=None, max_length=MAX_TITLE_CHARS, pattern=NO_NUL)
    settings: ConversationSettings | None = None


class TurnCreate(BaseModel):
    """A new message (``content``); or ``edit``: replace that user message with ``content`` and drop what
    follows it; or ``regenerate``: drop the last answer and answer again."""

    model_config = ConfigDict(extra="forbid")
    content: str | None = Field(default=None, max_length=p.MAX_MESSAGE_CHARS, pattern=NO_NUL)
    edit: int | None = Field(default=None, ge=0, description="The id of the user message to replace.")
    regenerate: bool = False
    stream: bool = True


def _store(request: Request) -> tuple[Conversations, str, str]:
    return Conversations(request.app.state.clearlm.db), tenant_of(request), user_of(request)


def with_html(message: dict) -> dict:
    """The message with ``html``: Markdown rendered for an answer, the text as typed for a person's."""
    return {**message, "html": message_html(message)}


@router.get("/conversations")
async def list_conversations(
    request: Request,
    q: Annotated[
        str | None,
        Query(max_length=MAX_QUERY_CHARS, pattern=NO_NUL, description="Text in a title or a message."),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
):
    """The caller's conversations, most recently changed first."""
    store, tenant, owner = _store(request)
    data = await anyio.to_thread.run_sync(lambda: store.list(tenant, owner, q, limit))
    return {"object": "list", "data": data}


@router.post("/conversations", status_code=201)
async def create_conversation(body: ConversationCreate, request: Request):
    store, tenant, owner = _store(request)
    settings = (body.settings or ConversationSettings()).model_dump()
    conv = await anyio.to_thread.run_sync(lambda: store.create(tenant, owner, body.title, settings))
    return {**conv, "messages": []}


@router.get("/conversations/{conversation_id}")
async def get_conversation(
    conversation_id: ConversationId,
    request: Request,
    html: Annotated[bool, Query(description="Add each message's rendered HTML (``html``).")] = False,
):
    """The conversation and its messages in order."""
    store, tenant, owner = _store(request)
    conv = await anyio.to_thread.run_sync(store.get, tenant, owner, conversation_id)
    if html:
        conv["messages"] = [with_html(m) for m in conv["messages"]]
    return conv


@router.patch("/conversations/{conversation_id}")
async def update_conversation(conversation_id: ConversationId, body: ConversationPatch, request: Request):
    store, tenant, owner = _store(request)

    def work() -> dict:
        settings = None
        if body.settings is not None:
            current = store.get(tenant, owner, conversation_id)["settings"]
            settings = {**current, **body.settings.model_dump(exclude_unset=True)}
        return store.update(tenant, owner, conversation_id, body.title, settings)

    return await anyio.to_thread.run_sync(work)


@router.delete("/conversations/{conversation_id}")
async def delete_conversation(conversation_id: ConversationId, request: Request):
    store, tenant, owner = _store(request)
    await anyio.to_thread.run_sync(store.delete, tenant, owner, conversation_id)
    return {"id": conversation_id, "object": "conversation.deleted", "deleted": True}


@router.get("/conversations/{conversation_id}/export")
async def export_conversation(
    conversation_id: ConversationId, request: Request, format: Literal["markdown", "json"] = "markdown"
):
    """The conversation as a file: Markdown (a heading per message, the disclosure under each answer) or
    JSON (the conversation as ``GET`` returns it)."""
    store, tenant, owner = _store(request)
    conv = await anyio.to_thread.run_sync(store.get, tenant, owner, conversation_id)
    if format == "json":
        exported = datetime.now(UTC).isoformat(timespec="seconds")
        body = json.dumps({**conv, "exported_at": exported, "ai_disclosure": disclosure.NOTICE}, indent=2)
        media, ext = "application/json", "json"
    else:
        body, media, ext = to_markdown(conv), "text/markdown; charset=utf-8", "md"
    return Response(
        body, media_type=media, headers={"Content-Disposition": f'attachment; filename="{conv["id"]}.{ext}"'}
    )


@router.post("/conversations/{conversation_id}/turns")
async def create_turn(conversation_id: ConversationId, body: TurnCreate, request: Request):
    """Answer the conversation: a new message, an edited one, or the last answer again (see
    :class:`TurnCreate`). Streams (SSE) unless ``stream`` is false; then returns
    ``{"object": "conversation.message", "message": {...}}``.

    Raises:
        InvalidInputError (400): no content for a new or edited message, content with ``regenerate``,
            nothing to answer, a full conversation; ConversationNotFoundError (404); the errors of
            ``/v1/chat/completions`` (the failed answer is stored with its error too).
    """
    s = request.app.state.clearlm
    store, tenant, owner = _store(request)
    conv = await anyio.to_thread.run_sync(store.get, tenant, owner, conversation_id)
    busy = (id(s), conversation_id)
    if busy in _ANSWERING:
        raise TurnInProgressError(
            "an answer is being written in this conversation: wait for it, or stop it, then send again"
        )
    _ANSWERING.add(busy)
    answer = Answer(store, conversation_id, request)
    try:
        policy = policy_of(request, s)
        stored = policy.stored if policy is not None else (lambda text: text)
        messages, user_message = await prepare(store, tenant, owner, conv, body, stored)
        answer.started = True
        chat = await anyio.to_thread.run_sync(chat_request, s, conv["settings"], messages, body.stream)
        result = await chat_completion(request, chat, s, origin={"conversation_id": conversation_id})
    except BaseException as exc:
        if answer.started:  # the person's message is stored: so is what became of its answer
            status, error = "failed", f"internal error: {exc.__class__.__name__}"
            if isinstance(exc, ClearlmError):
                status = "refused" if isinstance(exc, PolicyViolationError) else "failed"
                error = str(exc)
            elif not isinstance(exc, Exception):  # cancelled: the client left while it waited
                status, error = "stopped", None
            with anyio.CancelScope(shield=True):
                await answer.save(status, error=error)
        _ANSWERING.discard(busy)
        raise
    headers = dict(disclosure.HEADERS)
    if not isinstance(result, StreamingResponse):
        on_exit(request, lambda: _release(busy))
        message = await answer.save_completion(result)
        if message is None:
            raise ConversationNotFoundError(f"the conversation {conversation_id!r} was deleted meanwhile")
        return JSONResponse(
            {
                "object": "conversation.message",
                "message": with_html(message),
                "user_message": user_message and with_html(user_message),
            },
            headers=headers,
        )
    on_exit(request, lambda: answer.save("stopped"))  # the client left: the text so far is kept
    on_exit(request, lambda: _release(busy))  # after the answer is stored

    async def events():
        if user_message is not None:
            yield _event(with_html(user_message))
        async for raw in result.body_iterator:
            if raw.startswith("data: [DONE]"):
                message = await answer.save_streamed()
                if message is not None:  # None: the conversation was deleted meanwhile
                    yield _event(with_html(message))
            else:
                answer.feed(raw)
            yield raw

    response = sse(events())
    response.headers.update(headers)
    return response


async def _release(busy: tuple) -> None:
    _ANSWERING.discard(busy)


def _event(message: dict) -> str:
    return f"data: {json.dumps({'object': 'conversation.message', 'message': message})}\n\n"
