"""/v1/support, the agents' side (admins: the desk's agents): a reply written in the agent's language and
translated into the customer's before it is stored, the messages with translations into the agent's
language (``apps.support.translation``), and a suggested reply. The customers' side and the conversations
themselves: ``server.support``."""

from __future__ import annotations

from typing import Annotated, Literal

import anyio
from fastapi import Query, Request
from pydantic import BaseModel, Field

from clearlm.apps.support import SupportConversations, TurnRunner
from clearlm.apps.support.conversations import MAX_TEXT_CHARS
from clearlm.apps.support.translation import (
    agent_reply_in,
    language_name,
    translatable_pattern,
    translate_messages,
)
from clearlm.server.auth import tenant_of, user_of
from clearlm.server.protocol import _Request
from clearlm.server.routes import ADMIN, _error, api_router, state
from clearlm.server.serving import admit, policy_of
from clearlm.server.support import ConversationId, SupportMessageOut, _desk

router = api_router()

TRANSLATABLE = translatable_pattern()  # the codes lingua knows: the schema promises no code refused


class SupportAgentReply(_Request):
    """What the agent writes to the customer; ``language``: the language it is written in (ISO 639-1),
    translated into the customer's before it is stored (omitted: stored as written)."""

    text: str = Field(min_length=1, max_length=MAX_TEXT_CHARS, pattern=r"\S", description="Not blank.")
    language: str | None = Field(
        default=None,
        pattern=TRANSLATABLE,
        description="ISO 639-1 of the text (e.g. es); the customer reads it translated into theirs.",
    )
    engine: Literal["auto", "model"] = Field(
        default="auto",
        description="auto: Apertium or Bergamot where one has the pair, else the model; model: the desk's "
        "model (a support:translate turn), when the rule-based translation reads too literally.",
    )


class SupportTranslationOut(BaseModel):
    """How a text was translated: ``method`` the engine (apertium or bergamot where one has the pair;
    model: a pipeline turn, audit record ``request_id``; none: the same language both sides), and the
    ``original`` text."""

    text: str
    source: str
    target: str
    method: Literal["apertium", "bergamot", "model", "none"]
    request_id: str | None
    original: str | None = None


class SupportAgentReplyOut(SupportMessageOut):
    """The stored ``agent`` message (what the customer reads; ``original``: what the agent wrote, as the
    policy stores text) and, for a reply with ``language``, its ``translation``."""

    translation: SupportTranslationOut | None = None


class SupportTranslatedMessageOut(SupportMessageOut):
    """A message with its ``translation`` into ``translate_to`` (customer messages in another language),
    or ``translation_error`` when the model gave no text."""

    translation: SupportTranslationOut | None = None
    translation_error: str | None = None


class SupportMessageList(BaseModel):
    object: Literal["list"] = "list"
    data: list[SupportTranslatedMessageOut]


def _runner(request: Request, s) -> TurnRunner:
    return TurnRunner(
        s.backend,
        s.audit,
        policy_of(request, s),
        max_tokens=s.config.default_max_tokens,
        api_key_id=request.state.audit_record.api_key_id,
    )


@router.post(
    "/support/conversations/{conversation_id}/replies",
    response_model=SupportAgentReplyOut,
    status_code=201,
    responses={
        **ADMIN["responses"],
        409: _error("The conversation is not handed off."),
        422: _error("The translation came back empty."),
    },
    dependencies=ADMIN["dependencies"],
)
async def agent_reply_route(conversation_id: ConversationId, body: SupportAgentReply, request: Request):
    """An agent's reply in a handed-off conversation (an admin: the desk's agents), stored as the policy
    stores text: it answers the oldest open hand-off item (``/v1/review``), or joins the chat directly
    when none is open. With ``language`` (the agent's), it is translated into the customer's language
    first (``engine`` auto: Apertium or Bergamot where one has the pair, else a ``support:translate``
    pipeline turn; model: that turn; ``translation.method`` says which); the original is kept on the
    stored message (``original``, in the desk's ``.../messages`` reads, not the customer's), in this
    request's audit record (``output.original``), in the item's decision note and in a model turn's record. 409 when the conversation is not handed off; 400 for a language
    clearlm cannot translate."""
    s, tenant, by = state(request), tenant_of(request), user_of(request)
    policy = policy_of(request, s)
    stored = (lambda t: t) if policy is None else policy.stored
    record = request.state.audit_record
    record.parameters = {"conversation_id": conversation_id}
    if body.language is not None:
        language_name(body.language, "the reply's language")  # 400 before a slot is taken
        record.parameters["language"] = body.language.lower()
        record.parameters["engine"] = body.engine
        await admit(request, s)
    runner = _runner(request, s)
    done, translation = await anyio.to_thread.run_sync(
        lambda: agent_reply_in(
            s.db, runner, tenant, conversation_id, body.text, body.language, by, stored, body.engine
        )
    )
    record.output = {"answer": done.text}
    out = done.to_dict()
    if translation is not None:
        out["translation"] = translation.to_dict()
        record.output["original"] = stored(body.text)
        record.parameters["request_ids"] = [translation.request_id] if translation.request_id else []
    return out


