"""The desk's pipeline turns: every text the desk sends a customer, and every question it asks the model,
is one :func:`clearlm.pipeline.start_turn` with its own audit record (DESIGN: "One path for every turn").

The desk never calls a backend, applies a policy or writes the audit log itself: it builds a
:class:`~clearlm.pipeline.TurnRequest` from the conversation (the customer's own recent messages, never
another customer's) and the pipeline checks, generates, redacts and records it. A flow's fixed reply is a
*forced target* (``TurnRequest.target``): nothing is generated, but the output policy checks it (PII
redacted) and the turn is audited like any answer.

Each record's ``request_id`` is ``<conversation id>-<12 hex digits>`` and its ``endpoint``
``support:<kind>`` (``reply``, ``free``, ``extract``, ``answer``), so a conversation's turns can be
counted in the audit log.
"""

from __future__ import annotations

import math
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime

from clearlm.models.backends.base import JsonOutput, SamplingParams
from clearlm.models.chat import Message
from clearlm.pipeline import Retrieval, TurnRequest, start_turn
from clearlm.store.audit import AuditLog, AuditRecord

SYSTEM_PROMPT = (
    "You are the support assistant of a shop. Answer the customer briefly and politely, in their "
    "language. Never invent order details; say a colleague will help when you are unsure."
)


@dataclass(frozen=True, slots=True)
class TurnOutcome:
    """What a desk turn gave: ``text`` (as the customer may see it: redacted by the output policy, or the
    policy's refusal); ``request_id`` (its audit record); ``finish_reason``; ``escalated``: the policy
    escalated the turn for its new words (see ``_escalated_now``; the desk then hands off);
    ``citations``: the passages' ids of a knowledge-base answer; ``confidence``: the mean probability of
    the generated tokens (0-1; None when nothing was generated, or the output policy changed the text
    and so withheld the log-probabilities)."""

    text: str
    request_id: str
    finish_reason: str | None
    escalated: bool = False
    citations: list[str] = field(default_factory=list)
    confidence: float | None = None


@dataclass(slots=True)
class TurnRunner:
    """Runs the desk's turns on ``backend`` under ``policy`` (None: none), recording to ``audit`` (None:
    not recorded: library use without a database log). ``max_tokens``: the most tokens a generated reply
    may take; ``api_key_id``: the caller, copied into every record."""

    backend: object
    audit: AuditLog | None = None
    policy: object | None = None
    max_tokens: int = 128
    api_key_id: str | None = None

    def record(self, tenant: str, conversation_id: str, kind: str) -> AuditRecord:
        return AuditRecord(
            request_id=f"{conversation_id}-{secrets.token_hex(6)}",
            created_at=datetime.now(UTC),
            endpoint=f"support:{kind}",
            api_key_id=self.api_key_id,
            tenant=tenant,
        )

    def say(self, tenant: str, conversation_id: str, context: list[Message], text: str) -> TurnOutcome:
        """``text`` (a flow's reply) as a forced target after ``context``: checked by both policies and
        audited; nothing is generated."""
        params = SamplingParams(max_new_tokens=1)
        context = self.fit(context, len(self.backend.encode(text).token_ids))
        return self._run(tenant, conversation_id, "reply", TurnRequest(context, params, target=text))

    def generate(
        self,
        tenant: str,
        conversation_id: str,
        context: list[Message],
        kind: str = "free",
        schema: str | None = None,
        retrieval: Retrieval | None = None,
    ) -> TurnOutcome:
        """A generated answer to ``context`` (greedy, at most ``max_tokens``); ``schema`` (JSON Schema
        as text) constrains it to JSON; ``retrieval`` answers from a knowledge base with citations."""
        params = SamplingParams(
            max_new_tokens=self.max_tokens,
            json_output=JsonOutput(schema) if schema is not None else None,
            logprobs=0,  # each chosen token's log-probability: the reply's confidence
        )
        context = self.fit(context, self.max_tokens)
        request = TurnRequest(context, params, retrieval=retrieval)
        return self._run(tenant, conversation_id, kind, request)

    def fit(self, context: list[Message], reserve: int) -> list[Message]:
        """The newest messages of ``context`` whose prompt leaves ``reserve`` tokens of the model's
        context: the oldest go first, then the system message; the last message is always kept (a
        prompt still too long is then refused by the pipeline: ContextLengthError)."""
        system = [m for m in context[:1] if m.role == "system"]
        rest = context[len(system) :]
        limit = self.backend.context_length - reserve

        def fits(messages: list[Message]) -> bool:
            return len(self.backend.encode(messages).token_ids) <= limit

        while len(rest) > 1 and not fits([*system, *rest]):
            rest = rest[1:]
        return [*system, *rest] if not rest or fits([*system, *rest]) else rest

    def _run(self, tenant: str, conversation_id: str, kind: str, request: TurnRequest) -> TurnOutcome:
        record = self.record(tenant, conversation_id, kind)
        request = TurnRequest(
            request.prompt,
            request.params,
            retrieval=request.retrieval,
            target=request.target,
            origin={"support_conversation_id": conversation_id},
        )
        turn = start_turn(self.backend, request, record, self.audit, self.policy).run()
        choice = turn.choices[0]
        citations = [p.chunk_id for p in turn.grounding.passages] if turn.grounding else []
        escalated = _escalated_now(turn.record.governance, request.prompt)
        probs = [math.exp(lp.logprob) for lp in choice.logprobs]
        confidence = sum(probs) / len(probs) if probs else None
        return TurnOutcome(
            choice.text, record.request_id, choice.finish_reason, escalated, citations, confidence
        )


def _escalated_now(governance: dict | None, prompt) -> bool:
    """Whether the policy escalated this turn for what is new in it: the last message (the customer's
    latest words, or the reply being said), the answer, or a retrieved passage. A finding in an older
    message of the history does not count again (it escalated its own turn already), so a conversation
    handed back is not handed off again for the same words."""
    if not governance or not governance.get("escalated"):
        return False
    last = len(prompt) - 1 if isinstance(prompt, list) else 0
    fresh = [
        r
        for r in (governance.get("input") or {}).get("results", [])
        if r.get("target") or r.get("message", last) == last
    ]
    stages = [fresh, *[d.get("results", []) for d in governance.get("output", [])]]
    stages.append([d for d in governance.get("documents", [])])
    return any(r.get("action") == "escalate" for results in stages for r in results)
