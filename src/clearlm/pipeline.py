"""The one turn every generation goes through, whatever the entry point (CLI, HTTP API, applications):

    request -> input checks -> generate (backend) -> output -> audit record -> response

so that no new entry point can skip the checks or the audit log. ``start_turn`` checks a request and
returns a :class:`Turn`; iterating the turn streams the generation; closing it (or reaching its end)
writes its one audit record. A request refused by the checks is recorded too.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

from clearlm.errors import ClearlmError, ContextLengthError, InvalidInputError
from clearlm.models.backends.base import Backend, Chunk, SamplingParams, TokenLogprob
from clearlm.models.chat import Message, Prompt, validate_prompt
from clearlm.store.audit import AuditLog, AuditRecord

MAX_CHOICES = 16
CLIENT_CLOSED = 499  # nginx's status for a client that left before the response ended


@dataclass(frozen=True, slots=True)
class TurnRequest:
    """A generation to run: ``prompt`` (text to continue, or chat messages), decoding ``params``, and
    ``n`` independent choices (seeded runs get seeds ``seed, seed + 1, ...``)."""

    prompt: Prompt
    params: SamplingParams
    n: int = 1


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
        self, backend: Backend, request: TurnRequest, prompt_tokens: int, record: AuditRecord, audit
    ) -> None:
        self.backend = backend
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
                params = self.request.params
                if params.seed is not None and choice.index:
                    params = dataclasses.replace(params, seed=params.seed + choice.index)
                self._stream = self.backend.stream(self.request.prompt, params)
                for chunk in self._stream:
                    choice.text += chunk.text
                    choice.token_ids.extend(chunk.token_ids)
                    choice.logprobs.extend(chunk.logprobs)
                    choice.finish_reason = chunk.finish_reason or choice.finish_reason
                    yield choice.index, chunk
                self._stream = None
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

    def _finish(self, status_code: int, error: str | None) -> None:
        if self._done:
            return
        self._done = True
        r = self.record
        outputs = [c.text for c in self.choices]
        reasons = [c.finish_reason or "cancelled" for c in self.choices]
        r.output = outputs[0] if len(outputs) == 1 else outputs
        r.finish_reason = reasons[0] if len(set(reasons)) == 1 else ",".join(reasons)
        r.prompt_tokens, r.completion_tokens = self.prompt_tokens, self.completion_tokens
        r.status_code, r.error = status_code, error
        r.latency_ms = _since(r)
        if self._audit is not None:
            self._audit.write(r)


def start_turn(
    backend: Backend, request: TurnRequest, record: AuditRecord, audit: AuditLog | None = None
) -> Turn:
    """Check ``request`` and return its :class:`Turn` (nothing is generated until it is iterated).

    ``record`` is the request's audit record, already holding its id, time, endpoint and key; the turn
    fills in the rest and writes it to ``audit`` (None: not recorded, e.g. in library use).

    Raises:
        InvalidInputError: an empty prompt, ``n`` out of range; ContextLengthError: the prompt plus
            ``max_new_tokens`` exceed the model's context. A refused request is recorded before raising.
    """
    record.model = backend.name
    record.parameters = {"n": request.n, **_parameters(request.params)}
    record.prompt = _prompt_json(request.prompt)
    try:
        validate_prompt(request.prompt)
        if not 1 <= request.n <= MAX_CHOICES:
            raise InvalidInputError(f"n must be between 1 and {MAX_CHOICES}, got {request.n}")
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
    return Turn(backend, request, prompt_tokens, record, audit)


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
