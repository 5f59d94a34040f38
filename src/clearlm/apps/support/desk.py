"""The support desk's turn: a customer's message in, the desk's replies out, on the governed pipeline.

:meth:`Desk.customer_message` stores the message (as the policy stores text: PII redacted with
``store_redacted``), then:

- the conversation is handed off: the assistant stays silent (a person answers through the review queue);
- a flow is active, or the message names a flow's ``triggers``: the flow engine advances, its tools are
  called, and its actions become replies: a ``reply`` is said through the pipeline as a forced target
  (the output policy redacts it, the turn is audited), a knowledge-base answer is generated through the
  pipeline with retrieval (citations), a hand-off queues the conversation for a person;
- the customer asks for a person (``extract.intent_of``): hand-off;
- otherwise a free reply is generated through the pipeline from the customer's own recent messages.

A turn the policy escalates hands the conversation off too. Every model call is one pipeline turn
(:mod:`.turns`); the desk never calls a backend, applies a policy or writes the audit log itself.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

from clearlm.apps.support.approvals import act as approval_act
from clearlm.apps.support.approvals import decide_approval
from clearlm.apps.support.conversations import SupportConversation, SupportConversations, SupportMessage
from clearlm.apps.support.customers import Customer, Customers
from clearlm.apps.support.engine import FlowEngine
from clearlm.apps.support.extract import Extractor, PatternExtractor, intent_of
from clearlm.apps.support.flows import Ask, Flow
from clearlm.apps.support.handoff import queue_handoff
from clearlm.apps.support.model_extract import ModelExtractor
from clearlm.apps.support.slots import DESK_LANGUAGE, Localized, valid_value
from clearlm.apps.support.state import (
    AnswerFromKnowledge,
    CallTool,
    CustomerMessage,
    FlowState,
    HandOff,
    Reply,
    ToolCalled,
    ToolResult,
)
from clearlm.apps.support.translation import HANDOFF_MESSAGES, fixed_reply, keep_language
from clearlm.apps.support.triggers import (
    HandoffRules,
    after_turn,
    fell_back,
    handed_off,
    mean_sentiment,
    record_message,
)
from clearlm.apps.support.turns import SYSTEM_PROMPT, TurnRunner
from clearlm.errors import ClearlmError, InvalidInputError
from clearlm.models.chat import Message
from clearlm.pipeline import Retrieval
from clearlm.store.db import Database

HISTORY_MESSAGES = 12  # the customer's latest messages given verbatim to the model
HANDOFF_MESSAGE = Localized(HANDOFF_MESSAGES)  # as a str: the English text
WAITING_NOTICE = "A person will answer here shortly."


def _new_message(reply: DeskReply) -> SupportMessage | None:
    """The customer's message this turn answers (None for a turn the desk began)."""
    return reply.messages[0] if reply.messages and reply.messages[0].role == "customer" else None


def _words(text: str) -> str:
    """``text``'s words, lower-case, each between spaces (to find a phrase as whole words)."""
    return " " + " ".join(re.findall(r"\w+", text.lower())) + " "


class FlowNotFoundError(ClearlmError, LookupError):
    """No flow of that name on this desk."""

    status_code = 404
    error_type = "not_found_error"
    code = "support_flow_not_found"


@dataclass(slots=True)
class DeskReply:
    """What one customer turn did. Fields: conversation (status after the turn, without messages);
    messages (what this turn stored, in order: the customer's first, then the desk's); flow (the flow's
    state as JSON, or None); tool_calls ([{tool, arguments, result, error}]); handoff ({reason, detail,
    review_id} when this turn handed off); notice (a line for the customer that is not stored, e.g. that
    a person will answer); request_ids (the audit records of the turn's pipeline turns); outcomes and
    fell_back (the turn's TurnOutcomes, and whether a flow's fallback ran: for the hand-off rules);
    confirmations ([{tool, arguments, by, approved, at}] decided this turn, and {..., approved: None,
    review_id} for a person's approval asked: :mod:`.approvals`)."""

    conversation: SupportConversation
    messages: list[SupportMessage] = field(default_factory=list)
    flow: dict | None = None
    tool_calls: list[dict] = field(default_factory=list)
    handoff: dict | None = None
    notice: str | None = None
    request_ids: list[str] = field(default_factory=list)
    outcomes: list = field(default_factory=list)
    fell_back: bool = False
    confirmations: list[dict] = field(default_factory=list)


