"""The logic of /v1/chat/completions and /v1/completions: a request becomes one pipeline turn, and the
turn becomes a response body or a stream of server-sent events ending in ``data: [DONE]``.

Everything returned passes the output policy: the answer (in the turn), its explanation and citations
(``explain_turn``, ``cite_turn``), and an echoed prompt. A choice whose text the output policy changed
returns no token log-probabilities (``logprobs: null``): their token strings would spell what it
redacted."""

from __future__ import annotations

import time
from collections.abc import Callable

import anyio
from fastapi import Request

from clearlm.errors import InvalidInputError
from clearlm.govern import disclosure
from clearlm.govern.outputs import govern_text
from clearlm.models.backends.base import TokenLogprob
from clearlm.models.tools import ToolCallParser, parse_tool_calls
from clearlm.pipeline import Retrieval, TurnRequest, cite_turn, explain_turn
from clearlm.server import protocol as p
from clearlm.server.auth import tenant_of
from clearlm.server.images_chat import describe_parts, has_images, record_images, shown
from clearlm.server.knowledge import open_kb
from clearlm.server.lifecycle import on_exit
from clearlm.server.serving import (
    chat_prompt,
    check_explain,
    check_model,
    json_output,
    open_turn,
    run_to_end,
    sampling_params,
    sse,
    stream_events,
    tool_output,
    usage,
)
from clearlm.server.state import ServerState


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


async def chat_completion(
    request: Request, body: p.ChatCompletionRequest, state: ServerState, origin: dict | None = None
):
    """``origin``: where the request came from (a chat conversation: ``{"conversation_id": id}``)."""
    check_model(body.model, state)
    if body.top_logprobs is not None and not body.logprobs:
        raise InvalidInputError("top_logprobs needs logprobs: true")
    images = []  # image parts: described, each description in its image's place (server.images)
    if has_images(body):
        body, images = await describe_parts(body)
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
    # A stream's last chunk carries the citations; their context attribution (how much the answer relied
    # on each passage) follows in one more chunk only when asked for explicitly (it takes seconds).
    attribute_after = bool(
        knowledge is not None
        and body.stream
        and knowledge.attribute
        and "attribute" in knowledge.model_fields_set
    )
    tools = tool_output(body)
    prompt = chat_prompt(body.messages, body.tools if body.tool_choice != "none" else None)
    params = sampling_params(
        body,
        state,
        prompt,
        body.max_completion_tokens or body.max_tokens,
        logprobs=(body.top_logprobs or 0) if body.logprobs else None,
        json=json_output(body.response_format),
        tools=tools,
    )
    retrieval = None
    if knowledge is not None:
        kb = await anyio.to_thread.run_sync(open_kb, state, knowledge.name, tenant_of(request))
        on_exit(request, lambda: anyio.to_thread.run_sync(kb.close))
        retrieval = Retrieval(kb, knowledge.k, knowledge.mode, knowledge.answer)
    turn = await open_turn(
        request, state, TurnRequest(prompt, params, body.n, retrieval, origin=origin), "chatcmpl-"
    )
    if images:
        record_images(turn, images)
    response_id, created, decode = turn.record.request_id, int(time.time()), state.backend.decode

    def logprobs(index: int, lps) -> p.ChoiceLogprobs | None:
        if not body.logprobs or turn.choices[index].changed:
            return None
        return chat_logprobs(decode, lps)

    if body.stream:
        started: set[int] = set()
        parsers = {i: ToolCallParser() for i in range(body.n)} if tools is not None else {}

        def chunk(choices, usage_=None) -> p.ChatCompletionChunk:
            return p.ChatCompletionChunk(
                id=response_id, created=created, model=state.model_id, choices=choices, usage=usage_
            )

        def render(index, c):
            if index not in started:
                started.add(index)
                yield chunk([p.ChunkChoice(index=index, delta=p.Delta(role="assistant", content=""))])
            text, calls, reason = c.text, [], c.finish_reason
            if index in parsers:  # tool calls: the text is split into content and calls' pieces
                text, deltas = parsers[index].push(c.text)
                if c.finish_reason:
                    rest, more = parsers[index].finish()
                    text, deltas = text + rest, deltas + more
                    reason = _reason(c.finish_reason, parsers[index].calls)
                calls = [_delta(d) for d in deltas]
            if text or c.logprobs:
                yield chunk(
                    [
                        p.ChunkChoice(
                            index=index, delta=p.Delta(content=text), logprobs=logprobs(index, c.logprobs)
                        )
                    ]
                )
            if calls:
                yield chunk([p.ChunkChoice(index=index, delta=p.Delta(tool_calls=calls))])
            if c.finish_reason:
                done = chunk([p.ChunkChoice(index=index, delta=p.Delta(), finish_reason=reason)])
                done.ai_generated = disclosure.mark(state.model_id)
                done.image_descriptions = shown(turn, images) if images and index == 0 else None
                if turn.grounding is not None:
                    done.citations = cite_turn(None, turn, index).to_dict()
                yield done

        def tail():  # (in a worker thread)
            if attribute_after and turn.grounding is not None:
                cited = chunk([])
                cited.citations = cite_turn(
                    state.explainer(), turn, 0, ablations=knowledge.ablations
                ).to_dict()
                yield cited
            if body.stream_options and body.stream_options.include_usage:
                yield chunk([], usage(turn))

        return sse(stream_events(state, turn, render, tail))

    await run_to_end(state, turn)
    explanation = None
    if spec is not None:
        explainer = await anyio.to_thread.run_sync(state.explainer)
        attribution = await anyio.to_thread.run_sync(explain_turn, explainer, turn, spec.method, spec.options)
        explanation = None if attribution is None else attribution.to_dict()
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
        choices=[_chat_choice(c, tools is not None, logprobs(c.index, c.logprobs)) for c in turn.choices],
        usage=usage(turn),
        explanation=explanation,
        citations=citations,
        ai_generated=disclosure.mark(state.model_id),
        image_descriptions=shown(turn, images) if images else None,
    )


