"""What goes into and comes out of the flow engine: the flow's state (plain JSON, persisted with the
conversation), the events that advance it, and the actions the caller must carry out."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from clearlm.errors import InvalidInputError

Status = Literal["active", "completed", "cancelled", "handed_off"]
Waiting = Literal["slot", "tool", "customer", "agent"]


class FlowState(BaseModel):
    """Where a conversation is in a flow. Fields: flow (its name); step (the step waiting, or about to
    run; None once the flow is over); waiting (``slot``: for the customer's answer to the ask step;
    ``tool``: for the call step's result; ``customer``: for the customer's yes or no to the call step's
    tool; ``agent``: for a person's approval of it; None: not yet started); slots ({name: value}, JSON
    values); invalid (invalid answers to the pending question so far); status (active, completed,
    cancelled, handed_off); last_message (the customer's latest text); pending (the call waiting for a
    confirmation: {tool, arguments}, the arguments as they were shown); confirmations (every decision,
    oldest first: {tool, arguments, by (``customer`` or the agent's key id), approved, at (ISO 8601,
    UTC), step})."""

    model_config = ConfigDict(extra="forbid")

    version: int = 1
    flow: str
    step: str | None = None
    waiting: Waiting | None = None
    slots: dict[str, Any] = {}
    invalid: int = 0
    status: Status = "active"
    last_message: str | None = None
    pending: dict[str, Any] | None = None
    confirmations: list[dict[str, Any]] = []

    def to_json(self) -> dict:
        """The state as a JSON-serialisable dict (what the conversation row keeps)."""
        return self.model_dump(mode="json")

    @classmethod
    def from_json(cls, data: dict) -> FlowState:
        """A state saved by :meth:`to_json` (InvalidInputError: not one)."""
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise InvalidInputError(f"not a saved flow state: {exc.errors()[0]['msg']}") from None


@dataclass(frozen=True, slots=True)
class CustomerMessage:
    """The customer said ``text``. ``slots``: values extracted from it ({slot: value}; each is validated
    by the flow before it is kept); ``intent``: what the caller recognised (``cancel``, ``stop``,
    ``handoff``, or None); ``digression``: a question asked mid-flow, to answer before going on."""

    text: str
    slots: dict[str, Any] = field(default_factory=dict)
    intent: str | None = None
    digression: bool = False


@dataclass(frozen=True, slots=True)
class ToolResult:
    """The result of the tool the flow called (``error``: why it failed, then ``result`` is None)."""

    tool: str
    result: Any = None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class Decision:
    """A person decided the tool call the flow waits on (``confirm: agent``): ``approved``; ``by`` (their
    key id, or ``local``); ``at`` (ISO 8601, UTC; None: now)."""

    approved: bool
    by: str
    at: str | None = None


Event = CustomerMessage | ToolResult | Decision


@dataclass(frozen=True, slots=True)
class Confirm:
    """What a tool needs before it is called: ``by`` ``customer`` (a yes or no in the chat) or
    ``agent`` (a person's approval through the review queue); ``action``: what it does, in words (its
    description), for the question."""

    by: Literal["customer", "agent"]
    action: str = ""


@dataclass(frozen=True, slots=True)
class Action:
    kind: ClassVar[str] = "action"

    def to_dict(self) -> dict:
        return {"kind": self.kind, **asdict(self)}


@dataclass(frozen=True, slots=True)
class Reply(Action):
    """Say ``text`` to the customer (the pipeline may phrase it in the customer's language)."""

    kind: ClassVar[str] = "reply"
    text: str


@dataclass(frozen=True, slots=True)
class CallTool(Action):
    """Call ``tool`` with ``arguments``, then advance with a :class:`ToolResult` (kept in ``slot``)."""

    kind: ClassVar[str] = "call_tool"
    tool: str
    arguments: dict
    slot: str


@dataclass(frozen=True, slots=True)
class ToolCalled(Action):
    """A record: the engine called a registered ``tool`` (audit it); ``error`` when it failed."""

    kind: ClassVar[str] = "tool_called"
    tool: str
    arguments: dict
    result: Any = None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class AnswerFromKnowledge(Action):
    """Answer ``question`` from ``knowledge_base`` (None: the desk's default) with citations."""

    kind: ClassVar[str] = "answer_from_knowledge"
    question: str
    knowledge_base: str | None = None


@dataclass(frozen=True, slots=True)
class HandOff(Action):
    """Hand the conversation to a person. ``reason``: customer_asked, invalid_answers, tool_failed, or
    the flow's own; ``detail``: more for the agent (the slot refused, the tool's error); ``step``: where."""

    kind: ClassVar[str] = "handoff"
    reason: str
    detail: str | None = None
    step: str | None = None


@dataclass(frozen=True, slots=True)
class AwaitApproval(Action):
    """Ask a person to approve calling ``tool`` with ``arguments`` (the review queue); the flow waits
    for a :class:`Decision`. ``step``: the call step."""

    kind: ClassVar[str] = "await_approval"
    tool: str
    arguments: dict
    step: str


@dataclass(frozen=True, slots=True)
class Confirmed(Action):
    """A record: a confirmation was decided (audit it, as a tool call): ``approved`` by ``by``
    (``customer`` or an agent's key id) at ``at`` (ISO 8601, UTC)."""

    kind: ClassVar[str] = "confirmed"
    tool: str
    arguments: dict
    by: str
    approved: bool
    at: str


@dataclass(frozen=True, slots=True)
class ApprovalWithdrawn(Action):
    """The flow stopped waiting for a person's approval of ``tool`` (the customer cancelled or asked for
    a person): the open review item is closed."""

    kind: ClassVar[str] = "approval_withdrawn"
    tool: str


@dataclass(frozen=True, slots=True)
class FlowEnded(Action):
    """The flow is over: ``outcome`` is completed, cancelled or declined (a confirmation refused, with
    no ``on_declined`` step)."""

    kind: ClassVar[str] = "flow_ended"
    outcome: str
