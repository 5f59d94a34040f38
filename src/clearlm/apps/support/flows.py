"""Dialog flows in YAML: the desk's procedures (a return, an address change) as steps over slots.

A flow file holds one flow::

    name: returns
    max_invalid: 3                # invalid answers to one question before the fallback
    fallback: person              # a step id; without one, a hand-off
    steps:
      - id: order
        ask: {slot: order_number, prompt: "Your order number?", pattern: 'A-\\d{5}',
              invalid: "An order number looks like A-12345."}
      - id: lookup
        call: {tool: lookup_order, args: {number: "{order_number}"}, result: order}
      - id: check
        branch:
          - {if: {slot: order.days_since_delivery, le: 30}, next: accepted}
          - {next: person}        # no ``if``: the default
      - {id: accepted, say: "Return accepted for {order_number}.", next: done}
      - {id: person, handoff: {reason: outside_return_window}}
      - {id: done, end: {}}

Each step does exactly one of ``ask``, ``say``, ``call``, ``branch``, ``answer``, ``handoff``, ``end``,
then goes to ``next`` (default: the step below it; past the last step the flow ends). Texts may name
slots as ``{slot}`` or ``{slot.key}``. A text said to the customer (a prompt, an ``invalid`` message,
``say``, a hand-off's or end's ``message``, the flow's ``*_message``) is a string, or its variants by
language, ``{en: "Your order number?", es: "¿Su número de pedido?"}`` (ISO 639-1 codes): a customer
whose language has a variant gets it; otherwise the desk translates the English (or first) one
(:func:`clearlm.apps.support.translation.fixed_reply`). The shapes follow Rasa's flows (``collect``, ``action``, ``next``
with ``if``); :mod:`clearlm.apps.support.engine` runs them.

Files are read and checked as a whole by :mod:`clearlm.apps.support.loading`; its errors are
:class:`FlowError` (an InvalidInputError) naming the file, the step and the field.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from clearlm.errors import InvalidInputError

KINDS = ("ask", "say", "call", "branch", "answer", "handoff", "end")
NAME = r"[A-Za-z_][A-Za-z0-9_]*"
TEMPLATE = re.compile(r"\{(" + NAME + r"(?:\." + NAME + r")*)\}")


def _variants(value: str | dict[str, str]) -> str | dict[str, str]:
    if isinstance(value, dict):
        bad = [k for k in value if not re.fullmatch(r"[a-z]{2}", k)]
        if not value or bad:
            raise ValueError(f"a text's variants are {{language: text}}, ISO 639-1 codes (en, es); got {bad}")
    return value


Text = Annotated[str | dict[str, str], AfterValidator(_variants)]  # a text, or its variants by language


class FlowError(InvalidInputError):
    """A flow file that cannot be used: bad YAML, a missing or unknown field, a reference to an unknown
    step or slot. The message names the file, the step and the field."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class Ask(_Model):
    """Ask the customer for ``slot``. A value must pass every check given: ``pattern`` (a regular
    expression the whole value matches), ``enum`` (one of these values), ``schema`` (a JSON Schema).
    ``invalid``: the re-ask text saying the expected format (default: ``prompt``). ``synonyms``: for
    an enum, ``{value: [word or phrase, ...]}``, other words (any language) that name a value in the
    customer's message (``damaged: [broken, roto]``): the patterns find them, and a value the model
    picks is kept only when the message names it (:func:`~clearlm.apps.support.extract.supported`).
    Skipped when the slot is filled already (the customer gave it before it was asked)."""

    slot: str = Field(pattern=f"^{NAME}$")
    prompt: Text
    pattern: str | None = None
    enum: list[Any] | None = None
    json_schema: dict | None = Field(default=None, alias="schema")
    invalid: Text | None = None
    max_invalid: int | None = Field(default=None, ge=1)
    synonyms: dict[str, list[str]] = {}

    @model_validator(mode="after")
    def _synonyms_of_values(self) -> Ask:
        unknown = set(self.synonyms) - {str(v) for v in self.enum or ()}
        if unknown:
            raise ValueError(f"synonyms name no value of the enum: {sorted(unknown)}")
        return self


class Call(_Model):
    """Call the tool ``tool`` with ``args`` (templates over slots; ``"{slot}"`` alone passes the value
    as it is) and keep its result in the slot ``result``. On failure go to ``on_error``; without it,
    the customer is told and the conversation handed off. A tool declared ``confirm: customer`` or
    ``confirm: agent`` (:mod:`clearlm.apps.support.tools`) is called only once confirmed:
    ``confirm_message`` is this call's yes/no question to the customer (a template; default: the
    flow's); ``on_declined``: the step a "no" (or a person's refusal) goes to (default: the flow ends,
    ``declined_message`` said)."""

    tool: str
    args: dict[str, Any] = {}
    result: str = Field(pattern=f"^{NAME}$")
    on_error: str | None = None
    confirm_message: str | None = None
    on_declined: str | None = None


