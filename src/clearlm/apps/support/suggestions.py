"""Suggested replies for the desk's agents: a draft of the next reply in a handed-off conversation, which
the agent edits and sends (it is never sent by itself: nothing here stores a message).

:func:`suggest_reply` runs up to two pipeline turns of the desk's :class:`~.turns.TurnRunner`, both of
kind ``suggest`` (audit endpoint ``support:suggest``, record ids ``<conversation id>-...``), so the policy
checks them and the audit log records them like every desk turn:

- **knowledge** (when the conversation's flow names a knowledge base that the tenant has): the
  customer's latest words (and the hand-off's reason, in words) as the question, answered by the
  pipeline's :class:`~clearlm.pipeline.Retrieval` with ``answer="extract"``: the passages' sentences
  closest to the question, quoted word for word with ``[n]`` citations (``knowledge.extractive``),
  nothing generated. An abstention ("The documents do not say.") adds nothing to the suggestion.
- **draft**: the model's reply, generated from the conversation's latest messages (the customer's as
  the user's, the assistant's and agents' as the assistant's; notes and messages the policy withheld
  left out) after a system message that says a person will check it and why the conversation was
  handed off. As in the desk's own turns, the system message is the turn's instructions and the stored
  messages are screened history (``TurnRequest.screened``: the policy checked them at their own
  turns), so the input policy does not scan them again; the output policy checks the draft.

The suggestion's ``text`` (what fills the reply box) is the draft, then the knowledge base's quoted
sentences without their citation marks; the citations come apart, each naming its source.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from clearlm.apps.support.agents import handoff_items
from clearlm.apps.support.conversations import SupportConversation, SupportConversations
from clearlm.apps.support.customers import Customers
from clearlm.apps.support.handoff import handed_off
from clearlm.errors import ClearlmError
from clearlm.knowledge.quotes import is_abstention
from clearlm.models.chat import Message
from clearlm.pipeline import Retrieval

RECENT = 12  # the conversation's latest messages the draft sees
ASKED = 3  # the customer's latest messages that make the knowledge base's question
KIND = "suggest"
WHY = "suggestions are for a person's reply"  # the end of NotHandedOffError's message
ROLE = {"customer": "user", "assistant": "assistant", "agent": "assistant"}
_MARK = re.compile(r"\s*\[(\d+)\]")
INSTRUCTIONS = (
    "You help a person of a shop's support desk. Draft the person's next reply to the customer: brief, "
    "polite, in the customer's language ({language}). The person checks and edits it before sending. "
    "Never invent order details, dates or amounts."
)


@dataclass(frozen=True, slots=True)
class Citation:
    """A source of the knowledge answer: ``n`` (its ``[n]`` in ``answer``), the passage's ``chunk_id``,
    ``path`` (its document, as the knowledge base lists it), ``title`` and ``heading`` (``A > B``)."""

    n: int
    chunk_id: str
    path: str
    title: str
    heading: str

    def to_dict(self) -> dict:
        return {
            "n": self.n,
            "chunk_id": self.chunk_id,
            "path": self.path,
            "title": self.title,
            "heading": self.heading,
        }


@dataclass(frozen=True, slots=True)
class KnowledgeAnswer:
    """The knowledge base's part: ``knowledge_base`` (its name), ``question``, ``answer`` (the quoted
    sentences with ``[n]`` marks, or the abstention), ``quote`` (the answer without the marks; empty for
    an abstention or a refusal), ``citations`` (the passages the marks name, in order of ``n``),
    ``request_id`` (the turn's audit record)."""

    knowledge_base: str
    question: str
    answer: str
    quote: str
    citations: list[Citation]
    request_id: str

    def to_dict(self) -> dict:
        return {
            "knowledge_base": self.knowledge_base,
            "question": self.question,
            "answer": self.answer,
            "quote": self.quote,
            "citations": [c.to_dict() for c in self.citations],
            "request_id": self.request_id,
        }


@dataclass(frozen=True, slots=True)
class Suggestion:
    """A suggested reply. Fields: ``conversation_id``; ``text`` (for the reply box: the draft, then the
    quote; empty when neither gave text); ``draft`` (the model's words, as the output policy let them
    through; empty when the policy refused the turn: ``refused``, or when every message was withheld and
    no draft was asked for); ``knowledge`` (a :class:`KnowledgeAnswer`, or None: no knowledge base
    applies); ``request_ids`` (the audit records of its turns, knowledge first)."""

    conversation_id: str
    text: str
    draft: str
    refused: bool
    knowledge: KnowledgeAnswer | None = None
    request_ids: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "object": "support.suggestion",
            "conversation_id": self.conversation_id,
            "text": self.text,
            "draft": self.draft,
            "refused": self.refused,
            "knowledge": self.knowledge.to_dict() if self.knowledge is not None else None,
            "request_ids": self.request_ids,
        }


class _Seen:
    """A knowledge base that keeps the passages its searches returned (their sources, for the citations),
    and is otherwise the knowledge base itself."""

    def __init__(self, kb) -> None:
        self._kb = kb
        self.passages: dict[str, Any] = {}

    def search(self, *args, **kwargs):
        found = self._kb.search(*args, **kwargs)
        self.passages.update((p.chunk_id, p) for p in found.passages)
        return found

    def __getattr__(self, name: str):
        return getattr(self._kb, name)


