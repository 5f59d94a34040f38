"""The logic of /v1/explain: attribute a generated (or given, or earlier) answer to its prompt tokens.

Every form is one pipeline turn (a given target is a forced answer: checked by the input and output
policies like a generated one, and recorded), so each request writes one audit record. The
explanation's token strings pass the output policy (``clearlm.govern.outputs.govern_attribution``):
the target tokens join to the answer as the policy returns it, and the prompt's tokens are redacted the
same way; a refused request has nothing to explain (``explanation: null``).

With ``faithfulness``, the body also carries how faithful the explanation is (``explain.metrics``:
comprehensiveness and sufficiency, Soft-NC and Soft-NS), next to a random attribution's figures (the
floor). With ``stream``, the answer is server-sent events: ``explanation.progress`` events while the work
runs, then the body, then ``[DONE]``; a client that leaves stops the work at its next step (the methods
call ``explain.progress`` between batches) and the request is recorded as 499.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import math
import threading
import time
from collections.abc import AsyncIterator, Callable

import anyio
import anyio.lowlevel
from anyio.abc import ObjectReceiveStream
from fastapi import Request

from clearlm.errors import ClearlmError, InvalidInputError, ModelNotFoundError
from clearlm.explain import progress
from clearlm.models import Message, SamplingParams
from clearlm.pipeline import TurnRequest, explain_turn
from clearlm.serialize import json_ready
from clearlm.server import protocol as p
from clearlm.server.auth import tenant_of
from clearlm.server.errors import error_body
from clearlm.server.lifecycle import on_exit
from clearlm.server.serving import (
    chat_prompt,
    check_explain,
    check_model,
    event,
    open_turn,
    run_to_end,
    sampling_params,
    sse,
)
from clearlm.server.state import ServerState

FAITHFULNESS_SAMPLES = 2  # Soft-NC / Soft-NS random masks (the README's table uses 2)


async def create_explanation(request: Request, body: p.ExplainRequest, state: ServerState):
    """Three forms: ``completion_id`` (an earlier response of this server, read from the audit log);
    ``messages`` with ``target`` (a continuation to force); ``messages`` alone (generated first, through
    the pipeline, then explained). Returns the body (a dict), or with ``stream`` a StreamingResponse."""
    if body.knowledge_base is not None:
        raise InvalidInputError(
            "knowledge_base is not taken by /v1/explain: send it to /v1/chat/completions, whose answer "
            "then carries its citations and context attribution"
        )
    spec = p.ExplainSpec(method=body.method, options=body.options)
    check_explain(spec)
    if body.faithfulness and (spec.options.get("unit") == "word" or spec.options.get("sequence")):
        raise InvalidInputError(
            "faithfulness is measured per target token over token-level sources: leave out unit='word' "
            "and sequence=true (the page aggregates words itself)"
        )
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
    completion_id = turn.record.request_id if target is None else body.completion_id

    def work() -> dict:
        """The explanation (and its faithfulness), in a worker thread."""
        attribution = explain_turn(explainer, turn, spec.method, spec.options)
        out = {
            "id": turn.record.request_id,
            "object": "explanation",
            "created": int(time.time()),
            "model": state.model_id,
            "completion_id": completion_id,
            "explanation": None if attribution is None else attribution.to_dict(),
        }
        if body.faithfulness:
            turn.record.parameters["faithfulness"] = True
            out["faithfulness"] = None if attribution is None else faithfulness(explainer, turn, attribution)
        return out

    if body.stream:
        return sse(_stream(request, state, turn, work))
    await run_to_end(state, turn)
    return await anyio.to_thread.run_sync(work)


def faithfulness(explainer, turn, attribution) -> dict:
    """Comprehensiveness, sufficiency, Soft-NC and Soft-NS of ``attribution`` (means over the target
    tokens, probability units; ``explain.metrics.evaluate``) and the same figures for a random attribution
    of the same shape (the floor: a faithful method beats it: higher comprehensiveness, Soft-NC and
    Soft-NS, lower sufficiency), plus comprehensiveness and sufficiency per target token. NaN is null.

    The token ids are rebuilt from the turn's prompt and answer when the output policy emptied them (the
    scores and sources do not change: only their text was redacted)."""
    from clearlm.explain.metrics import evaluate, random_attribution
    from clearlm.explain.sequence import build_sequence

    if len(attribution.token_ids) != attribution.n_sources + 1:
        seq = build_sequence(explainer, turn.request.prompt, turn.choices[0].text)
        attribution = dataclasses.replace(attribution, token_ids=seq.ids.tolist())
    progress.stage("faithfulness")
    cache: dict = {}  # forward passes shared by the two evaluations
    with explainer.lock:
        own = evaluate(explainer, attribution, samples=FAITHFULNESS_SAMPLES, cache=cache)
        floor = evaluate(
            explainer, random_attribution(attribution), samples=FAITHFULNESS_SAMPLES, cache=cache
        )
    progress.finish()
    return json_ready(
        {
            **own.summary(),
            "random": floor.summary(),
            "fractions": list(own.fractions),
            "per_target": {
                "comprehensiveness": own.comprehensiveness.tolist(),
                "sufficiency": own.sufficiency.tolist(),
            },
        }
    )


async def _stream(request: Request, state: ServerState, turn, work: Callable[[], dict]) -> AsyncIterator[str]:
    """Server-sent events of ``work()`` run in its own thread: progress events as it reports them, then its
    body, then ``[DONE]``; an error after the stream began arrives as an ``{"error": ...}`` event.

    When the client leaves, the stream is cancelled (Starlette cancels it on ``http.disconnect``): the
    work's next progress report raises ``progress.Cancelled``, the stream waits for the thread to end,
    and the turn is recorded as 499. A generation (no target given) runs to its end first."""
    cancel = threading.Event()
    token = anyio.lowlevel.current_token()
    send, receive = anyio.create_memory_object_stream[tuple](max_buffer_size=math.inf)
    last: list = [None]

    def report(stage: str, done: int, total: int) -> None:
        if cancel.is_set():
            raise progress.Cancelled("the client closed the request")
        if (stage, done, total) != last[0]:
            last[0] = (stage, done, total)
            anyio.from_thread.run_sync(send.send_nowait, ("progress", (stage, done, total)), token=token)

    def run() -> None:
        try:
            with progress.reporting(report):
                if cancel.is_set():
                    raise progress.Cancelled("the client closed the request")
                outcome = ("body", work())
        except BaseException as exc:  # handed to the stream, which answers or records it
            outcome = ("error", exc)
        with contextlib.suppress(Exception):  # the stream is gone (the client left): nothing to tell
            anyio.from_thread.run_sync(send.send_nowait, outcome, token=token)

    # in the request's context: a server of adapters explains with the view the request selected
    thread = threading.Thread(
        target=contextvars.copy_context().run, args=(run,), name="clearlm-explain", daemon=True
    )

    async def stop() -> None:  # also when the request ends some other way
        cancel.set()
        if thread.is_alive():
            await anyio.to_thread.run_sync(thread.join)

    on_exit(request, stop)
    finished = False
    try:
        try:
            await run_to_end(state, turn)
        except ClearlmError as exc:  # recorded by the turn
            yield event(error_body(str(exc), exc.error_type, exc.code))
        else:
            thread.start()
            async for payload in _events(receive, turn):
                yield payload
        finished = True
    finally:
        with anyio.CancelScope(shield=True):
            receive.close()
            await stop()
            if not finished:
                await anyio.to_thread.run_sync(turn.close)  # 499: the client closed the request
    yield "data: [DONE]\n\n"


async def _events(receive: ObjectReceiveStream, turn) -> AsyncIterator[str]:
    """The stream's events from what the work thread sends, until its outcome."""
    async for kind, value in receive:
        if kind == "progress":
            stage, done, total = value
            yield event({"object": "explanation.progress", "stage": stage, "done": done, "total": total})
            continue
        if kind == "body":
            await anyio.to_thread.run_sync(turn.close, 200, None)  # recorded before the client has it
            yield event(value)
        elif isinstance(value, ClearlmError):
            await anyio.to_thread.run_sync(turn.close, value.status_code, str(value))
            yield event(error_body(str(value), value.error_type, value.code))
        else:  # the client gets a body, not a cut connection
            await anyio.to_thread.run_sync(turn.close, 500, f"{value.__class__.__name__}: {value}")
            yield event(error_body(f"internal error: {value.__class__.__name__}", "server_error"))
        return


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
