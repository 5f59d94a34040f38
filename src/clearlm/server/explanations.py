"""The logic of /v1/explain: attribute a generated (or given, or earlier) answer to its prompt tokens."""

from __future__ import annotations

import time

import anyio
from fastapi import Request

from clearlm.errors import InvalidInputError, ModelNotFoundError
from clearlm.explain import explain
from clearlm.models import Message
from clearlm.pipeline import TurnRequest, explain_turn
from clearlm.server import protocol as p
from clearlm.server.completions import (
    admit,
    chat_prompt,
    check_explain,
    check_model,
    open_turn,
    run_to_end,
    sampling_params,
)
from clearlm.server.state import ServerState


async def create_explanation(request: Request, body: p.ExplainRequest, state: ServerState) -> dict:
    """Three forms: ``completion_id`` (an earlier response of this server, read from the audit log);
    ``messages`` with ``target`` (a continuation to force); ``messages`` alone (generated first, through
    the pipeline, then explained)."""
    if body.knowledge_base is not None:
        raise InvalidInputError(
            "knowledge_base is not taken by /v1/explain: send it to /v1/chat/completions, whose answer "
            "then carries its citations and context attribution"
        )
    spec = p.ExplainSpec(method=body.method, options=body.options)
    check_explain(spec)
    if body.model is not None:
        check_model(body.model, state)
    record = request.state.audit_record
    record.model, record.parameters = state.model_id, {"method": spec.method, **spec.options}
    if body.completion_id is not None:
        prompt, target = await _earlier(state, body.completion_id)
    elif not body.messages:
        raise InvalidInputError("give messages to explain, or the completion_id of an earlier response")
    else:
        prompt, target = chat_prompt(body.messages), body.target
    explainer = await anyio.to_thread.run_sync(state.explainer)
    if target is None:  # generate through the pipeline (recorded as a turn), then explain the answer
        params = sampling_params(body, state, prompt, body.max_completion_tokens or body.max_tokens)
        turn = await open_turn(request, state, TurnRequest(prompt, params), "explain-")
        await run_to_end(state, turn)
        attribution = await anyio.to_thread.run_sync(explain_turn, explainer, turn, spec.method, spec.options)
        completion_id = turn.record.request_id
    else:
        record.prompt = (
            prompt if isinstance(prompt, str) else [{"role": m.role, "content": m.content} for m in prompt]
        )
        record.output = target
        await admit(request, state)

        def work():
            with explainer.lock:
                return explain(explainer, prompt, target, method=spec.method, **spec.options)

        attribution = await anyio.to_thread.run_sync(work)
        completion_id = body.completion_id
    return {
        "id": record.request_id,
        "object": "explanation",
        "created": int(time.time()),
        "model": state.model_id,
        "completion_id": completion_id,
        "explanation": attribution.to_dict(),
    }


async def _earlier(state: ServerState, completion_id: str):
    earlier = await anyio.to_thread.run_sync(state.audit.get, completion_id)
    if earlier is None or earlier.status_code != 200 or earlier.output is None:
        raise ModelNotFoundError(
            f"no completed response with id {completion_id!r} in this server's audit log"
        )
    output = earlier.output if isinstance(earlier.output, str) else earlier.output[0]
    prompt = earlier.prompt
    if isinstance(prompt, list):
        prompt = [Message(m["role"], m["content"]) for m in prompt]
    return prompt, output