@router.get(
    "/support/conversations/{conversation_id}/messages",
    response_model=SupportMessageList,
    responses={**ADMIN["responses"]},
    dependencies=ADMIN["dependencies"],
)
async def list_messages(
    conversation_id: ConversationId,
    request: Request,
    translate_to: Annotated[
        str | None,
        Query(
            pattern=TRANSLATABLE,
            description="ISO 639-1: each customer message in another language comes with its translation.",
        ),
    ] = None,
):
    """The conversation's messages (an admin: the desk's agents); with ``translate_to`` (the agent's
    language), each customer message in another language has its ``translation`` (Apertium or
    Bergamot where one has the pair, else one audited ``support:translate`` turn each; the latest 50;
    cached in the server). 400 for a language clearlm cannot translate."""
    s, tenant = state(request), tenant_of(request)
    record = request.state.audit_record
    record.parameters = {"conversation_id": conversation_id, "translate_to": translate_to}
    conversations = SupportConversations(s.db)
    if translate_to is None:
        chat = await anyio.to_thread.run_sync(lambda: conversations.get(tenant, conversation_id))
        return {"data": [m.to_dict() for m in chat.messages]}
    language_name(translate_to, "translate_to")
    await admit(request, s)
    runner = _runner(request, s)

    def work() -> dict:
        chat = conversations.get(tenant, conversation_id)
        return {"data": translate_messages(runner, chat, translate_to)}

    return await anyio.to_thread.run_sync(work)


# --- Suggested replies (issue 15): a draft for an agent's reply in a handed-off conversation, with the
# flow's knowledge base's quoted answer (``apps.support.suggestions``); never sent by itself.


class SupportCitationOut(BaseModel):
    n: int
    chunk_id: str
    path: str
    title: str
    heading: str


class SupportKnowledgeOut(BaseModel):
    """The knowledge base's extractive answer: ``answer`` with ``[n]`` marks (or the abstention),
    ``quote`` without them (empty for an abstention), ``citations`` the passages the marks name."""

    knowledge_base: str
    question: str
    answer: str
    quote: str
    citations: list[SupportCitationOut]
    request_id: str


class SupportSuggestionOut(BaseModel):
    """A suggested reply: ``text`` for the reply box (the draft, then the quote), ``draft`` (the model's
    words; empty when ``refused`` by the policy), ``knowledge`` (null: no knowledge base applies),
    ``request_ids`` (the ``support:suggest`` turns' audit records)."""

    object: Literal["support.suggestion"] = "support.suggestion"
    conversation_id: str
    text: str
    draft: str
    refused: bool
    knowledge: SupportKnowledgeOut | None
    request_ids: list[str]


@router.post(
    "/support/conversations/{conversation_id}/suggestion",
    response_model=SupportSuggestionOut,
    responses={**ADMIN["responses"], 409: _error("The conversation is not handed off.")},
    dependencies=ADMIN["dependencies"],
)
async def suggest_reply_route(conversation_id: ConversationId, request: Request):
    """A suggested reply for the agent (an admin: the desk's agents) in a handed-off conversation: a
    draft from its latest messages and, when its flow names a knowledge base of the tenant, that base's
    quoted, cited answer (pipeline turns of kind ``suggest``, audited). Nothing is sent or stored. 409
    when the conversation is not handed off."""
    from clearlm.apps.support.handoff import handed_off
    from clearlm.apps.support.suggestions import WHY, suggest_reply

    s, tenant = state(request), tenant_of(request)
    record = request.state.audit_record
    record.parameters = {"conversation_id": conversation_id}
    conversations = SupportConversations(s.db)  # 404 and 409 before a generation slot is taken
    await anyio.to_thread.run_sync(lambda: handed_off(conversations, tenant, conversation_id, WHY))
    await admit(request, s)
    desk = await anyio.to_thread.run_sync(_desk, request)
    done = await anyio.to_thread.run_sync(lambda: suggest_reply(desk, tenant, conversation_id))
    record.parameters["request_ids"] = done.request_ids
    out = done.to_dict()
    if out["knowledge"] is not None:  # a source's path as the knowledge base's API names it
        from clearlm.server.knowledge import files_dir

        folder = str(files_dir(s, out["knowledge"]["knowledge_base"], tenant)) + "/"
        for cited in out["knowledge"]["citations"]:
            cited["path"] = cited["path"].removeprefix(folder)
    return out
