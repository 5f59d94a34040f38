"""Slot extraction by the model, through the pipeline: the pending question's slot asked as JSON constrained
to the slot's own schema (its enum, pattern or JSON Schema), decoded under that constraint (xgrammar for
torch, a GBNF grammar for llama.cpp: ``SamplingParams.json_output``), so the answer always parses.

What the deterministic :class:`~clearlm.apps.support.extract.PatternExtractor` finds is taken as it is
(no model call); the model is asked only for the pending slot when the patterns found nothing. Either
way the flow validates each value before keeping it.
"""

from __future__ import annotations

import json
from typing import Any

from clearlm.apps.support.extract import Extractor, PatternExtractor, pending_ask
from clearlm.apps.support.flows import Ask, Flow
from clearlm.apps.support.slots import valid_value
from clearlm.apps.support.state import FlowState
from clearlm.models.chat import Message

INSTRUCTION = (
    "Extract the value of {slot!r} from the customer's message for this question: {prompt!r}. Answer "
    'with JSON {{"{slot}": value}}; the value is null when the message does not give it.'
)


def slot_schema(ask: Ask) -> dict:
    """The JSON Schema of ``{slot: value or null}`` for an ask step: its enum, its pattern (a string
    that matches it whole) or its own schema; any string otherwise."""
    if ask.enum:
        value: dict = {"enum": list(ask.enum)}
    elif ask.json_schema:
        value = dict(ask.json_schema)
    elif ask.pattern:  # the whole value matches it (anchored: llama.cpp's grammars need ^ and $)
        core = ask.pattern.removeprefix("^").removesuffix("$")
        value = {"type": "string", "pattern": f"^({core})$"}
    else:
        value = {"type": "string"}
    return {
        "type": "object",
        "properties": {ask.slot: {"anyOf": [value, {"type": "null"}]}},
        "required": [ask.slot],
        "additionalProperties": False,
    }


class ModelExtractor:
    """An :class:`Extractor` that asks the model (through ``runner``, a
    :class:`~clearlm.apps.support.turns.TurnRunner`: one audited turn, endpoint ``support:extract``) for
    the pending slot when ``fallback`` (default :class:`PatternExtractor`) finds nothing for it.

    Args:
        runner: the desk's turn runner. tenant, conversation_id: whose turn it is (for the audit record).
    """

    def __init__(self, runner, tenant: str, conversation_id: str, fallback: Extractor | None = None) -> None:
        self.runner = runner
        self.tenant = tenant
        self.conversation_id = conversation_id
        self.fallback = fallback or PatternExtractor()
        self.asked = 0  # model calls made (one per message at most)

    def extract(self, flow: Flow, state: FlowState, text: str) -> dict[str, Any]:
        found = self.fallback.extract(flow, state, text)
        pending = pending_ask(flow, state)
        if pending is None or pending.slot in found:
            return found
        prompt = [
            Message("system", INSTRUCTION.format(slot=pending.slot, prompt=pending.prompt)),
            Message("user", text),
        ]
        schema = json.dumps(slot_schema(pending))
        self.asked += 1
        out = self.runner.generate(self.tenant, self.conversation_id, prompt, "extract", schema=schema)
        try:
            value = json.loads(out.text).get(pending.slot)
        except (ValueError, AttributeError):  # cut at the token limit, or refused by the policy
            return found
        ok, value = valid_value(pending, value)
        if ok:
            found[pending.slot] = value
        return found