class Desk:
    """A support desk over ``db``, answering through ``runner``'s pipeline (a :class:`TurnRunner`: the
    backend, the policy, the audit log).

    Args:
        flows: ``{name: Flow}``. tools: ``{name: fn}`` (``tools.load_tools``). open_kb: ``(tenant, name)
            -> a context manager giving an open KnowledgeBase`` (raises when it does not exist; None: no
            knowledge bases, questions are answered freely). extractor: ``None`` asks the model for a
            pending slot the patterns miss (:class:`ModelExtractor`); give ``PatternExtractor()`` for no
            model extraction. history: messages of the customer's given verbatim (1-100). rules: the
            hand-off rules (:class:`~clearlm.apps.support.triggers.HandoffRules`; None: the defaults).
            knowledge_answer: how a question is answered from a knowledge base (``pipeline.grounding.
            ANSWERS``): "extract" quotes the passages' best sentences with citations (nothing generated,
            so nothing invented: on the small default model it answered the scenarios' FAQ questions
            where its generated answers did not), but in the documents' language, so a customer writing
            another language than ``slots.DESK_LANGUAGE`` gets a generated answer; "generate" always.
    """

    def __init__(
        self,
        db: Database,
        runner: TurnRunner,
        flows: Mapping[str, Flow] | None = None,
        tools: Mapping[str, Callable[..., Any]] | None = None,
        open_kb: Callable[[str, str], AbstractContextManager] | None = None,
        extractor: Extractor | None = None,
        history: int = HISTORY_MESSAGES,
        rules: HandoffRules | None = None,
        knowledge_answer: str = "extract",
    ) -> None:
        self.rules = rules or HandoffRules()
        self.knowledge_answer = Retrieval(None, answer=knowledge_answer).answer  # (checks the name)
        self.db = db
        self.runner = runner
        self.flows = dict(flows or {})
        self.tools = dict(tools or {})
        self.open_kb = open_kb
        self.extractor = extractor
        self.history = history
        self.customers = Customers(db)
        self.conversations = SupportConversations(db)

    def open_conversation(self, tenant: str, customer_id: str, flow: str | None = None) -> DeskReply:
        """A new conversation of the customer; with ``flow``, that flow starts and asks its first question.

        Raises:
            FlowNotFoundError (404): an unknown flow. CustomerNotFoundError (404).
        """
        if flow is not None and flow not in self.flows:
            raise FlowNotFoundError(f"no flow named {flow!r}: this desk has {sorted(self.flows) or 'none'}")
        conversation = self.conversations.open(tenant, customer_id)
        reply = DeskReply(conversation)
        if flow is not None:
            customer = self.customers.get(tenant, customer_id)
            self._run_flow(reply, customer, self.flows[flow], None, None, "")
        return self._finish(tenant, conversation.id, reply)

    def customer_message(self, tenant: str, conversation_id: str, text: str) -> DeskReply:
        """The customer wrote ``text``: store it and answer (see the module's description).

        Raises:
            InvalidInputError: an empty or over-long text, a closed conversation.
            SupportConversationNotFoundError (404): not in ``tenant``.
        """
        conversation = self.conversations.get(tenant, conversation_id)
        if conversation.status == "closed":
            raise InvalidInputError(f"the conversation {conversation_id!r} is closed: open a new one")
        customer = self.customers.get(tenant, conversation.customer_id)
        customer = keep_language(self.customers, customer, text)  # the language they write in
        stored = self.runner.policy.stored(text) if self.runner.policy is not None else text
        reply = DeskReply(conversation)
        reply.messages.append(
            self.conversations.append_message(tenant, conversation_id, "customer", stored, customer.language)
        )
        if conversation.status == "handed_off":
            reply.notice = WAITING_NOTICE
            return self._finish(tenant, conversation_id, reply)
        record_message(self.db, tenant, conversation_id, reply.messages[0].id, text, customer.language)
        intent = intent_of(text)
        state = FlowState.from_json(conversation.flow_state) if conversation.flow_state else None
        flow_of = self.flows.get(state.flow) if state is not None else None
        if state is not None and state.status == "active" and flow_of is not None:
            event = CustomerMessage(text, intent=intent, digression=self._digression(flow_of, state, text))
            self._run_flow(reply, customer, flow_of, state, event, text)
        elif intent == "handoff":
            self._say(reply, customer, HANDOFF_MESSAGE)
            if reply.handoff is None:  # (unless the policy escalated that very reply)
                self._hand_off(reply, customer, "customer_asked", None)
        elif (flow := self._triggered(text)) is not None:
            self._run_flow(reply, customer, flow, self._prefilled(flow, text), None, text)
        else:
            context, screened = self._context(reply, customer)
            out = self.runner.generate(tenant, conversation_id, context, screened=screened)
            self._keep(reply, customer, out)
        if reply.handoff is None:
            self._apply_rules(reply, customer)
        return self._finish(tenant, conversation_id, reply)

    def confirm_tool(self, tenant: str, conversation_id: str, approve: bool, by: str) -> DeskReply:
        """A person (``by``) approves or declines the tool call the conversation's flow waits for; the
        flow resumes (``approvals.decide_approval``). Raises NotAwaitingApprovalError (409)."""
        return decide_approval(self, tenant, conversation_id, approve, by)

    def _apply_rules(self, reply: DeskReply, customer: Customer) -> None:
        """The hand-off rules (:mod:`.triggers`) after the customer's turn: sustained negative
        sentiment, repeated failure, low confidence."""
        args = (customer.tenant, reply.conversation.id, customer.language, reply.outcomes, reply.fell_back)
        found = after_turn(self.db, self.rules, *args)
        if found is not None:
            self._say(reply, customer, HANDOFF_MESSAGE)
            if reply.handoff is None:  # (unless the policy escalated that very reply)
                self._hand_off(reply, customer, *found)

    @staticmethod
    def _digression(flow: Flow, state: FlowState, text: str) -> bool:
        """A question asked mid-flow (it ends with "?" and gives none of the flow's slots): answered from
        the flow's knowledge base, then the pending question is asked again."""
        if not text.rstrip().endswith("?") or state.waiting != "slot":
            return False
        return not PatternExtractor().extract(flow, state, text)

    def _triggered(self, text: str) -> Flow | None:
        said = _words(text)
        for flow in self.flows.values():
            if any(_words(t) in said for t in flow.triggers):
                return flow
        return None

    def _prefilled(self, flow: Flow, text: str) -> FlowState:
        """A new state of ``flow`` with the ask slots the triggering message already gives (valid ones)."""
        state = FlowState(flow=flow.name, step=flow.steps[0].id)
        for name, value in PatternExtractor().extract(flow, state, text).items():
            spec = flow.slots()[name]
            ok, value = valid_value(spec, value) if isinstance(spec, Ask) else (False, None)
            if ok:
                state.slots[name] = value
        return state

    def _run_flow(self, reply: DeskReply, customer: Customer, flow: Flow, state, event, text: str) -> None:
        tenant, cid = customer.tenant, reply.conversation.id
        extractor = self.extractor or ModelExtractor(self.runner, tenant, cid)
        engine = FlowEngine(self.tools, extractor)
        before, (state, actions) = state, engine.advance(flow, state, event)
        reply.fell_back = reply.fell_back or fell_back(flow, before, state, event)
        while actions and isinstance(actions[-1], CallTool):  # a tool no one registered: it fails
            call = actions.pop()
            reply.tool_calls.append(
                {
                    "tool": call.tool,
                    "arguments": call.arguments,
                    "result": None,
                    "error": f"the tool {call.tool!r} is not configured on this desk",
                }
            )
            self._act(reply, customer, flow, actions, text)
            state, actions = engine.advance(
                flow, state, ToolResult(call.tool, None, reply.tool_calls[-1]["error"])
            )
        reply.flow = state.to_json()
        self.conversations.update(tenant, cid, flow_state=reply.flow)
        self._act(reply, customer, flow, actions, text)

    def _act(self, reply: DeskReply, customer: Customer, flow: Flow, actions: list, text: str) -> None:
        for action in actions:
            if reply.handoff is not None:  # the policy escalated an earlier reply: a person takes over
                return
            if isinstance(action, Reply):
                self._say(reply, customer, action.text)
            elif isinstance(action, ToolCalled):
                reply.tool_calls.append(
                    {
                        "tool": action.tool,
                        "arguments": action.arguments,
                        "result": action.result,
                        "error": action.error,
                    }
                )
            elif isinstance(action, AnswerFromKnowledge):
                self._answer(reply, customer, action.question or text, action.knowledge_base)
            elif isinstance(action, HandOff):
                self._hand_off(reply, customer, action.reason, action.detail)
            else:  # a confirmation asked of a person, decided, or withdrawn (:mod:`.approvals`)
                approval_act(self, reply, customer, action)

    def _say(self, reply: DeskReply, customer: Customer, text: str) -> None:
        """Say a fixed reply, in the customer's language (``translation.fixed_reply``: a flow's variant,
        else a ``support:translate`` turn, whose record joins ``request_ids``)."""
        cid = reply.conversation.id
        text, done = fixed_reply(self.runner, customer.tenant, cid, text, customer.language)
        if done is not None and done.request_id is not None:
            reply.request_ids.append(done.request_id)
        context, screened = self._context(reply, customer)
        out = self.runner.say(customer.tenant, reply.conversation.id, context, text, screened)
        self._keep(reply, customer, out)

    def _answer(self, reply: DeskReply, customer: Customer, question: str, kb_name: str | None) -> None:
        """Answer ``question`` from the knowledge base ``kb_name`` (freely when there is none)."""
        tenant, cid = customer.tenant, reply.conversation.id
        context = [Message("system", SYSTEM_PROMPT), Message("user", question)]
        if self.open_kb is not None and kb_name is not None:
            try:
                answer = self.knowledge_answer if customer.language in (None, DESK_LANGUAGE) else "generate"
                with self.open_kb(tenant, kb_name) as kb:
                    retrieval = Retrieval(kb, answer=answer)
                    out = self.runner.generate(tenant, cid, context, "answer", retrieval=retrieval)
                return self._keep(reply, customer, out)
            except ClearlmError as exc:
                if getattr(exc, "status_code", None) != 404:
                    raise
        self._keep(reply, customer, self.runner.generate(tenant, cid, context, "answer"))

    def _keep(self, reply: DeskReply, customer: Customer, out) -> None:
        reply.request_ids.append(out.request_id)
        reply.outcomes.append(out)
        new = _new_message(reply)
        if out.blocked and new is not None and not new.withheld:  # never in a model context again
            self.conversations.withhold(customer.tenant, reply.conversation.id, new.id)
            reply.messages[0] = dataclasses.replace(new, withheld=True)
        if out.text.strip():
            reply.messages.append(
                self.conversations.append_message(
                    customer.tenant, reply.conversation.id, "assistant", out.text, customer.language
                )
            )
        if out.escalated and reply.handoff is None:
            self._say_handoff(reply, customer, out.request_id)

    def _say_handoff(self, reply: DeskReply, customer: Customer, request_id: str) -> None:
        reply.handoff = {"reason": "policy_escalate", "detail": None, "review_id": None}  # no recursion
        self._say(reply, customer, HANDOFF_MESSAGE)
        self._hand_off(reply, customer, "policy_escalate", f"audit record {request_id}", request_id)

    def _hand_off(
        self, reply, customer: Customer, reason: str, detail, request_id: str | None = None
    ) -> None:
        tenant, cid = customer.tenant, reply.conversation.id
        conversation = self.conversations.get(tenant, cid)
        state = FlowState.from_json(conversation.flow_state) if conversation.flow_state else None
        if state is not None and state.status == "active":  # a person takes over mid-flow
            state.status, state.step, state.waiting = "handed_off", None, None
            reply.flow = state.to_json()
        self.conversations.update(tenant, cid, "handed_off", reply.flow)
        sentiment = mean_sentiment(self.db, tenant, cid, self.rules.sentiment_window)
        item = queue_handoff(self.db, conversation, customer, reason, detail, request_id, sentiment)
        handed_off(self.db, tenant, cid, conversation.messages[-1].id if conversation.messages else 0)
        reply.handoff = {"reason": reason, "detail": detail, "review_id": item.id}

    def _context(self, reply: DeskReply, customer: Customer) -> tuple[list[Message], tuple[int, ...]]:
        """The system prompt with the customer's memory (:mod:`.memory`: a summary of their earlier
        conversations, their earlier messages relevant to the latest one), then their own latest
        ``history`` messages verbatim: their conversations only (selected by tenant and customer id),
        as stored; the cost does not grow with the history. With the indices of the messages the policy
        checked at their own turns (all but the customer's message of this turn: ``TurnRequest.screened``)."""
        from clearlm.apps.support.memory import desk_memory

        system = f"{SYSTEM_PROMPT} The customer's language (ISO 639-1): {customer.language}."
        recall = desk_memory(self).recall(customer.tenant, customer.id)
        new = _new_message(reply)
        screened = tuple(n for n, i in enumerate(recall.ids(), start=1) if new is None or i != new.id)
        return recall.messages(system), screened

    def _finish(self, tenant: str, conversation_id: str, reply: DeskReply) -> DeskReply:
        reply.conversation = dataclasses.replace(self.conversations.get(tenant, conversation_id), messages=[])
        return reply
