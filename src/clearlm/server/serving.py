"""What every generating endpoint shares: the request's model and decoding parameters, admission, its
pipeline turn (and that turn's audit record), timing metrics, and server-sent events. The endpoint
modules (``completions``, ``explanations``) hold only their own request-to-response logic."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Callable

import anyio
from fastapi import Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from clearlm.errors import ClearlmError, ContextLengthError, InvalidInputError, ModelNotFoundError
from clearlm.govern.policy import Policy
from clearlm.models import Message, SamplingParams
from clearlm.models.backends.base import JsonOutput, ToolCallOutput
from clearlm.models.chat import Chat, Prompt, ToolCall, validate_prompt
from clearlm.pipeline import Turn, TurnRequest, check_method, start_turn
from clearlm.server import protocol as p
from clearlm.server.errors import error_body
from clearlm.server.lifecycle import on_exit, outcome, own_record
from clearlm.server.state import ServerState


def check_model(model: str | None, state: ServerState) -> None:
    select = getattr(state.backend, "select", None)  # a base with LoRA adapters (clearlm.tune.router)
    if select is not None:
        select(model)
        return
    if model != state.model_id:
        raise ModelNotFoundError(
            f"the model {model!r} is not served here: this server serves {state.model_id!r}"
        )


def chat_prompt(messages: list[p.ChatMessage], tools: list[p.Tool] | None = None) -> list[Message]:
    """OpenAI messages as clearlm messages ("developer" is the newer name of "system"), with the calls
    assistant messages made and the call each tool message answers; with ``tools``, a
    :class:`~clearlm.models.chat.Chat` carrying them (the chat template writes them into the prompt).

    Raises:
        InvalidInputError: a tool message without a ``tool_call_id`` of a call made before it, or a call
            whose arguments are not a JSON object.
    """
    out, called = [], set()
    for i, m in enumerate(messages):
        calls = []
        for c in m.tool_calls or ():
            if m.role != "assistant":
                raise InvalidInputError(f"messages[{i}]: only assistant messages carry tool_calls")
            try:
                args = json.loads(c.function.arguments)
            except json.JSONDecodeError:
                args = None
            if not isinstance(args, dict):
                raise InvalidInputError(
                    f"messages[{i}].tool_calls: the arguments of {c.function.name!r} are not a JSON object"
                )
            calls.append(ToolCall(c.id, c.function.name, c.function.arguments))
            called.add(c.id)
        if m.role == "tool" and m.tool_call_id not in called:
            raise InvalidInputError(
                f"messages[{i}] is a tool message answering "
                + (f"the call {m.tool_call_id!r}" if m.tool_call_id else "no call (tool_call_id is missing)")
                + ", but no assistant message before it made that call: send the assistant message with "
                "its tool_calls first"
            )
        role = "system" if m.role == "developer" else m.role
        out.append(Message(role, m.text(), tuple(calls), m.tool_call_id if m.role == "tool" else None))
    if tools:
        return Chat(out, [t.model_dump(exclude_none=True) for t in tools])
    return out


def tool_output(body: p.ChatCompletionRequest) -> ToolCallOutput | None:
    """The tool-call constraint a request asks for (None: the model answers in text).

    Raises:
        InvalidInputError: tool_choice without tools, a named function not among them, two tools of one
            name, a parameters object that is not valid JSON Schema, tools with response_format,
            explain or knowledge_base.
    """
    import jsonschema

    from clearlm.models.tools import constraint

    if not body.tools:
        if body.tool_choice is not None and body.tool_choice != "none":
            raise InvalidInputError("tool_choice needs tools: give the functions the model may call")
        return None
    names = [t.function.name for t in body.tools]
    if len(set(names)) != len(names):
        raise InvalidInputError("two tools have the same name: give each function its own name")
    for t in body.tools:
        schema = t.function.parameters
        if schema is None:
            continue
        try:
            jsonschema.validators.validator_for(schema).check_schema(schema)
        except jsonschema.SchemaError as exc:
            raise InvalidInputError(
                f"the parameters of the tool {t.function.name!r} are not valid JSON Schema: {exc.message}"
            ) from None
    for field, given in (
        ("response_format", body.response_format is not None and body.response_format.type != "text"),
        ("explain", bool(body.explain)),
        ("knowledge_base", body.knowledge_base is not None),
    ):
        if given:
            raise InvalidInputError(f"tools cannot be combined with {field}: send one or the other")
    choice = body.tool_choice or "auto"
    if not isinstance(choice, str):
        choice = choice.model_dump()
    return constraint([t.model_dump() for t in body.tools], choice, body.parallel_tool_calls)


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
    tools: ToolCallOutput | None = None,
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
        tool_calls=tools,
    )


def check_explain(spec: p.ExplainSpec) -> None:
    """The method and options, checked before anything is generated (InvalidInputError)."""
    check_method(spec.method, spec.options)


def policy_of(request: Request, state: ServerState) -> Policy | None:
    """The policy this request is held to: its API key's, else the server's (InvalidInputError for a
    policy file that no longer loads)."""
    return state.policy_for(getattr(request.state, "key_policy", None))


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
    """Admit the request, then start its pipeline turn, which owns the request's audit record from here on.
    The turn is deferred: its record is written when the request ends, however it ends, with the
    response's status (``lifecycle.outcome``), so what follows the generation (an explanation, citations)
    is recorded with it, and a failure there is not recorded as a success."""
    await admit(request, state)
    policy = await anyio.to_thread.run_sync(policy_of, request, state)
    record = own_record(request)
    record.request_id = id_prefix + record.request_id.removeprefix("req-")
    turn = await anyio.to_thread.run_sync(
        start_turn, state.backend, turn_request, record, state.audit, policy, True
    )

    async def close() -> None:
        status, error = outcome(request)
        await anyio.to_thread.run_sync(turn.close, status, error)

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


def event(payload: BaseModel | dict) -> str:
    data = (
        payload.model_dump_json(exclude_none=False) if isinstance(payload, BaseModel) else json.dumps(payload)
    )
    return f"data: {data}\n\n"


async def stream_events(
    state: ServerState, turn: Turn, render: Callable, tail: Callable
) -> AsyncIterator[str]:
    """Server-sent events: ``render(index, chunk)`` gives each chunk's events, ``tail()`` the last ones
    (run in a worker thread: it may attribute);
    an error after the stream began arrives as an ``{"error": ...}`` event, since the status is sent."""
    timing = _Timing(state, turn)
    items = iter(turn)
    try:
        while (item := await anyio.to_thread.run_sync(next, items, None)) is not None:
            timing.chunk(bool(item[1].token_ids))
            for payload in render(*item):
                yield event(payload)
        timing.done()
        for payload in await anyio.to_thread.run_sync(lambda: list(tail())):
            yield event(payload)
        await anyio.to_thread.run_sync(turn.close, 200, None)  # recorded before the client sees [DONE]
    except ClearlmError as exc:  # recorded by the turn, or here when render() raised it
        await anyio.to_thread.run_sync(turn.close, exc.status_code, str(exc))
        yield event(error_body(str(exc), exc.error_type, exc.code))
    except Exception as exc:  # the client gets a body, not a cut connection
        await anyio.to_thread.run_sync(turn.close, 500, f"{exc.__class__.__name__}: {exc}")
        yield event(error_body(f"internal error: {exc.__class__.__name__}", "server_error"))
    yield "data: [DONE]\n\n"


def sse(events: AsyncIterator[str]) -> StreamingResponse:
    return StreamingResponse(
        events,
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


def record_query(request: Request, state: ServerState, query: str) -> None:
    """Keep a knowledge-base search's query in the request's audit record as the policy stores text
    (PII-redacted with ``store_redacted``). Call it in a worker thread (the redaction runs NER)."""
    policy = policy_of(request, state)
    request.state.audit_record.prompt = query if policy is None else policy.stored(query)


def govern_search(request: Request, state: ServerState, query: str, passages: list) -> tuple[str, list]:
    """A knowledge-base search's results as they may be returned: the query echoed and each passage's
    text, title and headings through the output policy (``clearlm.govern.outputs``), its findings noted in
    the record's ``governance["returned"]``. Returns (query, passages). Call it in a worker thread."""
    from clearlm.govern.outputs import govern_passages, govern_text

    policy = policy_of(request, state)
    query, notes = govern_text(policy, query, "user", "query")
    passages, found = govern_passages(policy, passages, "data")
    if notes or found:
        request.state.audit_record.governance = {"policy": policy.name, "returned": notes + found}
    return query, passages
