"""The logic of /v1/chat/completions and /v1/completions: a request becomes one pipeline turn, and the
turn becomes a response body or a stream of server-sent events ending in ``data: [DONE]``."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Callable

import anyio
from fastapi import Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from clearlm.errors import ClearlmError, ContextLengthError, InvalidInputError, ModelNotFoundError
from clearlm.explain import METHODS, method_options
from clearlm.govern import disclosure
from clearlm.models import Message, SamplingParams
from clearlm.models.backends.base import JsonOutput, TokenLogprob
from clearlm.models.chat import Prompt, validate_prompt
from clearlm.pipeline import Retrieval, Turn, TurnRequest, cite_turn, explain_turn, start_turn
from clearlm.server import protocol as p
from clearlm.server.errors import error_body
from clearlm.server.knowledge import open_kb
from clearlm.server.lifecycle import on_exit, own_record
from clearlm.server.state import ServerState


def check_model(model: str | None, state: ServerState) -> None:
    if model != state.model_id:
        raise ModelNotFoundError(
            f"the model {model!r} is not served here: this server serves {state.model_id!r}"
        )


def chat_prompt(messages: list[p.ChatMessage]) -> list[Message]:
    """OpenAI messages as clearlm messages ("developer" is the newer name of "system")."""
    return [Message("system" if m.role == "developer" else m.role, m.text()) for m in messages]


def json_output(fmt: p.ResponseFormat | None) -> JsonOutput | None:
    """The JSON constraint a ``response_format`` asks for.

    Raises:
        InvalidInputError: ``json_schema`` without a schema, or a schema that is not valid JSON Schema.
    """
    if fmt is None or fmt.type == "text":
        return None
    if fmt.type == "json_object":
        return JsonOutput()
    if fmt.json_schema is None or not fmt.json_schema.schema_:
        raise InvalidInputError("response_format.json_schema.schema is required when the type is json_schema")
    import jsonschema

    schema = fmt.json_schema.schema_
    try:
        jsonschema.validators.validator_for(schema).check_schema(schema)
    except jsonschema.SchemaError as exc:
        raise InvalidInputError(
            f"response_format.json_schema.schema is not valid JSON Schema: {exc.message}"
        ) from None
    return JsonOutput(json.dumps(schema))


def sampling_params(
    body: p._Sampling,
    state: ServerState,
    prompt: Prompt,
    max_tokens: int | None,
    logprobs: int | None = None,
    json: JsonOutput | None = None,
) -> SamplingParams:
    """Decoding parameters; without ``max_tokens``, the config's default capped by what the context has left.

    Raises:
        InvalidInputError: an empty prompt; ContextLengthError: ``max_tokens`` larger than the context.
    """
    validate_prompt(prompt)
    ctx = state.backend.context_length
    if max_tokens is None:
        n_prompt = len(state.backend.encode(prompt).token_ids)
        max_tokens = max(1, min(state.config.default_max_tokens, ctx - n_prompt))
    elif max_tokens > ctx:
        raise ContextLengthError(
            f"max_tokens is {max_tokens:,} but this model's context holds {ctx:,} tokens in all: lower max_tokens"
        )
    stop = (body.stop,) if isinstance(body.stop, str) else tuple(body.stop or ())
    return SamplingParams(
        max_new_tokens=max_tokens,
        temperature=body.temperature,
        top_p=body.top_p,
        top_k=body.top_k,
        seed=body.seed,
        stop=stop,
        logprobs=logprobs,
        json_output=json,
    )


async def admit(request: Request, state: ServerState) -> None:
    """Wait for a generation slot (or raise OverloadedError); it is given back when the request ends."""
    await state.gate.acquire()
    released = False

    async def release() -> None:
        nonlocal released
        if not released:
            released = True
            await state.gate.release()

    on_exit(request, release)


async def open_turn(request: Request, state: ServerState, turn_request: TurnRequest, id_prefix: str) -> Turn:
    """Admit the request, then start its pipeline turn, which owns the request's audit record from here on
    (and is closed when the request ends, however it ends)."""
    await admit(request, state)
    record = own_record(request)
    record.request_id = id_prefix + record.request_id.removeprefix("req-")
    policy = await anyio.to_thread.run_sync(state.policy_for, getattr(request.state, "key_policy", None))
    turn = await anyio.to_thread.run_sync(
        start_turn, state.backend, turn_request, record, state.audit, policy
    )

    async def close() -> None:
        await anyio.to_thread.run_sync(turn.close)

    on_exit(request, close)
    return turn


class _Timing:
    """Feeds the time-to-first-token and tokens-per-second histograms from a turn's chunks."""

    def __init__(self, state: ServerState, turn: Turn) -> None:
        self.metrics = state.metrics
        self.arrived = turn.record.created_at.timestamp()
        self.first: float | None = None
        self.turn = turn

    def chunk(self, has_tokens: bool) -> None:
        if has_tokens and self.first is None:
            self.first = time.time()
            self.metrics.ttft.observe(self.first - self.arrived)

    def done(self) -> None:
        self.metrics.tokens_in.inc(self.turn.prompt_tokens)
        self.metrics.tokens_out.inc(self.turn.completion_tokens)
        n = self.turn.completion_tokens
        if self.first is not None and n > 1:
            self.metrics.tokens_per_second.observe((n - 1) / max(time.time() - self.first, 1e-6))


