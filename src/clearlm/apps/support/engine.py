"""The flow engine: a pure state machine, ``advance(flow, state, event) -> (state, actions)``.

It runs steps until it must wait (for the customer's answer to an ``ask``, a tool's result, or a
confirmation of a tool call: :mod:`.confirm`) or the flow is over, and returns what the caller must do
(:mod:`clearlm.apps.support.state`: reply, call a tool, answer from a knowledge base, hand off). The state is plain JSON, so a conversation resumes
from its saved state in any process. As in Rasa's flow executor, the model fills slots and the flow
decides what happens next; a step cap breaks a loop of steps that never wait.

:class:`FlowEngine` wraps it for a caller with tools registered in Python: it extracts slots from the
customer's text and calls the tools, recording each call (:class:`ToolCalled`) for the audit.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from pydantic_core import to_jsonable_python

from clearlm.apps.support import confirm as confirming
from clearlm.apps.support.extract import Extractor, PatternExtractor, pending_ask
from clearlm.apps.support.flows import Ask, Flow, FlowError, Step
from clearlm.apps.support.slots import argument, holds, render, valid_value
from clearlm.apps.support.state import (
    Action,
    AnswerFromKnowledge,
    CallTool,
    Confirm,
    CustomerMessage,
    Decision,
    Event,
    FlowEnded,
    FlowState,
    HandOff,
    Reply,
    ToolCalled,
    ToolResult,
)
from clearlm.apps.support.tools import Tool, confirmations
from clearlm.errors import InvalidInputError

MAX_STEPS = 200  # steps run in one advance before the flow is taken to loop
MAX_TOOL_CALLS = 20  # tool calls FlowEngine makes in one turn


def advance(
    flow: Flow,
    state: FlowState | dict | None,
    event: Event | None = None,
    confirm: Mapping[str, Confirm] | None = None,
):
    """One turn of ``flow``: apply ``event`` to ``state`` and run steps until the flow waits or ends.

    Args:
        flow: the flow. state: a :class:`FlowState`, its JSON, or None to start the flow.
        event: a :class:`CustomerMessage` (its slots already extracted; while the flow waits for a
            confirmation, the customer's yes or no), a :class:`ToolResult`, a :class:`Decision` (a
            person's, on a call waiting for one), or None (only to start).
        confirm: ``{tool: Confirm}``, the tools that are called only once confirmed (:mod:`.confirm`).

    Returns:
        ``(new_state, actions)``: the state (a new object; ``state`` is not changed) and the actions,
        in order. A flow that is over (completed, cancelled, handed off) answers no event: ``[]``.

    Raises:
        InvalidInputError: a state of another flow or of a step the flow no longer has; a tool result
            the flow is not waiting for; a message while it waits for a tool; a decision while it waits
            for none. FlowError: the flow ran ``MAX_STEPS`` steps without waiting (a loop of branches).
    """
    state = _state(flow, state)
    before = state.waiting
    state, actions = _advance(flow, state, event, confirm or {})
    return state, confirming.settled(before, state, actions)


def _advance(flow: Flow, state: FlowState, event: Event | None, confirm: Mapping[str, Confirm]):
    actions: list[Action] = []
    if state.status != "active":
        return state, actions
    if isinstance(event, ToolResult):
        return _tool_result(flow, state, event, confirm)
    if isinstance(event, Decision):
        confirming.person_decided(flow, state, event, actions)
        return _run(flow, state, actions, confirm)
    if isinstance(event, CustomerMessage):
        state.last_message = event.text
        if event.intent in flow.cancel_intents:
            state.status, state.step, state.waiting = "cancelled", None, None
            return state, [Reply(render(flow.cancel_message, state)), FlowEnded("cancelled")]
        if event.intent in flow.handoff_intents:
            return _hand_off(state, [Reply(render(flow.handoff_message, state))], "customer_asked", None)
        if state.waiting == "tool":
            raise InvalidInputError(f"the flow {flow.name!r} is waiting for a tool's result, not a message")
        if state.waiting in ("customer", "agent"):
            return _while_confirming(flow, state, event, confirm)
        if event.digression:
            actions.append(AnswerFromKnowledge(event.text, flow.knowledge_base))
            pending = pending_ask(flow, state)
            if pending is not None:
                return state, [*actions, Reply(render(pending.prompt, state))]
        else:
            _fill(flow, state, event.slots)
            if state.waiting == "slot":
                return _answer(flow, state, event.slots, actions, confirm)
    elif state.waiting is not None:
        raise InvalidInputError(f"the flow {flow.name!r} is waiting: advance it with an event")
    return _run(flow, state, actions, confirm)


def _while_confirming(flow: Flow, state: FlowState, event: CustomerMessage, confirm):
    """A message while the flow waits for a confirmation: the customer's yes or no, or a note that a
    person has still to approve."""
    need = confirm.get((state.pending or {}).get("tool", ""))
    if state.waiting == "agent":
        return state, [confirming.waiting_note(flow, state, need)]
    actions: list[Action] = []
    tool = (state.pending or {}).get("tool")
    done = confirming.answer(flow, state, event.text, need, actions)
    if done == "invalid":
        return _invalid(flow, state, actions, f"no yes or no to {tool}", confirm)
    return _run(flow, state, actions, confirm) if done == "run" else (state, actions)


def _state(flow: Flow, state: FlowState | dict | None) -> FlowState:
    if state is None:
        return FlowState(flow=flow.name, step=flow.steps[0].id)
    state = FlowState.from_json(state) if isinstance(state, dict) else state.model_copy(deep=True)
    if state.flow != flow.name:
        raise InvalidInputError(f"this state belongs to the flow {state.flow!r}, not {flow.name!r}")
    if state.step is not None and state.step not in {s.id for s in flow.steps}:
        raise InvalidInputError(
            f"the flow {flow.name!r} has no step {state.step!r} any more (it was edited after this state "
            "was saved): start the flow again"
        )
    kind = flow.step(state.step).kind if state.step is not None else None
    if state.waiting is not None and kind != ("ask" if state.waiting == "slot" else "call"):
        raise InvalidInputError(
            f"the step {state.step!r} of the flow {flow.name!r} no longer waits for a {state.waiting} (the "
            "flow was edited after this state was saved): start the flow again"
        )
    return state


def _fill(flow: Flow, state: FlowState, values: dict) -> None:
    """Keep the valid values of the flow's other ask slots that are still empty."""
    pending = pending_ask(flow, state)
    for name, spec in flow.slots().items():
        if isinstance(spec, Ask) and spec is not pending and name in values and name not in state.slots:
            ok, value = valid_value(spec, values[name])
            if ok:
                state.slots[name] = value


def _answer(flow: Flow, state: FlowState, values: dict, actions: list[Action], confirm):
    step = flow.step(state.step)
    ok, value = valid_value(step.ask, values.get(step.ask.slot))
    if ok:
        state.slots[step.ask.slot], state.invalid, state.waiting = value, 0, None
        state.step = flow.after(step)
        return _run(flow, state, actions, confirm)
    state.invalid += 1
    tries = step.ask.max_invalid or flow.max_invalid
    if state.invalid < tries:
        return state, [*actions, Reply(render(step.ask.invalid or step.ask.prompt, state))]
    state.invalid, state.waiting = 0, None
    return _invalid(flow, state, actions, f"no valid {step.ask.slot} after {tries} tries", confirm)


def _invalid(flow: Flow, state: FlowState, actions: list[Action], detail: str, confirm):
    """Too many invalid answers to the current step: the flow's fallback, else a hand-off."""
    if flow.fallback is not None:
        state.step = flow.fallback
        return _run(flow, state, actions, confirm)
    reply = Reply(render(flow.fallback_message, state))
    return _hand_off(state, [*actions, reply], "invalid_answers", detail, state.step)


def _tool_result(flow: Flow, state: FlowState, event: ToolResult, confirm):
    step = flow.step(state.step) if state.step else None
    if state.waiting != "tool" or step is None or step.call is None or step.call.tool != event.tool:
        raise InvalidInputError(f"the flow {flow.name!r} is not waiting for the tool {event.tool!r}")
    state.waiting = None
    if event.error is None:
        state.slots[step.call.result] = event.result
        state.step = flow.after(step)
        return _run(flow, state, [], confirm)
    if step.call.on_error is not None:
        state.step = step.call.on_error
        return _run(flow, state, [], confirm)
    reply = Reply(render(flow.tool_error_message, state, {"tool": event.tool}))
    return _hand_off(state, [reply], "tool_failed", f"{event.tool}: {event.error}", step.id)


def _hand_off(state: FlowState, actions: list[Action], reason: str, detail: str | None, step=None):
    state.status, state.step, state.waiting = "handed_off", None, None
    return state, [*actions, HandOff(reason, detail, step)]


def _run(flow: Flow, state: FlowState, actions: list[Action], confirm: Mapping[str, Confirm]):
    if state.waiting == "tool" or state.status != "active":  # a confirmed call, a declined end
        return state, actions
    for _ in range(MAX_STEPS):
        if state.step is None:
            state.status, state.waiting = "completed", None
            return state, [*actions, FlowEnded("completed")]
        step = flow.step(state.step)
        waiting = _step(flow, step, state, actions, confirm)
        if waiting or state.status != "active":
            return state, actions
    raise FlowError(
        f"the flow {flow.name!r} ran {MAX_STEPS} steps without waiting for the customer (last: "
        f"{state.step!r}): a branch loops back without an ask step on the way"
    )


def _step(flow: Flow, step: Step, state: FlowState, actions: list[Action], confirm) -> bool:
    """Run one step (appending its actions); True when the flow now waits."""
    nxt = flow.after(step)
    if step.ask is not None:
        if step.ask.slot in state.slots:  # filled earlier (said before it was asked)
            state.step = nxt
            return False
        actions.append(Reply(render(step.ask.prompt, state)))
        state.waiting = "slot"
        return True
    if step.call is not None:
        args = {k: argument(v, state) for k, v in step.call.args.items()}
        if (need := confirm.get(step.call.tool)) is not None:
            confirming.ask(flow, step, state, need, args, actions)
            return True
        actions.append(CallTool(step.call.tool, args, step.call.result))
        state.waiting = "tool"
        return True
    if step.say is not None:
        actions.append(Reply(render(step.say, state)))
    elif step.branch is not None:
        route = next((r for r in step.branch if all(holds(c, state.slots) for c in r.conditions)), None)
        nxt = route.next if route is not None else nxt
    elif step.answer is not None:
        question = render(step.answer.question, state) if step.answer.question else state.last_message
        actions.append(AnswerFromKnowledge(question or "", step.answer.knowledge_base or flow.knowledge_base))
    elif step.handoff is not None:
        if step.handoff.message:
            actions.append(Reply(render(step.handoff.message, state)))
        state.status, state.step, state.waiting = "handed_off", None, None
        actions.append(HandOff(step.handoff.reason, None, step.id))
        return False
    elif step.end is not None:
        if step.end.message:
            actions.append(Reply(render(step.end.message, state)))
        nxt = None
    state.step = nxt
    return False


class FlowEngine:
    """:func:`advance` with slot extraction and the tools registered here.

    Args:
        tools: ``{name: fn}``; ``fn(**arguments)`` returns the tool's JSON result or raises. A tool the
            flow calls that is not registered is left to the caller (a :class:`CallTool` action). A
            :class:`~clearlm.apps.support.tools.Tool` with ``confirm`` is called only once confirmed.
        extractor: proposes slot values from the customer's text (default :class:`PatternExtractor`);
            values the caller put in the event win.
    """

    def __init__(
        self, tools: Mapping[str, Callable[..., Any]] | None = None, extractor: Extractor | None = None
    ) -> None:
        self.tools: dict[str, Callable[..., Any]] = dict(tools or {})
        self.extractor = extractor or PatternExtractor()

    def register(self, name: str, fn: Callable[..., Any], confirm: str | None = None) -> None:
        """Register (or replace) the tool ``name``; ``confirm``: customer or agent (FlowError: another)."""
        self.tools[name] = Tool(fn, confirm, getattr(fn, "description", ""), name) if confirm else fn

    def advance(self, flow: Flow, state: FlowState | dict | None, event: Event | None = None):
        """As :func:`advance`; each registered tool the flow calls is called here and shows in the
        actions as :class:`ToolCalled` (its result as plain JSON: dates become ISO 8601 text; its
        error: ``"TypeName: message"``, also when the result is not JSON-serialisable). Same errors, and
        FlowError after ``MAX_TOOL_CALLS`` calls in one turn."""
        current = _state(flow, state) if isinstance(event, CustomerMessage) else None
        if current is not None and not event.digression and current.waiting not in ("customer", "agent"):
            found = self.extractor.extract(flow, current, event.text)
            event = CustomerMessage(event.text, {**found, **event.slots}, event.intent, event.digression)
        confirm = confirmations(self.tools)
        state, actions = advance(flow, state, event, confirm)
        out: list[Action] = []
        for _ in range(MAX_TOOL_CALLS):
            call = actions[-1] if actions and isinstance(actions[-1], CallTool) else None
            if call is None or call.tool not in self.tools:
                return state, out + actions
            out += actions[:-1]
            try:  # kept as plain JSON, so a branch sees the same value before and after a restart
                result, error = to_jsonable_python(self.tools[call.tool](**call.arguments)), None
            except Exception as exc:  # reported to the customer and the agent by the flow
                result, error = None, f"{type(exc).__name__}: {exc}"
            out.append(ToolCalled(call.tool, call.arguments, result, error))
            state, actions = advance(flow, state, ToolResult(call.tool, result, error), confirm)
        raise FlowError(f"the flow {flow.name!r} called tools {MAX_TOOL_CALLS} times in one turn")
