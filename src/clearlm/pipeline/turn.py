"""The pipeline's turn: ``start_turn`` checks a request (every message, a forced target, the retrieved
passages) and returns a :class:`Turn`; iterating it streams the generation through the output policy;
closing it writes its one audit record."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TypeVar

from clearlm.errors import ClearlmError, ContextLengthError, InvalidInputError, PolicyViolationError
from clearlm.govern.base import Action, ScanContext
from clearlm.govern.policy import Policy
from clearlm.models.backends.base import Backend, Chunk, SamplingParams, TokenLogprob
from clearlm.models.chat import Message, Prompt, same_tools, tools_of, validate_prompt
from clearlm.pipeline import release
from clearlm.pipeline.grounding import NO_PASSAGES, Grounding, Retrieval, extracted, ground
from clearlm.store.audit import AuditLog, AuditRecord
from clearlm.store.review import add_escalated

MAX_CHOICES = 16
CONTENT_FILTER = "content_filter"  # the finish reason of an answer the policy replaced
FORCED = "forced"  # the finish reason of a target the caller gave (nothing generated)
CLIENT_CLOSED = 499  # nginx's status for a client that left before the response ended
T = TypeVar("T")
log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class TurnRequest:
    """A generation to run: ``prompt`` (text to continue, or chat messages), decoding ``params``, ``n``
    independent choices (seeded runs get seeds ``seed, seed + 1, ...``), optionally ``retrieval`` from a
    knowledge base, or a ``target``: a continuation the caller gives (to explain it), taken as the answer
    instead of generating one (finish reason "forced"; checked by both policies like any answer; an answer
    extracted from the passages, ``Retrieval.answer`` "extract", is such a target, finish reason "stop").
    ``origin``: where the request came from (the web chat passes ``{"conversation_id": id}``), kept in the
    review item of an escalated request so that a reviewer's answer can go back there.

    An application on the pipeline (the support desk) may pass what an API caller never can:
    ``instructions``, its own system text (written by its operator: a desk's prompt and notes it builds
    from its stored history), not scanned by the input policy, put before the prompt's messages as their
    system message (joined with the prompt's own system message, which is scanned) and kept in the audit
    record's ``parameters["instructions"]``; and ``screened``, the indices of the prompt's messages it
    stored after this policy checked them at an earlier turn (its history, already redacted), which are
    not scanned again: a history is not re-judged at every turn, and the cost of a turn does not grow
    with it. The application must keep a message whose turn the policy blocked out of later prompts.
    Index ``len(prompt)`` is the target: the application's own words (the output policy still checks
    them)."""

    prompt: Prompt
    params: SamplingParams
    n: int = 1
    retrieval: Retrieval | None = None
    target: str | None = None
    origin: dict | None = None
    instructions: str | None = None
    screened: tuple[int, ...] = ()


@dataclass(slots=True)
class Choice:
    """One choice's output so far. ``changed``: the output policy changed the text (redacted or replaced
    it), so its token log-probabilities are withheld (they would spell the original)."""

    index: int
    text: str = ""
    token_ids: list[int] = field(default_factory=list)
    logprobs: list[TokenLogprob] = field(default_factory=list)
    finish_reason: str | None = None
    changed: bool = False


class Turn:
    """A checked request, ready to stream. Iterate for ``(choice index, Chunk)`` pairs; ``close()``
    ends it early (the generation stops) and writes the audit record if it is not written yet. A
    ``deferred`` turn does not write its record when the generation ends: what follows (an explanation,
    citations) belongs to the same request, so :meth:`settle` or :meth:`close` writes it afterwards."""

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
        deferred: bool = False,
    ) -> None:
        self.backend = backend
        self.policy = policy
        self.refusal = refusal
        self.grounding = grounding
        self.request = request
        self.prompt_tokens = prompt_tokens
        self.choices = [Choice(i) for i in range(request.n)]
        self.record = record
        self.deferred = deferred
        self.review_id: str | None = None  # the review item of an escalated turn, once its record is written
        self._audit = audit
        self._stream: Iterator[Chunk] | None = None
        self._done = False

    @property
    def completion_tokens(self) -> int:
        return sum(len(c.token_ids) for c in self.choices)

    def __iter__(self) -> Iterator[tuple[int, Chunk]]:
        """Each choice's chunks in turn. Without an output policy they pass as they come; under one that may
        block, a choice is held back whole and checked (one chunk); under one that only redacts, warns or
        escalates, it is released a sentence at a time, each part checked (``pipeline.release``)."""
        held = self.policy is not None and bool(self.policy.spec.output) and not release.streams(self.policy)
        try:
            for choice in self.choices:
                if self.refusal is not None:  # the input policy blocked the request: nothing is generated
                    choice.text, choice.finish_reason = self.refusal, CONTENT_FILTER
                    yield choice.index, Chunk(self.refusal, (), CONTENT_FILTER)
                    continue
                if self.request.target is not None:  # the caller's answer, checked like a generated one
                    quoted = self.request.retrieval is not None and self.request.retrieval.answer == "extract"
                    choice.text, choice.finish_reason = self.request.target, "stop" if quoted else FORCED
                    if self.policy is not None and self.policy.spec.output:
                        self._check_output(choice)
                    yield choice.index, Chunk(choice.text, (), choice.finish_reason)
                    continue
                params = self.request.params
                if params.seed is not None and choice.index:
                    params = dataclasses.replace(params, seed=params.seed + choice.index)
                self._stream = self.backend.stream(self.request.prompt, params)
                if release.streams(self.policy):
                    yield from self._released(choice)
                    continue
                for chunk in self._stream:
                    choice.text += chunk.text
                    choice.token_ids.extend(chunk.token_ids)
                    choice.logprobs.extend(chunk.logprobs)
                    choice.finish_reason = chunk.finish_reason or choice.finish_reason
                    if not held:  # an output policy that may block sees the whole text before any is sent
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
        if not self.deferred:
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

    def settle(self, work: Callable[[], T]) -> T:
        """Run ``work()`` (what the response carries besides the answer), then write the record with its
        outcome: 200, or the status of the exception it raised (500 for one not clearlm's own)."""
        try:
            out = work()
        except ClearlmError as exc:
            self.close(exc.status_code, str(exc))
            raise
        except Exception as exc:
            self.close(500, f"{exc.__class__.__name__}: {exc}")
            raise
        self.close(200, None)
        return out

    def note(self, notes: list[dict]) -> None:
        """Add the output policy's findings on other returned fields (``governance["returned"]``) to the
        record, if it is not written yet (a deferred turn's is not)."""
        if notes and not self._done:
            governance = self.record.governance or {"policy": self.policy.name}
            governance.setdefault("returned", []).extend(notes)
            self.record.governance = governance

    def _released(self, choice: Choice) -> Iterator[tuple[int, Chunk]]:
        """The choice's generation, released a checked part at a time (see ``pipeline.release``)."""
        released, pending, at, parts = "", "", 0, []
        ids: list[int] = []
        lps: list[TokenLogprob] = []
        for chunk in self._stream:
            pending += chunk.text
            ids += chunk.token_ids
            lps += chunk.logprobs
            choice.token_ids.extend(chunk.token_ids)
            choice.finish_reason = chunk.finish_reason or choice.finish_reason
            cut = len(pending) if choice.finish_reason else release.release_point(pending)
            if cut or choice.finish_reason:
                raw, pending, text = pending[:cut], pending[cut:], ""
                if raw:
                    decision = self.policy.check(raw, ScanContext("output", "assistant"))
                    parts.append((at, decision))
                    at, text = at + len(raw), decision.text
                    if text != raw:
                        choice.changed, lps = True, []
                released += text
                choice.logprobs += lps
                part = Chunk(text, tuple(ids), chunk.finish_reason, tuple(lps))
                ids, lps = [], []
                choice.text = released + pending
                yield choice.index, part
            choice.text = released + pending
        self._stream = None
        if choice.changed:
            choice.logprobs = []
        if parts:
            self._record_output(choice, release.joined(parts))

    def _check_output(self, choice: Choice) -> None:
        raw = choice.text
        decision = self.policy.check(choice.text, ScanContext("output", "assistant"))
        self._record_output(choice, decision)
        if decision.blocked:
            choice.text, choice.finish_reason = self.policy.spec.refusal, CONTENT_FILTER
        else:
            choice.text = decision.text
        if choice.text != raw:
            choice.changed, choice.logprobs = True, []

    def _record_output(self, choice: Choice, decision) -> None:
        governance = self.record.governance or {"policy": self.policy.name}
        governance.setdefault("output", []).append({"choice": choice.index, **decision.to_dict()})
        _mark_escalated(governance, decision)
        self.record.governance = governance

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
        r.status_code, r.error = status_code, _stored_error(self.policy, error)
        r.latency_ms = _since(r)
        if self._audit is not None:
            self._audit.write(r)
            if r.governance and r.governance.get("escalated"):  # flagged for a human: the review queue
                try:
                    self.review_id = add_escalated(self._audit.db, r, self.request.origin).id
                except Exception:
                    log.exception("cannot queue the escalated request %s for review", r.request_id)


def start_turn(
    backend: Backend,
    request: TurnRequest,
    record: AuditRecord,
    audit: AuditLog | None = None,
    policy: Policy | None = None,
    deferred: bool = False,
) -> Turn:
    """Check ``request`` and return its :class:`Turn` (nothing is generated until it is iterated).

    ``record`` is the request's audit record, already holding its id, time, endpoint and key; the turn
    fills in the rest and writes it to ``audit`` (None: not recorded, e.g. in library use). ``policy``
    scans every message (each with its role), the target, and each retrieved passage (role "document":
    a blocked passage is quarantined, left out of the prompt, and named in ``governance["documents"]``)
    first, redacting, blocking or escalating as it says, and the output after; a blocked request is
    answered with the policy's refusal (finish reason "content_filter") or, with ``on_block: error``,
    refused with PolicyViolationError. When every passage is quarantined the answer says so
    (``NO_PASSAGES``, finish reason "content_filter") without generating. ``deferred``: see :class:`Turn`.

    Raises:
        InvalidInputError: an empty prompt or target, ``n`` out of range; ContextLengthError: the prompt
            plus ``max_new_tokens`` (or the target) exceed the model's context; PolicyViolationError. A
            refused request, and one failing with any other exception, is recorded before raising.
    """
    record.model = backend.name
    if request.target is None:
        record.parameters = {"n": request.n, **_parameters(request.params)}
    else:
        record.parameters = {"forced_target": True}
    record.prompt = None
    if tools_of(request.prompt):  # the functions offered (their definitions are in the prompt)
        record.parameters["tools"] = [t["function"]["name"] for t in tools_of(request.prompt)]
    refusal = grounding = None
    try:
        if request.instructions is not None:
            if isinstance(request.prompt, str) or not request.instructions.strip():
                raise InvalidInputError("instructions need a chat prompt (messages) and some text")
            record.parameters["instructions"] = request.instructions
        validate_prompt(
            request.prompt
            if request.instructions is None
            else _instructed(request.prompt, request.instructions)
        )
        if not 1 <= request.n <= MAX_CHOICES:
            raise InvalidInputError(f"n must be between 1 and {MAX_CHOICES}, got {request.n}")
        if request.target is not None and (request.n != 1 or not request.target.strip()):
            raise InvalidInputError(
                "the target is empty (it tokenizes to nothing): give a non-empty target text, with n = 1"
            )
        if policy is None:
            record.prompt = _prompt_json(request.prompt)
        else:
            prompt, stored, target, decision = _check_input(
                policy, request.prompt, request.target, set(request.screened)
            )
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
            request = dataclasses.replace(request, prompt=prompt, target=target)
        if request.instructions is not None:
            request = dataclasses.replace(request, prompt=_instructed(request.prompt, request.instructions))
        if request.retrieval is not None and refusal is None:
            grounding, screened = ground(request.prompt, request.retrieval, policy)
            record.parameters["retrieval"] = {
                "knowledge_base": grounding.knowledge_base,
                "k": request.retrieval.k,
                "mode": request.retrieval.mode,
                "passages": [p.chunk_id for p in grounding.passages],
                "quarantined": [p.chunk_id for p in grounding.quarantined],
            }
            if screened:
                record.governance["documents"] = screened
                if any(d["action"] == Action.ESCALATE for d in screened):
                    record.governance["escalated"] = True
            if grounding.passages:
                prompt = grounding.sources.render([True] * len(grounding.passages))
                request = dataclasses.replace(request, prompt=prompt)
                if request.retrieval.answer == "extract":  # quoted from the passages, not generated
                    target = extracted(grounding, request.retrieval.knowledge_base)
                    request = dataclasses.replace(request, target=target, n=1)
                    record.parameters = {"forced_target": True, **record.parameters, "answer": "extract"}
            else:
                refusal = NO_PASSAGES
        prompt_tokens = len(backend.encode(request.prompt).token_ids)
        if request.target is None:
            wanted = prompt_tokens + request.params.max_new_tokens
        else:
            wanted = prompt_tokens + len(backend.encode(request.target).token_ids)
        extract = request.retrieval is not None and request.retrieval.answer == "extract"
        if wanted > backend.context_length and not extract:  # an extracted answer reads no prompt
            raise ContextLengthError(
                f"this model's context holds {backend.context_length:,} tokens, but {wanted:,} were asked for "
                f"({prompt_tokens:,} in the prompt, {wanted - prompt_tokens:,} to generate or force): "
                "shorten the prompt or lower max_tokens"
            )
    except ClearlmError as exc:
        _refused(record, audit, policy, request.prompt, exc.status_code, str(exc))
        raise
    except Exception as exc:  # a fault (a scanner, the tokenizer, the index): recorded all the same
        _refused(record, audit, policy, request.prompt, 500, f"{exc.__class__.__name__}: {exc}")
        raise
    return Turn(backend, request, prompt_tokens, record, audit, policy, refusal, grounding, deferred)


def _refused(record, audit, policy, prompt, status_code: int, error: str) -> None:
    """Write the record of a request that never became a turn (its prompt stored as the policy says)."""
    if record.prompt is None and policy is not None and policy.spec.store_redacted:
        try:
            record.prompt = _prompt_json(_stored(policy, prompt))
        except Exception:  # the redaction itself failed: store nothing rather than the raw text
            record.prompt = None
    elif record.prompt is None:
        record.prompt = _prompt_json(prompt)
    record.status_code, record.error = status_code, _stored_error(policy, error)
    record.latency_ms = _since(record)
    if audit is not None:
        audit.write(record)


def _stored_error(policy: Policy | None, error: str | None) -> str | None:
    """An error message as the audit log may keep it: messages quote input (an exception's text, say), so
    with ``store_redacted`` it is redacted like the prompt; if that fails, only its first word is kept."""
    if error is None or policy is None:
        return error
    try:
        return policy.stored(error)
    except Exception:
        return error.split(":", 1)[0]


def _stored(policy: Policy, prompt: Prompt) -> Prompt:
    if isinstance(prompt, str):
        return policy.stored(prompt)
    return same_tools(
        prompt,
        [
            dataclasses.replace(
                m,
                content=policy.stored(m.content),
                tool_calls=tuple(
                    dataclasses.replace(c, arguments=policy.stored(c.arguments)) for c in m.tool_calls
                ),
            )
            for m in prompt
        ],
    )


def _instructed(prompt: Prompt, instructions: str) -> Prompt:
    """``prompt`` with ``instructions`` first in its system message (a new one when it has none)."""
    messages = list(prompt)
    if messages and messages[0].role == "system":
        first = dataclasses.replace(messages[0], content=f"{instructions}\n\n{messages[0].content}")
        return same_tools(prompt, [first, *messages[1:]])
    return same_tools(prompt, [Message("system", instructions), *messages])


def _check_input(
    policy: Policy, prompt: Prompt, target: str | None = None, screened: set[int] = frozenset()
) -> tuple[Prompt, Prompt, str | None, dict]:
    """Scan every message, whatever its role (system, user and assistant content from an API caller is
    all model input), but those ``screened`` (see ``TurnRequest``), and the target (role "assistant");
    return the prompt to use, the prompt to store, the target to use, and the decision: the most severe
    action and each scanned text's results (``message``: its index; ``target``: true for the target)."""
    texts = [("user", prompt)] if isinstance(prompt, str) else [(m.role, m.content) for m in prompt]
    if target is not None:
        texts.append(("assistant", target))
    used, stored, results, action = [], [], [], Action.ALLOW
    for i, (role, text) in enumerate(texts):
        if i in screened:
            used.append(text)
            stored.append(text)
            continue
        d = policy.check(text, ScanContext("input", role))
        used.append(d.text)
        stored.append(d.stored)
        if target is not None and i == len(texts) - 1:
            where = {"target": True}
        else:
            where = {} if isinstance(prompt, str) else {"message": i}
        results += [{**where, **r} for r in d.to_dict()["results"]]
        action = d.action if d.action.severity > action.severity else action
    new_target = used.pop() if target is not None else None
    stored_prompt: Prompt
    if isinstance(prompt, str):
        new_prompt, stored_prompt = used[0], stored[0]
    else:
        new_prompt = same_tools(
            prompt, [dataclasses.replace(m, content=t) for m, t in zip(prompt, used, strict=True)]
        )
        stored_prompt = same_tools(
            prompt, [dataclasses.replace(m, content=t) for m, t in zip(prompt, stored, strict=False)]
        )
        for i, m in enumerate(prompt):  # the calls an assistant message made: their arguments are input too
            if not m.tool_calls or i in screened:
                continue
            calls_used, calls_stored = [], []
            for j, c in enumerate(m.tool_calls):
                d = policy.check(c.arguments, ScanContext("input", "assistant"))
                results += [{"message": i, "tool_call": j, **r} for r in d.to_dict()["results"]]
                action = d.action if d.action.severity > action.severity else action
                calls_used.append(dataclasses.replace(c, arguments=_json_or(d.text, c.arguments)))
                calls_stored.append(dataclasses.replace(c, arguments=d.stored))
            new_prompt[i] = dataclasses.replace(new_prompt[i], tool_calls=tuple(calls_used))
            stored_prompt[i] = dataclasses.replace(stored_prompt[i], tool_calls=tuple(calls_stored))
    return new_prompt, stored_prompt, new_target, {"action": action.value, "results": results}


def _json_or(text: str, original: str) -> str:
    """``text`` (redacted arguments) if it is still a JSON object, else ``original``."""
    import json

    try:
        return text if isinstance(json.loads(text), dict) else original
    except json.JSONDecodeError:
        return original


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
    return [_message_json(m) for m in prompt if isinstance(m, Message)]


def _message_json(m: Message) -> dict:
    """A message as the audit record keeps it: role and content, the calls an assistant message made
    (their arguments stored as the policy stores text, as the tool results' content is), and the call a
    tool message answers."""
    out: dict = {"role": m.role, "content": m.content}
    if m.tool_calls:
        out["tool_calls"] = [{"id": c.id, "name": c.name, "arguments": c.arguments} for c in m.tool_calls]
    if m.tool_call_id is not None:
        out["tool_call_id"] = m.tool_call_id
    return out