async def run_to_end(state: ServerState, turn: Turn) -> None:
    timing = _Timing(state, turn)

    def work() -> None:
        for _, chunk in turn:
            timing.chunk(bool(chunk.token_ids))

    await anyio.to_thread.run_sync(work)
    timing.done()


def usage(turn: Turn) -> p.Usage:
    return p.Usage(
        prompt_tokens=turn.prompt_tokens,
        completion_tokens=turn.completion_tokens,
        total_tokens=turn.prompt_tokens + turn.completion_tokens,
    )


def chat_logprobs(
    decode: Callable, logprobs: list[TokenLogprob] | tuple[TokenLogprob, ...]
) -> p.ChoiceLogprobs:
    def top(token_id: int, logprob: float) -> p.TopLogprob:
        text = decode([token_id])
        return p.TopLogprob(token=text, logprob=logprob, bytes=list(text.encode()))

    return p.ChoiceLogprobs(
        content=[
            p.TokenLogprobOut(
                **top(lp.token_id, lp.logprob).model_dump(), top_logprobs=[top(i, v) for i, v in lp.top]
            )
            for lp in logprobs
        ]
    )


def event(payload: BaseModel | dict) -> str:
    data = (
        payload.model_dump_json(exclude_none=False) if isinstance(payload, BaseModel) else json.dumps(payload)
    )
    return f"data: {data}\n\n"


async def stream_events(
    state: ServerState, turn: Turn, render: Callable, tail: Callable
) -> AsyncIterator[str]:
    """Server-sent events: ``render(index, chunk)`` gives each chunk's events, ``tail()`` the last ones;
    an error after the stream began arrives as an ``{"error": ...}`` event, since the status is sent."""
    timing = _Timing(state, turn)
    items = iter(turn)
    try:
        while (item := await anyio.to_thread.run_sync(next, items, None)) is not None:
            timing.chunk(bool(item[1].token_ids))
            for payload in render(*item):
                yield event(payload)
        timing.done()
        for payload in tail():
            yield event(payload)
    except ClearlmError as exc:
        yield event(error_body(str(exc), exc.error_type, exc.code))
    except Exception as exc:  # the turn recorded it; the client gets a body, not a cut connection
        yield event(error_body(f"internal error: {exc.__class__.__name__}", "server_error"))
    yield "data: [DONE]\n\n"


