"""The one turn every generation goes through, whatever the entry point (CLI, HTTP API, applications):

    request -> input checks and policy -> context (retrieved passages) -> generate (backend)
            -> output policy -> audit record -> response

so that no new entry point can skip the checks or the audit log. ``start_turn`` checks a request and
returns a :class:`Turn`; iterating the turn streams the generation; closing it (or reaching its end)
writes its one audit record. A request refused by the checks is recorded too.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from clearlm.errors import ClearlmError, ContextLengthError, InvalidInputError, PolicyViolationError
from clearlm.govern.base import Action, ScanContext
from clearlm.govern.policy import Policy
from clearlm.models.backends.base import Backend, Chunk, SamplingParams, TokenLogprob
from clearlm.models.chat import Message, Prompt, validate_prompt
from clearlm.store.audit import AuditLog, AuditRecord

MAX_CHOICES = 16
CONTENT_FILTER = "content_filter"  # the finish reason of an answer the policy replaced
CLIENT_CLOSED = 499  # nginx's status for a client that left before the response ended


@dataclass(frozen=True, slots=True)
class Retrieval:
    """Answer from a knowledge base (retrieval-augmented generation, Lewis et al. 2020): the last user
    message is the query, and the ``k`` passages that ``mode`` retrieval finds go into the prompt numbered
    for citation (``clearlm.knowledge.answer.passage_sources``). ``knowledge_base`` is an open
    ``clearlm.knowledge.KnowledgeBase``."""

    knowledge_base: Any
    k: int = 5
    mode: str = "hybrid"


@dataclass(frozen=True, slots=True)
class Grounding:
    """What a turn with :class:`Retrieval` answered from: the question (after input redaction), the
    passages in the order they are numbered, the prompt's sources for context attribution, and retrieval's
    warnings (e.g. a query cut to the embedding model's length)."""

    knowledge_base: str
    question: str
    passages: tuple
    sources: Any  # clearlm.explain.context.ContextSources
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class TurnRequest:
    """A generation to run: ``prompt`` (text to continue, or chat messages), decoding ``params``, ``n``
    independent choices (seeded runs get seeds ``seed, seed + 1, ...``), and optionally ``retrieval``
    from a knowledge base."""

    prompt: Prompt
    params: SamplingParams
    n: int = 1
    retrieval: Retrieval | None = None


@dataclass(slots=True)
class Choice:
    """One choice's output so far."""

    index: int
    text: str = ""
    token_ids: list[int] = field(default_factory=list)
    logprobs: list[TokenLogprob] = field(default_factory=list)
    finish_reason: str | None = None


class Turn:
    """A checked request, ready to stream. Iterate for ``(choice index, Chunk)`` pairs; ``close()``
    ends it early (the generation stops) and writes the audit record if it is not written yet."""

    def __init__(
        self,
        backend: Backend,
        request: TurnRequest,
        prompt_tokens: int,
        record: AuditRecord,
        audit,
        policy: Policy | None = None,
        refusal: str | None = None,
        grounding: Grounding | None = None,
    ) -> None:
        self.backend = backend
        self.policy = policy
        self.refusal = refusal
        self.grounding = grounding
        self.request = request
        self.prompt_tokens = prompt_tokens
        self.choices = [Choice(i) for i in range(request.n)]
        self.record = record
        self._audit = audit
        self._stream: Iterator[Chunk] | None = None
        self._done = False

    @property
    def completion_tokens(self) -> int:
        return sum(len(c.token_ids) for c in self.choices)

    def __iter__(self) -> Iterator[tuple[int, Chunk]]:
        try:
            for choice in self.choices:
                if self.refusal is not None:  # the input policy blocked the request: nothing is generated
                    choice.text, choice.finish_reason = self.refusal, CONTENT_FILTER
                    yield choice.index, Chunk(self.refusal, (), CONTENT_FILTER)
                    continue
                params = self.request.params
                if params.seed is not None and choice.index:
                    params = dataclasses.replace(params, seed=params.seed + choice.index)
                self._stream = self.backend.stream(self.request.prompt, params)
                held = self.policy is not None and bool(self.policy.spec.output)
                for chunk in self._stream:
                    choice.text += chunk.text
                    choice.token_ids.extend(chunk.token_ids)
                    choice.logprobs.extend(chunk.logprobs)
                    choice.finish_reason = chunk.finish_reason or choice.finish_reason
                    if not held:  # an output policy must see the whole text before any of it is sent
                        yield choice.index, chunk
                self._stream = None
                if held:
                    self._check_output(choice)
                    yield (
                        choice.index,
                        Chunk(
                            choice.text, tuple(choice.token_ids), choice.finish_reason, tuple(choice.logprobs)
                        ),
                    )
        except ClearlmError as exc:
            self._finish(exc.status_code, str(exc))
            raise
        except Exception as exc:
            self._finish(500, f"{exc.__class__.__name__}: {exc}")
            raise
        self._finish(200, None)

    def run(self) -> Turn:
        """Run to the end (non-streaming)."""
        for _ in self:
            pass
        return self

    def close(self, status_code: int = CLIENT_CLOSED, error: str | None = "the client closed the request"):
        """End the turn: stop a generation still running and record it as ``status_code``."""
        if self._stream is not None:
            self._stream.close()  # type: ignore[attr-defined]
            self._stream = None
        if not self._done:
            self._finish(status_code, error)

    def _check_output(self, choice: Choice) -> None:
        decision = self.policy.check(choice.text, ScanContext("output", "assistant"))
        governance = self.record.governance or {"policy": self.policy.name}
        governance.setdefault("output", []).append({"choice": choice.index, **decision.to_dict()})
        _mark_escalated(governance, decision)
        self.record.governance = governance
        if decision.blocked:
            choice.text, choice.finish_reason = self.policy.spec.refusal, CONTENT_FILTER
        else:
            choice.text = decision.text

    def _finish(self, status_code: int, error: str | None) -> None:
        if self._done:
            return
        self._done = True
        r = self.record
        outputs = [c.text if self.policy is None else self.policy.stored(c.text) for c in self.choices]
        reasons = [c.finish_reason or "cancelled" for c in self.choices]
        r.output = outputs[0] if len(outputs) == 1 else outputs
        r.finish_reason = reasons[0] if len(set(reasons)) == 1 else ",".join(reasons)
        r.prompt_tokens, r.completion_tokens = self.prompt_tokens, self.completion_tokens
        r.status_code, r.error = status_code, error
        r.latency_ms = _since(r)
        if self._audit is not None:
            self._audit.write(r)


def start_turn(
    backend: Backend,
    request: TurnRequest,
    record: AuditRecord,
    audit: AuditLog | None = None,
    policy: Policy | None = None,
) -> Turn:
    """Check ``request`` and return its :class:`Turn` (nothing is generated until it is iterated).

    ``record`` is the request's audit record, already holding its id, time, endpoint and key; the turn
    fills in the rest and writes it to ``audit`` (None: not recorded, e.g. in library use). ``policy``
    scans the user's messages first (redacting, blocking or escalating as it says) and the output after;
    a blocked request is answered with the policy's refusal (finish reason "content_filter") or, with
    ``on_block: error``, refused with PolicyViolationError.

    Raises:
        InvalidInputError: an empty prompt, ``n`` out of range; ContextLengthError: the prompt plus
            ``max_new_tokens`` exceed the model's context; PolicyViolationError. A refused request is
            recorded before raising.
    """
    record.model = backend.name
    record.parameters = {"n": request.n, **_parameters(request.params)}
    record.prompt = _prompt_json(request.prompt)
    refusal = grounding = None
    try:
        validate_prompt(request.prompt)
        if not 1 <= request.n <= MAX_CHOICES:
            raise InvalidInputError(f"n must be between 1 and {MAX_CHOICES}, got {request.n}")
        if policy is not None:
            prompt, stored, decision = _check_input(policy, request.prompt)
            record.prompt = _prompt_json(stored)
            record.governance = {"policy": policy.name, "input": decision}
            _mark_escalated(record.governance, decision)
            if decision["action"] == Action.BLOCK:
                found = sorted({f["type"] for r in decision["results"] for f in r["findings"]})
                if policy.spec.on_block == "error":
                    raise PolicyViolationError(
                        f"the request was blocked by the {policy.name!r} policy ({', '.join(found)})"
                    )
                refusal = policy.spec.refusal
            request = dataclasses.replace(request, prompt=prompt)
        if request.retrieval is not None and refusal is None:
            grounding = _ground(request.prompt, request.retrieval)
            record.parameters["retrieval"] = {
                "knowledge_base": grounding.knowledge_base,
                "k": request.retrieval.k,
                "mode": request.retrieval.mode,
                "passages": [p.chunk_id for p in grounding.passages],
            }
            prompt = grounding.sources.render([True] * len(grounding.passages))
            request = dataclasses.replace(request, prompt=prompt)
        prompt_tokens = len(backend.encode(request.prompt).token_ids)
        wanted = prompt_tokens + request.params.max_new_tokens
        if wanted > backend.context_length:
            raise ContextLengthError(
                f"this model's context holds {backend.context_length:,} tokens, but {wanted:,} were asked for "
                f"({prompt_tokens:,} in the prompt, {request.params.max_new_tokens:,} to generate): "
                "shorten the prompt or lower max_tokens"
            )
    except ClearlmError as exc:
        record.status_code, record.error = exc.status_code, str(exc)
        record.latency_ms = _since(record)
        if audit is not None:
            audit.write(record)
        raise
    return Turn(backend, request, prompt_tokens, record, audit, policy, refusal, grounding)


def _ground(prompt: Prompt, retrieval: Retrieval) -> Grounding:
    """Retrieve passages for the last user message and build the prompt that cites them."""
    from clearlm.knowledge.answer import passage_sources

    messages = [Message("user", prompt)] if isinstance(prompt, str) else list(prompt)
    if not messages or messages[-1].role != "user":
        raise InvalidInputError("to answer from a knowledge base, end the messages with the user's question")
    kb, question = retrieval.knowledge_base, messages[-1].content
    found = kb.search(question, k=retrieval.k, mode=retrieval.mode)
    if not found.passages:
        raise InvalidInputError(
            f"the knowledge base {kb.name!r} holds no documents to answer from: add some first"
        )
    sources = passage_sources(question, found.passages, history=messages[:-1])
    return Grounding(kb.name, question, tuple(found.passages), sources, tuple(found.warnings))


def _check_input(policy: Policy, prompt: Prompt) -> tuple[Prompt, Prompt, dict]:
    """Scan the user's text (every user message); return the prompt to use, the prompt to store, and the
    decision: the most severe action and each scanned message's results."""
    if isinstance(prompt, str):
        d = policy.check(prompt, ScanContext("input", "user"))
        return d.text, d.stored, {"action": d.action.value, "results": d.to_dict()["results"]}
    used, stored, results, action = [], [], [], Action.ALLOW
    for i, m in enumerate(prompt):
        if m.role != "user":
            used.append(m)
            stored.append(Message(m.role, policy.stored(m.content)))
            continue
        d = policy.check(m.content, ScanContext("input", "user"))
        used.append(Message(m.role, d.text))
        stored.append(Message(m.role, d.stored))
        results += [{"message": i, **r} for r in d.to_dict()["results"]]
        action = d.action if d.action.severity > action.severity else action
    return used, stored, {"action": action.value, "results": results}


def _mark_escalated(governance: dict, decision) -> None:
    action = decision["action"] if isinstance(decision, dict) else decision.action.value
    if action == Action.ESCALATE:
        governance["escalated"] = True


def _since(record: AuditRecord) -> float:
    """Milliseconds from the request's arrival until now."""
    return (datetime.now(UTC) - record.created_at).total_seconds() * 1000


def _parameters(params: SamplingParams) -> dict:
    out = dataclasses.asdict(params)
    out["stop"] = list(params.stop)
    if params.json_output is not None:
        out["json_output"] = {"schema": params.json_output.schema}
    return out


def _prompt_json(prompt: Prompt) -> object:
    if isinstance(prompt, str):
        return prompt
    return [{"role": m.role, "content": m.content} for m in prompt if isinstance(m, Message)]


def explain_turn(explainer, turn: Turn, method: str, options: dict | None = None):
    """Explain a finished turn's first choice: its text forced as the target of ``method``
    (see ``clearlm.explain.explain``), holding the explainer's lock.

    Raises:
        InvalidInputError: an unknown method or option, or an empty answer (nothing to explain).
    """
    from clearlm.explain import explain

    with explainer.lock:
        return explain(explainer, turn.request.prompt, turn.choices[0].text, method=method, **(options or {}))


def cite_turn(explainer, turn: Turn, index: int = 0, **options):
    """The citations in choice ``index`` of a turn that answered from a knowledge base, mapped to the
    passages it was given; with an ``explainer`` (a torch backend of the served model), also how much the
    answer relied on each passage (``clearlm.knowledge.answer.cite``; ``options`` are its ablations,
    gradient, relied_threshold, seed).

    Raises:
        InvalidInputError: the turn did not answer from a knowledge base.
    """
    from clearlm.knowledge.answer import cite

    g = turn.grounding
    if g is None:
        raise InvalidInputError("this turn did not answer from a knowledge base: there is nothing to cite")
    choice = turn.choices[index]
    same_model = explainer is turn.backend
    return cite(
        explainer,
        g.question,
        list(g.passages),
        choice.text,
        token_ids=choice.token_ids if same_model and choice.finish_reason != CONTENT_FILTER else None,
        sources=g.sources,
        model=turn.backend.name,
        finish_reason=choice.finish_reason or "stop",
        **options,
    )
