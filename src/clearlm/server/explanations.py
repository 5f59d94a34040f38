"""The logic of /v1/explain: attribute a generated (or given, or earlier) answer to its prompt tokens.

Every form is one pipeline turn (a given target is a forced answer: checked by the input and output
policies like a generated one, and recorded), so each request writes one audit record. The
explanation's token strings pass the output policy (``clearlm.govern.outputs.govern_attribution``):
the target tokens join to the answer as the policy returns it, and the prompt's tokens are redacted the
same way; a refused request has nothing to explain (``explanation: null``)."""

from __future__ import annotations

import time

import anyio
from fastapi import Request

from clearlm.errors import InvalidInputError, ModelNotFoundError
from clearlm.models import Message, SamplingParams
from clearlm.pipeline import TurnRequest, explain_turn
from clearlm.server import protocol as p
from clearlm.server.auth import tenant_of
from clearlm.server.serving import (
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
    record.model, record.parameters = state.model_id, {"explain": {"method": spec.method, **spec.options}}
    if body.completion_id is not None:
        prompt, target = await _earlier(state, body.completion_id, tenant_of(request))
    elif not body.messages:
        raise InvalidInputError("give messages to explain, or the completion_id of an earlier response")
    else:
        prompt, target = chat_prompt(body.messages), body.target
    explainer = await anyio.to_thread.run_sync(state.explainer)
    if target is None:  # generate through the pipeline, then explain the answer
        params = sampling_params(body, state, prompt, body.max_completion_tokens or body.max_tokens)
        turn_request = TurnRequest(prompt, params)
    else:
        turn_request = TurnRequest(prompt, SamplingParams(max_new_tokens=1), target=target)
    turn = await open_turn(request, state, turn_request, "explain-")
    await run_to_end(state, turn)
    attribution = await anyio.to_thread.run_sync(explain_turn, explainer, turn, spec.method, spec.options)
    return {
        "id": turn.record.request_id,
        "object": "explanation",
        "created": int(time.time()),
        "model": state.model_id,
        "completion_id": turn.record.request_id if target is None else body.completion_id,
        "explanation": None if attribution is None else attribution.to_dict(),
    }


async def _earlier(state: ServerState, completion_id: str, tenant: str):
    """An earlier response's prompt and output; another tenant's is not found (404, as a missing one)."""
    earlier = await anyio.to_thread.run_sync(state.audit.get, completion_id)
    if earlier is None or earlier.tenant != tenant or earlier.status_code != 200 or earlier.output is None:
        raise ModelNotFoundError(
            f"no completed response with id {completion_id!r} in this server's audit log"
        )
    output = earlier.output if isinstance(earlier.output, str) else earlier.output[0]
    prompt = earlier.prompt
    if isinstance(prompt, list):
        prompt = [Message(m["role"], m["content"]) for m in prompt]
    return prompt, output
