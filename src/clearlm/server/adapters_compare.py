"""``POST /v1/adapters/{name}/compare``: one prompt's answer attributed under the served base (or base +
another served adapter, ``against``) and under base + adapter ``name``, compared (``clearlm.tune.compare``;
the page ``/adapters/{name}/compare`` calls it).

The answer is one pipeline turn of the tuned model (``BASE:NAME``): generated (greedy) or the given
``target`` forced, checked by the policies and written to the audit log like any generation. Both
explanations attribute that same answer (``clearlm.tune.compare_turn``), so the two models are
compared on identical tokens. The server must serve the adapters (``clearlm serve --adapter NAME``).
"""

from __future__ import annotations

import time
from typing import Annotated, Literal

import anyio
from fastapi import Path, Request
from pydantic import ConfigDict, Field

from clearlm.errors import InvalidInputError, ModelNotFoundError
from clearlm.models import SamplingParams
from clearlm.models.chat import validate_prompt
from clearlm.pipeline import TurnRequest
from clearlm.server import protocol as p
from clearlm.server.routes import api_router, state
from clearlm.server.serving import chat_prompt, check_explain, open_turn, run_to_end
from clearlm.tune.adapters import NAME
from clearlm.tune.compare import check_reference
from clearlm.tune.compare_turn import compare_turn

router = api_router()
MAX_TOP_K = 100
MAX_NEW_TOKENS = 256
AdapterName = Annotated[
    str,
    Path(
        pattern=NAME.pattern,
        max_length=64,
        description="A served adapter's name (clearlm serve --adapter NAME).",
    ),
]


def _compare_schema(schema: dict) -> None:
    """JSON Schema of what the route takes: a method with its own options; messages (some text) or a
    non-blank prompt, exactly one."""
    schema["allOf"] = [
        {"anyOf": p._method_variants()},
        {
            "oneOf": [
                {
                    "required": ["messages"],
                    "properties": {
                        "messages": {"type": "array", "minItems": 1, "contains": p._SOME_TEXT},
                        "prompt": {"type": "null"},
                    },
                },
                {
                    "required": ["prompt"],
                    "properties": {
                        "prompt": {"type": "string", "pattern": "\\S"},
                        "messages": {"type": "null"},
                    },
                },
            ]
        },
    ]


class CompareRequest(p._Request):
    """The prompt (``messages``, or ``prompt`` text to continue: exactly one), optionally the continuation
    to attribute (``target``; default: the tuned model's greedy answer of at most ``max_tokens``), the
    attribution method and its options, the level (tokens, or words with sub-word scores summed), how
    many moved prompt tokens to list, and what to compare with (``against``: another served adapter;
    default: the base)."""

    model_config = ConfigDict(json_schema_extra=_compare_schema)
    messages: list[p.ChatMessage] | None = Field(default=None, max_length=p.MAX_MESSAGES)
    prompt: str | None = Field(default=None, max_length=p.MAX_MESSAGE_CHARS)
    target: str | None = Field(
        default=None,
        max_length=p.MAX_TARGET_CHARS,
        pattern=r"\S",
        description="The continuation to attribute (some text); default: the tuned model's answer.",
    )
    max_tokens: int = Field(default=16, ge=1, le=MAX_NEW_TOKENS)
    method: str = p._METHOD
    options: p.Options = Field(default_factory=dict)  # type: ignore[assignment]
    level: Literal["token", "word"] = "token"
    top_k: int = Field(default=10, ge=0, le=MAX_TOP_K)
    against: str | None = Field(
        default=None,
        pattern=NAME.pattern,
        max_length=64,
        description="Another served adapter to compare with; default: the base.",
    )


@router.post(
    "/adapters/{name}/compare",
    responses={404: {"model": p.ErrorResponse, "description": "An adapter is not served here."}},
)
async def compare_adapter(name: AdapterName, body: CompareRequest, request: Request) -> dict:
    """The comparison: ``{id, object: "adapter.comparison", created, model, base_model, reference_model,
    adapter, against, text, comparison}`` where ``comparison`` is ``AdapterComparison.to_dict()`` (null when
    the policy withheld the answer) and ``reference_model`` the model compared with (the base, or
    ``BASE:AGAINST``)."""
    st = state(request)
    router_ = st.backend
    if not hasattr(router_, "select"):
        raise ModelNotFoundError(
            f"this server serves no LoRA adapters: start it with `clearlm serve --backend torch --adapter {name}`"
        )
    tuned_view = router_.view(name)  # (404 for an adapter not served here)
    check_reference(name, body.against)
    router_.view(body.against)  # (404 for an unserved one too, before the turn runs)
    if (body.messages is None) == (body.prompt is None):
        raise InvalidInputError("give the prompt as messages or as prompt text (exactly one)")
    prompt = chat_prompt(body.messages) if body.messages is not None else body.prompt
    validate_prompt(prompt)
    check_explain(p.ExplainSpec(method=body.method, options=body.options))
    router_.select(tuned_view.name)  # the turn (and the record's model) is the tuned model's
    record = request.state.audit_record
    record.model = tuned_view.name
    record.parameters = {
        "explain": {"method": body.method, **body.options},
        "compare": {"adapter": name, "against": body.against},
    }
    if body.target is None:
        turn_request = TurnRequest(prompt, SamplingParams(max_new_tokens=body.max_tokens))
    else:
        turn_request = TurnRequest(prompt, SamplingParams(max_new_tokens=1), target=body.target)
    turn = await open_turn(request, st, turn_request, "compare-")
    await run_to_end(st, turn)
    # explained on torch views (the served ones, or a torch twin's when vLLM serves the adapters)
    base_view = await anyio.to_thread.run_sync(st.explainer, body.against)
    explained = await anyio.to_thread.run_sync(st.explainer, name)
    comparison = await anyio.to_thread.run_sync(
        compare_turn,
        base_view,
        explained,
        name,
        turn,
        body.method,
        body.options,
        body.level,
        body.top_k,
        body.against,
    )
    return {
        "id": turn.record.request_id,
        "object": "adapter.comparison",
        "created": int(time.time()),
        "model": tuned_view.name,
        "base_model": router_.base_name,
        "reference_model": base_view.name,
        "adapter": name,
        "against": body.against,
        "text": turn.choices[0].text,
        "comparison": None if comparison is None else comparison.to_dict(),
    }
