"""Slot extraction: from the customer's words to slot values the flow then validates.

The model extracts them later, through the pipeline (an :class:`Extractor` that asks it); the default,
:class:`PatternExtractor`, is deterministic: it finds an ask step's enum values and pattern matches in
the text, and takes the whole answer for the pending question when that has no enum or pattern.
"""

from __future__ import annotations

import json
import re
from typing import Any, Protocol

from clearlm.apps.support.flows import Ask, Flow
from clearlm.apps.support.state import FlowState


class Extractor(Protocol):
    """Turns a customer's message into ``{slot: value}`` for the flow's ask slots. It proposes; the flow
    validates each value and re-asks the pending question when its value is missing or invalid."""

    def extract(self, flow: Flow, state: FlowState, text: str) -> dict[str, Any]: ...


def pending_ask(flow: Flow, state: FlowState) -> Ask | None:
    """The ask step waiting for the customer's answer, or None."""
    if state.waiting != "slot" or state.step is None:
        return None
    return flow.step(state.step).ask


class PatternExtractor:
    """Deterministic extraction. For every ask slot of the flow: the one enum value named in the text
    (case-insensitive; ``wrong_item`` also matches "wrong item"), else the first match of its
    ``pattern`` standing as a word of its own. For the pending question only, when it has neither: the
    text parsed as JSON if it is JSON (a number, a list), else the stripped text."""

    def extract(self, flow: Flow, state: FlowState, text: str) -> dict[str, Any]:
        pending = pending_ask(flow, state)
        out: dict[str, Any] = {}
        for name, spec in flow.slots().items():
            if not isinstance(spec, Ask):
                continue
            value = _enum_value(spec, text) if spec.enum else None
            if value is None and spec.pattern:
                value = _pattern_value(spec.pattern, text)
            if value is None and spec is pending and not spec.enum and not spec.pattern:
                value = _free_value(text, bool(spec.json_schema))
            if value is not None:
                out[name] = value
        return out


def _words(value: str) -> str:
    return " ".join(re.split(r"[\s_\-]+", value.strip().lower()))


def _enum_value(spec: Ask, text: str) -> Any:
    said = " " + _words(re.sub(r"[^\w\s-]", " ", text)) + " "
    found = [v for v in spec.enum if f" {_words(str(v))} " in said]
    return found[0] if len(found) == 1 else None


def _pattern_value(pattern: str, text: str) -> str | None:
    for m in re.finditer(pattern, text):
        before = text[m.start() - 1] if m.start() > 0 else " "
        after = text[m.end()] if m.end() < len(text) else " "
        if m.group(0) and not (before.isalnum() or after.isalnum()):
            return m.group(0)
    return None


def _free_value(text: str, as_json: bool) -> Any:
    text = text.strip()
    if not text:
        return None
    if as_json:
        try:
            return json.loads(text)
        except ValueError:
            pass
    return text


HANDOFF_WORDS = re.compile(
    r"\b(human|real person|a person|someone real|an agent|a colleague|speak to (someone|somebody)|"
    r"talk to (someone|somebody)|operator|representative)\b",
    re.IGNORECASE,
)
CANCEL_WORDS = re.compile(r"^\s*(cancel|stop|never ?mind|forget it)\b", re.IGNORECASE)


def intent_of(text: str) -> str | None:
    """What the customer asks for beyond the flow's question, by keywords: ``handoff`` (a person:
    "can I talk to a human?"), ``cancel`` (a message starting "cancel", "stop", "never mind"), or None."""
    if HANDOFF_WORDS.search(text):
        return "handoff"
    if CANCEL_WORDS.search(text):
        return "cancel"
    return None