def _spoken(chat: SupportConversation) -> list:
    """The messages a model may read: customers', the assistant's and agents', not withheld ones."""
    return [m for m in chat.messages if m.role in ROLE and not m.withheld]


def _reason(desk, chat: SupportConversation) -> str | None:
    """The latest hand-off's reason and detail, in words (``outside_return_window`` -> ``outside return
    window``), or None."""
    items = handoff_items(desk.db, chat.tenant, chat.id)
    if not items:
        return None
    payload = items[-1].payload
    words = str(payload.get("reason") or "").replace("_", " ").strip()
    detail = payload.get("detail")
    return f"{words} ({detail})" if detail else (words or None)


def question_of(chat: SupportConversation, reason: str | None, topic: str | None = None) -> str | None:
    """The knowledge base's question: ``topic`` (the flow's description) with the hand-off's ``reason``,
    then the customer's latest ``ASKED`` messages, as sentences; None when the customer has not written.
    The topic and reason matter: on the sample desk, "I am returning order A-10002. changed mind." alone
    scores 0.57 against the FAQ's sentences (under extraction's 0.6: an abstention), with "A customer
    returns an item they bought (outside return window)." before it 0.67 (the returns window quoted)."""
    said = [m.text.strip() for m in _spoken(chat) if m.role == "customer"][-ASKED:]
    if not said:
        return None
    head = (topic or "").strip().rstrip(".")
    if head and reason:
        head = f"{head} ({reason})"
    elif reason:
        head = reason[0].upper() + reason[1:]
    return " ".join(s if s.endswith((".", "?", "!")) else s + "." for s in [head, *said] if s)


def _knowledge(desk, chat: SupportConversation, flow, reason: str | None) -> KnowledgeAnswer | None:
    """The extractive answer from ``flow``'s knowledge base; None when none applies (no flow, a flow
    without one, no such base in the tenant or an empty one, no ``open_kb`` on the desk, no customer
    message yet)."""
    name = getattr(flow, "knowledge_base", None)
    question = question_of(chat, reason, getattr(flow, "description", None))
    if desk.open_kb is None or not name or question is None:
        return None
    context = [Message("user", question)]
    try:
        with desk.open_kb(chat.tenant, name) as kb:
            if not kb.sources():  # an empty base answers nothing (the pipeline would refuse: 400)
                return None
            seen = _Seen(kb)
            retrieval = Retrieval(seen, answer="extract")
            out = desk.runner.generate(chat.tenant, chat.id, context, kind=KIND, retrieval=retrieval)
    except ClearlmError as exc:
        if getattr(exc, "status_code", None) == 404:  # no such knowledge base, or it holds nothing
            return None
        raise
    unanswered = out.finish_reason == "content_filter" or is_abstention(out.text)  # refused, or abstained
    numbers = sorted({int(n) for n in _MARK.findall(out.text)})
    citations = [
        Citation(n, cid, p.path, p.title, p.heading)
        for n in numbers
        if 1 <= n <= len(out.citations)
        for cid in [out.citations[n - 1]]
        if (p := seen.passages.get(cid)) is not None
    ]
    quote = "" if unanswered else _MARK.sub("", out.text).strip()
    return KnowledgeAnswer(name, question, out.text, quote, [] if unanswered else citations, out.request_id)


def suggest_reply(desk, tenant: str, conversation_id: str) -> Suggestion:
    """A suggested reply for an agent in the handed-off conversation ``conversation_id`` of ``tenant``,
    through ``desk``'s runner (its backend, policy and audit log), flows and knowledge bases (see the
    module's description). Nothing is stored but the turns' audit records.

    Raises:
        SupportConversationNotFoundError (404): not in ``tenant``. NotHandedOffError (409): the
            conversation is open or closed (the assistant, or nobody, answers it). ContextLengthError:
            the latest message alone is too long for the model.
    """
    conversations = SupportConversations(desk.db)
    chat = handed_off(conversations, tenant, conversation_id, WHY)
    customer = Customers(desk.db).get(tenant, chat.customer_id)
    reason = _reason(desk, chat)
    flow = desk.flows.get((chat.flow_state or {}).get("flow") or "")
    knowledge = _knowledge(desk, chat, flow, reason)
    system = INSTRUCTIONS.format(language=customer.language)
    if reason:
        system += f" The assistant handed the conversation to the person because: {reason}."
    spoken = _spoken(chat)[-RECENT:]
    ids = [knowledge.request_id] if knowledge is not None else []
    draft, refused = "", False
    if spoken:  # (none: every message was withheld by the policy; nothing to draft from)
        context = [Message("system", system), *(Message(ROLE[m.role], m.text) for m in spoken)]
        screened = tuple(range(1, len(context)))  # stored history, checked at its own turns (as the desk's)
        out = desk.runner.generate(tenant, conversation_id, context, kind=KIND, screened=screened)
        refused = out.finish_reason == "content_filter"
        draft = "" if refused else out.text.strip()
        ids.append(out.request_id)
    parts = [draft, knowledge.quote if knowledge is not None else ""]
    return Suggestion(conversation_id, "\n\n".join(p for p in parts if p), draft, refused, knowledge, ids)
