"""Slot values: checking an answer against an ask step, reaching into a tool's result
(``order.status``), filling ``{slot}`` templates, and testing a branch's conditions."""

from __future__ import annotations

import re
from typing import Any

import jsonschema

from clearlm.apps.support.flows import TEMPLATE, Ask, Condition
from clearlm.apps.support.state import FlowState

MISSING = object()  # what lookup() gives for a path that is not there


def valid_value(ask: Ask, value: Any) -> tuple[bool, Any]:
    """Whether ``value`` passes the ask step's checks (pattern: the whole value; enum: one of them,
    case-insensitive for text, giving the enum's spelling; schema: JSON Schema), and the value to keep."""
    if value is None:
        return False, None
    if ask.enum is not None:
        match = [v for v in ask.enum if v == value or str(v).lower() == str(value).strip().lower()]
        if not match:
            return False, None
        value = match[0]
    if ask.pattern is not None and not re.fullmatch(ask.pattern, str(value).strip()):
        return False, None
    if ask.pattern is not None:
        value = str(value).strip()
    if ask.json_schema is not None:
        try:
            jsonschema.validate(value, ask.json_schema)
        except jsonschema.ValidationError:
            return False, None
    return True, value


def lookup(slots: dict, path: str) -> Any:
    """The value at ``path`` (``order`` or ``order.status``) in ``slots``; ``MISSING`` if absent."""
    value: Any = slots
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return MISSING
        value = value[part]
    return value


class Localized(str):
    """A flow's text with its variants by language: as a ``str``, the text in ``language`` (the desk's,
    ``DESK_LANGUAGE``, when the flow gives it; else the first variant); ``variants``: ``{code: text}``,
    every variant rendered. The desk picks the customer's (``translation.fixed_reply``)."""

    language: str
    variants: dict[str, str]

    def __new__(cls, variants: dict[str, str]) -> Localized:
        language = DESK_LANGUAGE if DESK_LANGUAGE in variants else next(iter(variants))
        out = super().__new__(cls, variants[language])
        out.language, out.variants = language, dict(variants)
        return out


DESK_LANGUAGE = "en"  # the language of a flow's plain-string texts and of the desk's own


def default_text(text: str | dict[str, str]) -> str:
    """A flow text as one string: itself, or its variant in ``DESK_LANGUAGE`` (else its first)."""
    return str(Localized(text)) if isinstance(text, dict) else text


def render(text: str | dict[str, str], state: FlowState, extra: dict | None = None) -> str:
    """``text`` with each ``{slot}`` / ``{slot.key}`` replaced by its value (empty when unset); a text
    given by language (``{en: ..., es: ...}``) gives a :class:`Localized` with each variant rendered."""
    if isinstance(text, dict):
        return Localized({code: render(t, state, extra) for code, t in text.items()})
    scope = {**state.slots, "last_message": state.last_message or "", **(extra or {})}

    def one(m: re.Match) -> str:
        value = lookup(scope, m.group(1))
        return "" if value is MISSING or value is None else str(value)

    return TEMPLATE.sub(one, text)


def holds(condition: Condition, slots: dict) -> bool:
    """Whether ``condition`` holds over ``slots`` (a missing slot fails every test but ``exists: false``)."""
    value = lookup(slots, condition.slot)
    given = condition.operators()
    if "exists" in given:
        return (value is not MISSING and value is not None) == condition.exists
    if value is MISSING:
        return False
    if "equals" in given:
        return value == condition.equals
    if "in" in given:
        return value in condition.in_
    if not isinstance(value, int | float) or isinstance(value, bool):
        return False
    op, bound = next((k, getattr(condition, k)) for k in ("lt", "le", "gt", "ge") if k in given)
    return {"lt": value < bound, "le": value <= bound, "gt": value > bound, "ge": value >= bound}[op]


def argument(value: Any, state: FlowState) -> Any:
    if isinstance(value, str):
        whole = TEMPLATE.fullmatch(value)
        if whole:
            found = lookup(state.slots, whole.group(1))
            return None if found is MISSING else found
        return render(value, state)
    return value
