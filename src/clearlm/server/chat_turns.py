"""What the conversation routes need besides the routes: a turn's messages from the conversation, the
answer as it streams (saved exactly once: complete, refused, stopped or failed), a summary of what the
policy did (for the answer's badge), and the Markdown export."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import anyio
from fastapi import Request
from pydantic import ValidationError

from clearlm.errors import InvalidInputError
from clearlm.govern import disclosure
from clearlm.govern.base import Action
from clearlm.server import protocol as p
from clearlm.store.conversations import DEFAULT_TITLE, ConversationNotFoundError, Conversations

MAX_CONVERSATION_MESSAGES = 2000  # messages in one conversation (a turn past it is refused: start anew)
IN_HISTORY = ("complete", "stopped", "refused")  # a failed or held answer is not sent back to the model
TOP_LOGPROBS = 5


def history(system_prompt: str, messages: list[dict]) -> list[dict]:
    """The chat request's messages: the system prompt (if any), then the conversation's user and assistant
    messages with some text (failed and held answers left out), the newest ``MAX_MESSAGES - 1`` of them."""
    out = [
        {"role": m["role"], "content": m["content"]}
        for m in messages
        if m["role"] in ("user", "assistant") and m["status"] in IN_HISTORY and m["content"].strip()
    ][-(p.MAX_MESSAGES - 1) :]
    return ([{"role": "system", "content": system_prompt}] if system_prompt.strip() else []) + out


def governance_summary(governance: dict | None) -> dict | None:
    """What the policy did, when it did something: ``{policy, action (the most severe), escalated,
    findings (types, sorted), input, output}`` (``input``/``output``: each stage's action); None when
    every scan allowed the text."""
    if not governance:
        return None
    stages: dict[str, str] = {}
    found: set[str] = set()

    def take(stage: str, decision: dict) -> None:
        action = decision.get("action", "allow")
        if Action(action).severity > Action(stages.get(stage, "allow")).severity:
            stages[stage] = action
        for result in decision.get("results", []):
            if result.get("action", "allow") != "allow":
                found.update(f["type"] for f in result.get("findings", []))

    if governance.get("input"):
        take("input", governance["input"])
    for decision in governance.get("output", []):
        take("output", decision)
    for decision in governance.get("documents", []):
        take("documents", decision)
    action = max(stages.values(), key=lambda a: Action(a).severity, default="allow")
    escalated = bool(governance.get("escalated"))
    if action == "allow" and not escalated:
        return None
    return {
        "policy": governance.get("policy"),
        "action": action,
        "escalated": escalated,
        "findings": sorted(found),
        **stages,
    }


async def prepare(
    store: Conversations, tenant: str, owner: str, conv: dict, body, stored=lambda text: text
) -> tuple[list[dict], dict | None]:
    """Check the turn (``body``: a ``TurnCreate``) against the conversation, drop what an edit or a
    regeneration replaces, store the person's message as ``stored`` keeps text (the policy's
    ``store_redacted``: PII redacted, as in the audit log); returns the messages to answer (this turn's
    message as written) and the stored user message (None to regenerate)."""
    messages, content = conv["messages"], body.content
    if body.regenerate and (content is not None or body.edit is not None):
        raise InvalidInputError("regenerate answers the last message again: send it without content or edit")
    if body.regenerate:
        cut = len(messages) - 1 if messages and messages[-1]["role"] == "assistant" else len(messages)
        if cut == 0 or messages[cut - 1]["role"] != "user":
            raise InvalidInputError("there is no message of yours to answer again: send one")
    else:
        if content is None or not content.strip():
            raise InvalidInputError("write a message first (content is empty)")
        cut = len(messages)
        if body.edit is not None:
            cut = next(
                (i for i, m in enumerate(messages) if m["id"] == body.edit and m["role"] == "user"), -1
            )
            if cut < 0:
                raise ConversationNotFoundError(
                    f"no message of yours with id {body.edit} in this conversation: edit one of your own messages"
                )
    if cut + 2 > MAX_CONVERSATION_MESSAGES:
        raise InvalidInputError(
            f"a conversation holds at most {MAX_CONVERSATION_MESSAGES} messages: start a new conversation"
        )
    cid = conv["id"]

    def work() -> tuple[list[dict], dict | None]:
        if cut < len(messages):
            store.truncate_from(tenant, owner, cid, messages[cut]["position"])
        kept, user_message = messages[:cut], None
        if content is not None:
            user_message = store.append_message(cid, "user", stored(content))
            kept.append({**user_message, "content": content})
            if conv["title"] == DEFAULT_TITLE:
                store.update(tenant, owner, cid, title=" ".join(content.split())[:60])
        return kept, user_message

    return await anyio.to_thread.run_sync(work)


def fitted(backend, messages: list[dict], reserve: int) -> list[dict]:
    """The newest of ``messages`` that fit the model's context with ``reserve`` tokens left (for the answer,
    and the passages of a knowledge base): the system prompt is always kept, the oldest turns go first, and
    the kept part starts with a person's message. So a long conversation goes on being answered (what it
    forgets is what is oldest). A binary search: about log2(n) encodings of the prompt."""
    from clearlm.models import Message

    system = messages[:1] if messages and messages[0]["role"] == "system" else []
    rest = messages[len(system) :]

    def fits(start: int) -> bool:
        prompt = [Message(m["role"], m["content"]) for m in system + rest[start:]]
        return len(backend.encode(prompt).token_ids) + reserve <= backend.context_length

    if len(rest) <= 1 or fits(0):
        return messages
    low, high = (
        1,
        len(rest) - 1,
    )  # the last message is always kept (if it alone does not fit, the model says so)
    while low < high:
        mid = (low + high) // 2
        low, high = (low, mid) if fits(mid) else (mid + 1, high)
    while low < len(rest) - 1 and rest[low]["role"] != "user":
        low += 1
    return system + rest[low:]


def chat_request(s, settings: dict, messages: list[dict], stream: bool) -> p.ChatCompletionRequest:
    """The chat completion a turn runs: the conversation's settings and the history that fits the context
    (:func:`fitted`), token log-probabilities (the top 5 alternatives: what Why?'s contrastive view
    offers). Encodes the prompt: call it in a worker thread."""
    ctx = s.backend.context_length
    reserve = settings.get("max_tokens") or min(s.config.default_max_tokens, ctx // 4)
    if settings.get("knowledge_base"):
        reserve += ctx // 4  # room for the retrieved passages
    try:
        return p.ChatCompletionRequest(
            model=settings.get("model") or s.model_id,
            messages=fitted(s.backend, history(settings.get("system_prompt") or "", messages), reserve),
            temperature=settings.get("temperature", 0.7),
            max_tokens=settings.get("max_tokens"),
            logprobs=True,
            top_logprobs=TOP_LOGPROBS,
            # with how much the answer relied on each passage (measured after the answer streamed)
            knowledge_base={
                "name": kb,
                "attribute": True,
                "answer": settings.get("knowledge_answer", "generate"),
            }
            if (kb := settings.get("knowledge_base"))
            else None,
            seed=settings.get("seed"),
            stream=stream,
        )
    except ValidationError as exc:
        raise InvalidInputError(
            f"this conversation's settings are not usable ({exc.errors()[0]['msg']}): change them in Settings"
        ) from None


def _token(t: dict) -> dict:
    return {
        "token": t["token"],
        "logprob": t["logprob"],
        "top_logprobs": [{"token": a["token"], "logprob": a["logprob"]} for a in t.get("top_logprobs", [])],
    }


class Answer:
    """The answer of one turn: fed the chat completion's events as they stream (or given the whole
    completion), saved into the conversation once, whichever way the request ends."""

    def __init__(self, store: Conversations, conversation_id: str, request: Request) -> None:
        self.store, self.conversation_id, self.request = store, conversation_id, request
        self.text = ""
        self.logprobs: list[dict] = []
        self.withheld = False  # the policy changed the text: no token log-probabilities
        self.finish_reason: str | None = None
        self.ai_generated: dict | None = None
        self.citations: dict | None = None
        self.request_id: str | None = None
        self.error: str | None = None
        self.message: dict | None = None
        self._claimed = False
        self.started = False  # the person's message is stored (or the answer to regenerate dropped)

    def feed(self, raw: str) -> None:
        """Take in one server-sent event of the chat completion's stream."""
        for line in raw.split("\n"):  # not splitlines(): a token may be U+0085 or U+2028
            if not line.startswith("data:") or line[5:].strip() == "[DONE]":
                continue
            event = json.loads(line[5:])
            if "error" in event:
                self.error = event["error"].get("message") or "the answer failed"
                continue
            self.request_id = event.get("id") or self.request_id
            self.ai_generated = event.get("ai_generated") or self.ai_generated
            self.citations = event.get("citations") or self.citations
            for choice in event.get("choices") or []:
                if choice.get("index") != 0:
                    continue
                text = (choice.get("delta") or {}).get("content") or ""
                self.text += text
                lps = choice.get("logprobs")
                if lps is not None:
                    self.logprobs.extend(_token(t) for t in lps.get("content") or [])
                elif text:  # text without its log-probabilities: the policy changed it
                    self.withheld = True
                self.finish_reason = choice.get("finish_reason") or self.finish_reason

    def _status(self) -> str:
        if self.error is not None:
            return "failed"
        return "refused" if self.finish_reason == "content_filter" else "complete"

    async def save_streamed(self) -> dict:
        return await self.save(self._status(), self.error)

    async def save_completion(self, completion: p.ChatCompletion) -> dict:
        choice = completion.choices[0]
        self.text = choice.message.content or ""
        self.request_id, self.finish_reason = completion.id, choice.finish_reason
        self.ai_generated, self.citations = completion.ai_generated, completion.citations
        if choice.logprobs is None:
            self.withheld = True
        else:
            self.logprobs = [_token(t.model_dump()) for t in choice.logprobs.content or []]
        return await self.save(self._status(), None)

    async def save(self, status: str, error: str | None = None) -> dict | None:
        """Store the answer as it is now with ``status`` (once: later calls return the stored message)."""
        if self._claimed:
            return self.message
        self._claimed = True  # claimed before the first await: a cleanup running meanwhile does nothing
        record = self.request.state.audit_record
        state = self.request.app.state.clearlm
        governance = governance_summary(record.governance)
        meta = {
            "request_id": self.request_id or record.request_id,
            "finish_reason": self.finish_reason or ("cancelled" if status == "stopped" else None),
            "ai_generated": self.ai_generated or (disclosure.mark(state.model_id) if self.text else None),
            "logprobs": None if self.withheld or not self.logprobs else self.logprobs,
            "citations": self.citations,
            "governance": governance,
        }
        if error:
            meta["error"] = error
        store, cid = self.store, self.conversation_id

        def work() -> dict | None:
            if governance and governance["escalated"]:
                review_id = store.review_of(meta["request_id"])
                if review_id:
                    meta["review_id"] = review_id
            try:
                return store.append_message(cid, "assistant", self.text, status, meta)
            except ConversationNotFoundError:  # deleted while the answer was written: nothing to keep
                return None

        self.message = await anyio.to_thread.run_sync(work)
        return self.message


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def to_markdown(conv: dict) -> str:
    """``# title``, then ``## You`` / ``## Assistant (model)`` per message; under each answer, its status
    when it is not complete and the AI-disclosure line."""
    lines = [f"# {conv['title']}", "", f"_Exported {_now()} from clearlm._", ""]
    if conv["settings"].get("system_prompt"):
        lines += ["## System prompt", "", conv["settings"]["system_prompt"], ""]
    for m in conv["messages"]:
        meta = m["meta"]
        if m["role"] == "user":
            lines += ["## You", "", m["content"], ""]
            continue
        mark = meta.get("ai_generated") or {}
        who = f"Assistant ({mark['model']})" if mark.get("model") else "Assistant"
        if meta.get("reviewed_by"):
            who = f"Reviewer ({meta['reviewed_by']})"
        lines += [f"## {who}", "", m["content"], ""]
        if m["status"] != "complete":
            lines += [f"_({m['status']}{': ' + meta['error'] if meta.get('error') else ''})_", ""]
        if mark:
            lines += [
                f"> AI-generated by {mark.get('model')} ({mark.get('generator')}, {mark.get('created')}). "
                f"{mark.get('notice', disclosure.NOTICE)}",
                "",
            ]
    return "\n".join(lines)
