"""Customer support (issue 15): customers and their histories, YAML dialog flows, tools, hand-off.

- :mod:`.customers`, :mod:`.conversations`: the desk's tables (:mod:`.tables`), per tenant.
- :mod:`.flows` (the YAML schema), :mod:`.loading` (files to checked flows), :mod:`.engine`
  (``advance(flow, state, event) -> (state, actions)``), :mod:`.state` (state, events, actions),
  :mod:`.extract` (slot extraction), :mod:`.slots` (validation, templates, conditions).
- :mod:`.desk` (a customer's turn on the pipeline), :mod:`.turns` (the desk's pipeline turns),
  :mod:`.model_extract` (slots extracted by the model), :mod:`.handoff` (the review queue's
  ``support_handoff`` items, agents' answers, hand-back), :mod:`.tools` (tools and desk folders),
  :mod:`.triggers` (hand-off on negative sentiment, repeated failure, low confidence), :mod:`.memory`
  (a customer's context: summary, recalled and recent messages), :mod:`.webhooks`, :mod:`.closing`,
  :mod:`.csat`, :mod:`.analytics`, :mod:`.agents` (the desk view's queries and agents' replies),
  :mod:`.translation` (the customer's language detected and kept; translation for agents, through the
  pipeline), :mod:`.confirm` and :mod:`.approvals` (tools that need the customer's yes or a person's
  approval), :mod:`.suggestions` (suggested replies for agents).
"""

from clearlm.apps.support.conversations import (
    SupportConversation,
    SupportConversationNotFoundError,
    SupportConversations,
    SupportMessage,
)
from clearlm.apps.support.customers import Customer, CustomerNotFoundError, Customers
from clearlm.apps.support.desk import Desk, DeskReply
from clearlm.apps.support.engine import FlowEngine, advance
from clearlm.apps.support.extract import Extractor, PatternExtractor
from clearlm.apps.support.flows import Flow, FlowError
from clearlm.apps.support.handoff import HANDOFF, hand_back
from clearlm.apps.support.loading import load_flow, load_flows, parse_flow
from clearlm.apps.support.model_extract import ModelExtractor
from clearlm.apps.support.state import (
    AnswerFromKnowledge,
    CallTool,
    CustomerMessage,
    FlowEnded,
    FlowState,
    HandOff,
    Reply,
    ToolCalled,
    ToolResult,
)
from clearlm.apps.support.tools import load_desk, load_tools
from clearlm.apps.support.triggers import HandoffRules, load_rules
from clearlm.apps.support.turns import TurnOutcome, TurnRunner

__all__ = [
    "HANDOFF",
    "Desk",
    "DeskReply",
    "ModelExtractor",
    "TurnOutcome",
    "TurnRunner",
    "HandoffRules",
    "hand_back",
    "load_desk",
    "load_rules",
    "load_tools",
    "AnswerFromKnowledge",
    "CallTool",
    "Customer",
    "CustomerMessage",
    "CustomerNotFoundError",
    "Customers",
    "Extractor",
    "Flow",
    "FlowEnded",
    "FlowEngine",
    "FlowError",
    "FlowState",
    "HandOff",
    "PatternExtractor",
    "Reply",
    "SupportConversation",
    "SupportConversationNotFoundError",
    "SupportConversations",
    "SupportMessage",
    "ToolCalled",
    "ToolResult",
    "advance",
    "load_flow",
    "load_flows",
    "parse_flow",
]
