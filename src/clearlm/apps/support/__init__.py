"""Customer support (issue 15): customers and their histories, YAML dialog flows, tools, hand-off.

- :mod:`.customers`, :mod:`.conversations`: the desk's tables (:mod:`.tables`), per tenant.
- :mod:`.flows` (the YAML schema), :mod:`.loading` (files to checked flows), :mod:`.engine`
  (``advance(flow, state, event) -> (state, actions)``), :mod:`.state` (state, events, actions),
  :mod:`.extract` (slot extraction), :mod:`.slots` (validation, templates, conditions).
"""

from clearlm.apps.support.conversations import (
    SupportConversation,
    SupportConversationNotFoundError,
    SupportConversations,
    SupportMessage,
)
from clearlm.apps.support.customers import Customer, CustomerNotFoundError, Customers
from clearlm.apps.support.engine import FlowEngine, advance
from clearlm.apps.support.extract import Extractor, PatternExtractor
from clearlm.apps.support.flows import Flow, FlowError
from clearlm.apps.support.loading import load_flow, load_flows, parse_flow
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

__all__ = [
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