class Condition(_Model):
    """A test of one slot (``slot`` may reach into a tool's result: ``order.status``) with exactly one
    operator: ``equals``, ``in`` (a list), ``exists`` (true/false), or ``lt``/``le``/``gt``/``ge``."""

    slot: str = Field(pattern=rf"^{NAME}(\.{NAME})*$")
    equals: Any = None
    in_: list[Any] | None = Field(default=None, alias="in")
    exists: bool | None = None
    lt: float | None = None
    le: float | None = None
    gt: float | None = None
    ge: float | None = None

    @model_validator(mode="after")
    def _one_operator(self) -> Condition:
        given = [k for k in ("equals", "in", "exists", "lt", "le", "gt", "ge") if k in self.operators()]
        if len(given) != 1:
            raise ValueError(
                f"a condition has exactly one of equals, in, exists, lt, le, gt, ge; got {given}"
            )
        return self

    def operators(self) -> set[str]:
        """The operators given (``in`` for the ``in_`` field)."""
        return {"in" if k == "in_" else k for k in self.model_fields_set}


class Route(_Model):
    """One way out of a branch: go to ``next`` when every condition of ``if`` holds (no ``if``: always)."""

    if_: Condition | list[Condition] | None = Field(default=None, alias="if")
    next: str

    @property
    def conditions(self) -> list[Condition]:
        return [] if self.if_ is None else self.if_ if isinstance(self.if_, list) else [self.if_]


class Answer(_Model):
    """Answer from a knowledge base (the caller retrieves and answers): ``question`` (a template; default:
    the customer's last message), ``knowledge_base`` (default: the flow's)."""

    question: str | None = None
    knowledge_base: str | None = None


class HandOff(_Model):
    """Hand the conversation to a person: ``reason`` (for the queue), ``message`` (to the customer)."""

    reason: str = "flow"
    message: Text | None = None


class End(_Model):
    """End the flow, completed; ``message`` is said first."""

    message: Text | None = None


class Step(_Model):
    id: str = Field(pattern=f"^{NAME}$")
    ask: Ask | None = None
    say: Text | None = None
    call: Call | None = None
    branch: list[Route] | None = Field(default=None, min_length=1)
    answer: Answer | None = None
    handoff: HandOff | None = None
    end: End | None = None
    next: str | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> Step:
        kinds = [k for k in KINDS if getattr(self, k) is not None]
        if len(kinds) != 1:
            raise ValueError(f"a step does exactly one of {', '.join(KINDS)}; got {kinds or 'none'}")
        return self

    @property
    def kind(self) -> str:
        return next(k for k in KINDS if getattr(self, k) is not None)


class Flow(_Model):
    """A flow. Besides ``steps``: ``knowledge_base`` (for ``answer`` steps and questions asked
    mid-flow), ``max_invalid`` (invalid answers before the fallback; an ask may override it),
    ``fallback`` (a step id; None: hand off with ``fallback_message``), ``cancel_intents`` and
    ``cancel_message``, ``handoff_intents`` (the customer asks for a person) and ``handoff_message``,
    ``tool_error_message`` (``{tool}``: the tool's name; then a hand-off unless the call has
    ``on_error``), ``triggers`` (words or phrases that start the flow when a customer's message outside
    any flow contains one, case-insensitive, as whole words). Confirmations (:mod:`.confirm`; templates
    that may also name ``{tool}``, ``{action}``, the tool's description, and ``{arguments}``):
    ``confirm_message`` (the customer's yes/no question), ``declined_message`` (a "no" without
    ``on_declined``), ``approval_message`` (a person must approve first) and ``approval_wait_message``
    (the customer writes meanwhile). ``loading.parse_flow`` checks the references; a Flow built
    otherwise is not."""

    name: str = Field(pattern=f"^{NAME}$")
    description: str = ""
    triggers: list[str] = []
    knowledge_base: str | None = None
    max_invalid: int = Field(default=3, ge=1)
    fallback: str | None = None
    fallback_message: Text = "Sorry, I could not understand that. Let me get a person to help you."
    cancel_intents: list[str] = ["cancel", "stop"]
    cancel_message: Text = "OK, I have stopped. Is there anything else I can help with?"
    handoff_intents: list[str] = ["handoff"]
    handoff_message: Text = "I am passing you to a person; they will answer here shortly."
    tool_error_message: Text = "Sorry, {tool} is not working right now. I am passing you to a person."
    confirm_message: str = (
        "Please confirm: {action} ({arguments}). Shall I go ahead? Please answer yes or no."
    )
    declined_message: str = "All right, I have not done it. Is there anything else I can help with?"
    approval_message: str = (
        "A colleague must approve this first: {action} ({arguments}). You will see their answer here."
    )
    approval_wait_message: str = "A colleague still has to approve this; you will see their answer here."
    steps: list[Step] = Field(min_length=1)

    def step(self, step_id: str) -> Step:
        return next(s for s in self.steps if s.id == step_id)

    def after(self, step: Step) -> str | None:
        """The id of the step that follows ``step`` (its ``next``, else the one below), or None."""
        if step.next is not None:
            return step.next
        i = self.steps.index(step)
        return self.steps[i + 1].id if i + 1 < len(self.steps) else None

    def slots(self) -> dict[str, Ask | Call]:
        """The slots the flow fills: ``{name: the ask or call step's spec}``."""
        out: dict[str, Ask | Call] = {}
        for s in self.steps:
            if s.ask:
                out[s.ask.slot] = s.ask
            elif s.call:
                out[s.call.result] = s.call
        return out