def _reason(finish_reason: str | None, calls) -> str | None:
    """ "tool_calls" for an answer that ended by itself with calls in it (as the OpenAI API says)."""
    return "tool_calls" if calls and finish_reason == "stop" else finish_reason


def _delta(d) -> p.DeltaToolCall:
    if d.id is not None:  # a call's first piece
        return p.DeltaToolCall(
            index=d.index,
            id=d.id,
            type="function",
            function=p.DeltaFunction(name=d.name, arguments=d.arguments),
        )
    return p.DeltaToolCall(index=d.index, function=p.DeltaFunction(arguments=d.arguments))


def _chat_choice(c, with_tools: bool, logprobs) -> p.ChatChoice:
    """A finished choice; with tools, its text split into content and calls (``clearlm.models.tools``)."""
    if not with_tools:
        return p.ChatChoice(
            index=c.index,
            message=p.AssistantMessage(content=c.text),
            finish_reason=c.finish_reason,
            logprobs=logprobs,
        )
    content, calls = parse_tool_calls(c.text)
    message = p.AssistantMessage(
        content=content if content or not calls else None,
        tool_calls=[
            p.ToolCallOut(id=t.id, function=p.FunctionCall(name=t.name, arguments=t.arguments)) for t in calls
        ]
        or None,
    )
    return p.ChatChoice(
        index=c.index, message=message, finish_reason=_reason(c.finish_reason, calls), logprobs=logprobs
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
    echo = ""
    if body.echo:  # returned, so held to the output policy like the rest
        echo, notes = await anyio.to_thread.run_sync(govern_text, turn.policy, prompt, "user", "echo")
        turn.note(notes)

    def logprobs(index: int, lps, offset: int) -> p.CompletionLogprobs | None:
        if body.logprobs is None or turn.choices[index].changed:
            return None
        return completion_logprobs(decode, lps, offset)

    if body.stream:
        started: set[int] = set()
        offsets: dict[int, int] = {}

        def render(index, c):
            text = c.text
            if index not in started:
                started.add(index)
                text, offsets[index] = echo + text, len(echo)
            lps = logprobs(index, c.logprobs, offsets[index])
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
                logprobs=logprobs(c.index, c.logprobs, len(echo)),
            )
            for c in turn.choices
        ],
        usage=usage(turn),
        ai_generated=disclosure.mark(state.model_id),
    )
