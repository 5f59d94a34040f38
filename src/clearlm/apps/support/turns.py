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
    and so withheld the log-probabilities); ``blocked``: the input policy blocked the turn (``text`` is
    its refusal)."""

    text: str
    request_id: str
    finish_reason: str | None
    escalated: bool = False
    citations: list[str] = field(default_factory=list)
    confidence: float | None = None
    blocked: bool = False


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

    def say(
        self,
        tenant: str,
        conversation_id: str,
        context: list[Message],
        text: str,
        screened: tuple[int, ...] = (),
    ) -> TurnOutcome:
        """``text`` (the desk's own words: a flow's reply, a person's) as a forced target after
        ``context``: redacted by the output policy and audited, not scanned as input (it is not the
        customer's); nothing is generated. ``screened``: see :meth:`generate`."""
        params = SamplingParams(max_new_tokens=1)
        kept = self.fit(context, len(self.backend.encode(text).token_ids))
        return self._run(tenant, conversation_id, "reply", context, kept, screened, params, target=text)

    def generate(
        self,
        tenant: str,
        conversation_id: str,
        context: list[Message],
        kind: str = "free",
        schema: str | None = None,
        retrieval: Retrieval | None = None,
        screened: tuple[int, ...] = (),
    ) -> TurnOutcome:
        """A generated answer to ``context`` (greedy, at most ``max_tokens``); ``schema`` (JSON Schema
        as text) constrains it to JSON; ``retrieval`` answers from a knowledge base with citations.

        The context's first message, when it is a system message, is the desk's own text: the pipeline
        takes it as the turn's ``instructions`` (not scanned: the classifier scores a support prompt's
        orders like an injection's). ``screened``: indices of ``context`` messages the desk stored after
        the policy checked them (its history; see ``TurnRequest.screened``); the others are scanned."""
        params = SamplingParams(
            max_new_tokens=self.max_tokens,
            json_output=JsonOutput(schema) if schema is not None else None,
            logprobs=0,  # each chosen token's log-probability: the reply's confidence
        )
        kept = self.fit(context, self.max_tokens)
        return self._run(tenant, conversation_id, kind, context, kept, screened, params, retrieval=retrieval)

    def fit(self, context: list[Message], reserve: int) -> list[int]:
        """The indices of the newest messages of ``context`` whose prompt leaves ``reserve`` tokens of
        the model's context: the oldest go first, then the system message; the last message is always
        kept (a prompt still too long is then refused by the pipeline: ContextLengthError)."""
        system = [0] if context and context[0].role == "system" else []
        rest = list(range(len(system), len(context)))
        limit = self.backend.context_length - reserve

        def fits(indices: list[int]) -> bool:
            return len(self.backend.encode([context[i] for i in indices]).token_ids) <= limit

        while len(rest) > 1 and not fits([*system, *rest]):
            rest = rest[1:]
        return [*system, *rest] if not rest or fits([*system, *rest]) else rest

    def _run(
        self,
        tenant: str,
        conversation_id: str,
        kind: str,
        context: list[Message],
        kept: list[int],
        screened: tuple[int, ...],
        params: SamplingParams,
        retrieval: Retrieval | None = None,
        target: str | None = None,
    ) -> TurnOutcome:
        record = self.record(tenant, conversation_id, kind)
        instructions = context[0].content if kept and kept[0] == 0 and context[0].role == "system" else None
        said = kept[1:] if instructions is not None else kept
        request = TurnRequest(
            [context[i] for i in said],
            params,
            retrieval=retrieval,
            target=target,
            origin={"support_conversation_id": conversation_id},
            instructions=instructions,
            screened=tuple(n for n, i in enumerate(said) if i in set(screened))
            + ((len(said),) if target is not None else ()),  # the target: the desk's own words
        )
        turn = start_turn(self.backend, request, record, self.audit, self.policy).run()
        choice = turn.choices[0]
        citations = [p.chunk_id for p in turn.grounding.passages] if turn.grounding else []
        escalated = _escalated_now(turn.record.governance, request.prompt)
        probs = [math.exp(lp.logprob) for lp in choice.logprobs]
        confidence = sum(probs) / len(probs) if probs else None
        return TurnOutcome(
            choice.text,
            record.request_id,
            choice.finish_reason,
            escalated,
            citations,
            confidence,
            blocked=((turn.record.governance or {}).get("input") or {}).get("action") == "block",
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
