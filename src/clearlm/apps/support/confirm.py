"""Confirmations before a tool is called: the flow engine's part (pure, like :mod:`.engine`).

A tool declared ``confirm: customer`` (:mod:`.tools`) is called only after the customer answers "yes" to
a question that says what it does and with which arguments; ``confirm: agent``: only after a person
approves it (:mod:`.approvals` puts the request in the review queue and feeds the decision back as a
:class:`~clearlm.apps.support.state.Decision`). Meanwhile the flow waits (``FlowState.waiting``
``customer`` or ``agent``) and its state, saved with the conversation, holds the call as it was shown
(``pending``), so a restart loses nothing. "No" (or a person's refusal) goes to the call step's
``on_declined``, or ends the flow with the flow's ``declined_message``. An answer that is neither is
asked again once; a second one is an invalid answer: the flow's ``fallback``, or a hand-off. Every
decision is kept in ``FlowState.confirmations`` and shows as a :class:`Confirmed` action (audited).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime

from clearlm.apps.support.flows import Flow, Step
from clearlm.apps.support.slots import render
from clearlm.apps.support.state import (
    Action,
    ApprovalWithdrawn,
    AwaitApproval,
    CallTool,
    Confirm,
    Confirmed,
    Decision,
    FlowEnded,
    FlowState,
    Reply,
)
from clearlm.errors import InvalidInputError

# The first word of a yes or a no, in English, Spanish, French, German, Portuguese and Italian.
YES = frozenset({"yes", "y", "yeah", "yep", "sure", "ok", "okay", "sí", "si", "sì", "oui", "ja", "sim"})
NO = frozenset({"no", "n", "nope", "non", "nein", "não", "nao"})
MAX_UNCLEAR = 2  # answers that are neither yes nor no before the invalid-answer path (asked, asked again)
ASK_AGAIN = "Please answer just yes or no. "


def yes_or_no(text: str) -> bool | None:
    """True for a yes, False for a no, None for anything else: the text's first word (case-insensitive)
    is one of :data:`YES` or :data:`NO` ("Yes please", "non merci", "Sí, claro")."""
    words = re.findall(r"\w+", text.casefold())
    if not words:
        return None
    return True if words[0] in YES else False if words[0] in NO else None


def _arguments(arguments: Mapping) -> str:
    return ", ".join(f"{k.replace('_', ' ')}: {v}" for k, v in arguments.items()) or "no arguments"


def _text(template: str, state: FlowState, need: Confirm | None, tool: str, arguments: Mapping) -> str:
    action = need.action if need is not None else tool.replace("_", " ")
    return render(template, state, {"tool": tool, "action": action, "arguments": _arguments(arguments)})


def question(flow: Flow, step: Step, state: FlowState, need: Confirm | None) -> str:
    """The customer's yes/no question for the call ``step`` (its ``confirm_message``, else the flow's)."""
    pending = state.pending or {}
    template = step.call.confirm_message or flow.confirm_message
    return _text(template, state, need, pending.get("tool", step.call.tool), pending.get("arguments", {}))


def ask(flow: Flow, step: Step, state: FlowState, need: Confirm, arguments: dict, actions: list) -> None:
    """The call ``step`` needs ``need`` before it runs: ask the customer, or a person; the flow waits."""
    state.pending = {"tool": step.call.tool, "arguments": arguments}
    state.invalid = 0
    if need.by == "customer":
        actions.append(Reply(question(flow, step, state, need)))
        state.waiting = "customer"
        return
    actions.append(Reply(_text(flow.approval_message, state, need, step.call.tool, arguments)))
    actions.append(AwaitApproval(step.call.tool, arguments, step.id))
    state.waiting = "agent"


def answer(flow: Flow, state: FlowState, text: str, need: Confirm | None, actions: list[Action]) -> str:
    """The customer's answer while the flow waits for their yes or no: ``"run"`` (the caller goes on
    with ``state``: the call, or the step after a no), ``"wait"`` (asked again; the flow waits) or
    ``"invalid"`` (no yes or no twice: the caller takes the invalid-answer path)."""
    step = flow.step(state.step)
    said = yes_or_no(text)
    if said is None:
        state.invalid += 1
        if state.invalid < MAX_UNCLEAR:
            actions.append(Reply(ASK_AGAIN + question(flow, step, state, need)))
            return "wait"
        state.invalid, state.waiting, state.pending = 0, None, None
        return "invalid"
    decide(flow, state, said, "customer", None, actions)
    return "run"


def decide(flow: Flow, state: FlowState, approved: bool, by: str, at: str | None, actions: list) -> None:
    """Record the decision on the pending call and set the flow to go on: the call (``CallTool`` in
    ``actions``, the flow waits for its result) or, refused, ``on_declined`` (the flow runs on from
    there) or the end (``declined_message``, the flow cancelled, ``FlowEnded("declined")``)."""
    step = flow.step(state.step)
    pending = state.pending or {"tool": step.call.tool, "arguments": {}}
    at = at or datetime.now(UTC).isoformat()
    record = {**pending, "by": by, "approved": approved, "at": at, "step": step.id}
    state.confirmations = [*state.confirmations, record]
    state.pending, state.invalid = None, 0
    actions.append(Confirmed(pending["tool"], pending["arguments"], by, approved, at))
    if approved:
        actions.append(CallTool(pending["tool"], pending["arguments"], step.call.result))
        state.waiting = "tool"
        return
    state.waiting = None
    if step.call.on_declined is not None:
        state.step = step.call.on_declined
        return
    actions.append(Reply(render(flow.declined_message, state)))
    actions.append(FlowEnded("declined"))
    state.status, state.step = "cancelled", None


def person_decided(flow: Flow, state: FlowState, event: Decision, actions: list) -> None:
    """A person's :class:`Decision` on the call the flow waits for (see :func:`decide`).
    InvalidInputError: the flow waits for no person's approval."""
    if state.waiting != "agent":
        raise InvalidInputError(f"the flow {flow.name!r} is not waiting for a person's approval")
    decide(flow, state, event.approved, event.by, event.at, actions)


def waiting_note(flow: Flow, state: FlowState, need: Confirm | None) -> Reply:
    """What the customer is told when they write while a person has still to approve."""
    pending = state.pending or {}
    tool = pending.get("tool", "")
    return Reply(_text(flow.approval_wait_message, state, need, tool, pending.get("arguments", {})))


def settled(before: str | None, state: FlowState, actions: list) -> list:
    """``actions``, with :class:`ApprovalWithdrawn` first when the flow stopped waiting for a person
    (``before`` was ``agent``) without a decision: the customer cancelled or asked for a person. A flow
    that is over keeps no pending call."""
    tool = (state.pending or {}).get("tool", "")
    if state.status != "active":
        state.pending = None
    if before != "agent" or state.waiting == "agent" or any(isinstance(a, Confirmed) for a in actions):
        return actions
    state.pending = None
    return [ApprovalWithdrawn(tool), *actions]