def sse(events: AsyncIterator[str]) -> StreamingResponse:
    return StreamingResponse(
        events,
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


def check_explain(spec: p.ExplainSpec) -> None:
    if spec.method not in METHODS:
        raise InvalidInputError(f"unknown explain method {spec.method!r}: choose one of {', '.join(METHODS)}")
    unknown = set(spec.options) - set(method_options(spec.method))
    if unknown:
        raise InvalidInputError(
            f"unknown option(s) {', '.join(sorted(unknown))} for method {spec.method!r}; "
            f"it accepts: {', '.join(method_options(spec.method)) or 'none'}"
        )


async def chat_completion(request: Request, body: p.ChatCompletionRequest, state: ServerState):
    check_model(body.model, state)
    if body.top_logprobs is not None and not body.logprobs:
        raise InvalidInputError("top_logprobs needs logprobs: true")
    spec = p.ExplainSpec() if body.explain is True else body.explain or None
    if spec is not None:
        if body.stream:
            raise InvalidInputError("explain is not available with stream: true; call /v1/explain afterwards")
        check_explain(spec)
    knowledge = (
        p.KnowledgeSpec(name=body.knowledge_base)
        if isinstance(body.knowledge_base, str)
        else body.knowledge_base
    )
    if knowledge is not None and knowledge.attribute and body.stream:
        knowledge = knowledge.model_copy(update={"attribute": False})  # citations only, at the end
    prompt = chat_prompt(body.messages)
    params = sampling_params(
        body,
        state,
        prompt,
        body.max_completion_tokens or body.max_tokens,
        logprobs=(body.top_logprobs or 0) if body.logprobs else None,
        json=json_output(body.response_format),
    )
    retrieval = None
    if knowledge is not None:
        kb = await anyio.to_thread.run_sync(open_kb, state, knowledge.name)
        on_exit(request, lambda: anyio.to_thread.run_sync(kb.close))
        retrieval = Retrieval(kb, knowledge.k, knowledge.mode)
    turn = await open_turn(request, state, TurnRequest(prompt, params, body.n, retrieval), "chatcmpl-")
    response_id, created, decode = turn.record.request_id, int(time.time()), state.backend.decode

    def logprobs(lps) -> p.ChoiceLogprobs | None:
        return chat_logprobs(decode, lps) if body.logprobs else None

    if body.stream:
        started: set[int] = set()

        def chunk(choices, usage_=None) -> p.ChatCompletionChunk:
            return p.ChatCompletionChunk(
                id=response_id, created=created, model=state.model_id, choices=choices, usage=usage_
            )

        def render(index, c):
            if index not in started:
                started.add(index)
                yield chunk([p.ChunkChoice(index=index, delta=p.Delta(role="assistant", content=""))])
            if c.text or c.logprobs:
                yield chunk(
                    [p.ChunkChoice(index=index, delta=p.Delta(content=c.text), logprobs=logprobs(c.logprobs))]
                )
            if c.finish_reason:
                done = chunk([p.ChunkChoice(index=index, delta=p.Delta(), finish_reason=c.finish_reason)])
                done.ai_generated = disclosure.mark(state.model_id)
                if turn.grounding is not None:
                    done.citations = cite_turn(None, turn, index).to_dict()
                yield done

        def tail():
            if body.stream_options and body.stream_options.include_usage:
                yield chunk([], usage(turn))

        return sse(stream_events(state, turn, render, tail))

    await run_to_end(state, turn)
    explanation = None
    if spec is not None:
        explainer = await anyio.to_thread.run_sync(state.explainer)
        attribution = await anyio.to_thread.run_sync(explain_turn, explainer, turn, spec.method, spec.options)
        explanation = attribution.to_dict()
    citations = None
    if turn.grounding is not None:
        explainer = await anyio.to_thread.run_sync(state.explainer) if knowledge.attribute else None
        cited = await anyio.to_thread.run_sync(
            lambda: cite_turn(explainer, turn, 0, ablations=knowledge.ablations)
        )
        citations = cited.to_dict()
    return p.ChatCompletion(
        id=response_id,
        created=created,
        model=state.model_id,
        choices=[
            p.ChatChoice(
                index=c.index,
                message=p.AssistantMessage(content=c.text),
                finish_reason=c.finish_reason,
                logprobs=logprobs(c.logprobs),
            )
            for c in turn.choices
        ],
        usage=usage(turn),
        explanation=explanation,
        citations=citations,
        ai_generated=disclosure.mark(state.model_id),
    )


def completion_logprobs(decode: Callable, lps, offset: int) -> p.CompletionLogprobs:
    tokens = [decode([lp.token_id]) for lp in lps]
    offsets = []
    for t in tokens:
        offsets.append(offset)
        offset += len(t)
    return p.CompletionLogprobs(
        tokens=tokens,
        token_logprobs=[lp.logprob for lp in lps],
        top_logprobs=[{decode([i]): v for i, v in lp.top} for lp in lps],
        text_offset=offsets,
    )


async def text_completion(request: Request, body: p.CompletionRequest, state: ServerState):
    check_model(body.model, state)
    if isinstance(body.prompt, list):
        if len(body.prompt) != 1:
            raise InvalidInputError("send one prompt per request (a list of prompts is not supported)")
        prompt = body.prompt[0]
    else:
        prompt = body.prompt
    params = sampling_params(body, state, prompt, body.max_tokens, logprobs=body.logprobs)
    turn = await open_turn(request, state, TurnRequest(prompt, params, body.n), "cmpl-")
    response_id, created, decode = turn.record.request_id, int(time.time()), state.backend.decode
    echo = prompt if body.echo else ""

    if body.stream:
        started: set[int] = set()
        offsets: dict[int, int] = {}

        def render(index, c):
            text = c.text
            if index not in started:
                started.add(index)
                text, offsets[index] = echo + text, len(echo)
            lps = (
                completion_logprobs(decode, c.logprobs, offsets[index]) if body.logprobs is not None else None
            )
            offsets[index] += len(c.text)
            if text or c.finish_reason or c.logprobs:
                choice = p.CompletionChoice(
                    index=index, text=text, finish_reason=c.finish_reason, logprobs=lps
                )
                mark = disclosure.mark(state.model_id) if c.finish_reason else None
                yield p.TextCompletion(
                    id=response_id, created=created, model=state.model_id, choices=[choice], ai_generated=mark
                )

        def tail():
            if body.stream_options and body.stream_options.include_usage:
                yield p.TextCompletion(
                    id=response_id, created=created, model=state.model_id, choices=[], usage=usage(turn)
                )

        return sse(stream_events(state, turn, render, tail))

    await run_to_end(state, turn)
    return p.TextCompletion(
        id=response_id,
        created=created,
        model=state.model_id,
        choices=[
            p.CompletionChoice(
                index=c.index,
                text=echo + c.text,
                finish_reason=c.finish_reason,
                logprobs=completion_logprobs(decode, c.logprobs, len(echo))
                if body.logprobs is not None
                else None,
            )
            for c in turn.choices
        ],
        usage=usage(turn),
        ai_generated=disclosure.mark(state.model_id),
    )
