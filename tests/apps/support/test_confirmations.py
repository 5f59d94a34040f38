"""Tools that need a confirmation (``confirm: customer`` / ``confirm: agent``), on the flow engine (no
model) and on the review queue: the question names the action and its arguments, yes (in six languages)
calls the tool, no goes to ``on_declined`` or ends the flow, an unclear answer is asked again once, a
state saved mid-confirmation resumes in a new engine, a person's decision resumes the flow, every
decision is recorded; bad ``confirm`` values and references are refused at load."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from clearlm.apps.support import Customers, Desk, FlowEngine, FlowError, PatternExtractor, TurnRunner
from clearlm.apps.support.approvals import CONFIRMATION, NotAwaitingApprovalError, serve_approvals
from clearlm.apps.support.confirm import ASK_AGAIN, yes_or_no
from clearlm.apps.support.loading import load_flow, parse_flow
from clearlm.apps.support.state import (
    ApprovalWithdrawn,
    AwaitApproval,
    Confirmed,
    CustomerMessage,
    Decision,
    FlowEnded,
    FlowState,
    HandOff,
    Reply,
    ToolCalled,
    ToolResult,
)
from clearlm.apps.support.tools import Tool, load_desk, load_tools
from clearlm.errors import InvalidInputError
from clearlm.store import AuditLog, Database
from clearlm.store.review import ReviewQueue

DESK = Path(__file__).parents[3] / "examples" / "support"
ADDRESS = load_flow(DESK / "flows" / "address.yaml")
REFUND = load_flow(DESK / "flows" / "refund.yaml")
ORDERS = {
    "A-10006": {"found": True, "item": "phone case", "status": "in transit"},
    "A-10001": {"found": True, "item": "blue kettle", "status": "delivered"},
}
NEW = "12 Rue de la Paix, 75002 Paris"
QUESTION = f"Shall I send order A-10006 (phone case) to {NEW}? Please answer yes or no."


def engine(calls: list, confirm_refund: str | None = "agent") -> FlowEngine:
    """The sample flows' tools over ``ORDERS``; each call of a confirmed tool is kept in ``calls``."""

    def change_address(order_number, address):
        calls.append(("change_address", order_number, address))
        return {"order_number": order_number, "address": address}

    def refund_request(order_number, reason):
        calls.append(("refund_request", order_number, reason))
        return {"refund_id": "RF-" + order_number[2:], "item": "blue kettle", "email": "ana@example.com"}

    e = FlowEngine({"lookup_order": lambda order_number: ORDERS.get(order_number, {"found": False})})
    e.register("change_address", Tool(change_address, "customer", "Send an order to a new address"))
    e.register("refund_request", refund_request, confirm=confirm_refund)
    return e


def texts(actions) -> list[str]:
    return [a.text for a in actions if isinstance(a, Reply)]


def at_question(e: FlowEngine):
    """The address flow, advanced to its yes/no question."""
    state, _ = e.advance(ADDRESS, None)
    state, _ = e.advance(ADDRESS, state, CustomerMessage("A-10006"))
    return e.advance(ADDRESS, state, CustomerMessage(NEW))


def test_the_customer_is_asked_with_the_arguments_and_nothing_runs_before_a_yes():
    calls: list = []
    state, actions = at_question(engine(calls))
    assert texts(actions) == [QUESTION]
    assert state.waiting == "customer" and state.step == "change"
    assert state.pending == {
        "tool": "change_address",
        "arguments": {"order_number": "A-10006", "address": NEW},
    }
    assert calls == [] and not any(isinstance(a, ToolCalled) for a in actions)


@pytest.mark.parametrize("answer", ["yes", "Yes please", "Sí, claro", "oui", "Ja bitte", "sim", "sì"])
def test_a_yes_in_any_of_six_languages_calls_the_tool_and_is_recorded(answer):
    calls: list = []
    e = engine(calls)
    state, _ = at_question(e)
    state, actions = e.advance(ADDRESS, state, CustomerMessage(answer))
    assert calls == [("change_address", "A-10006", NEW)]
    assert texts(actions) == [
        f"Done: order A-10006 now goes to {NEW}.",
        "Is there anything else I can help with?",
    ]
    confirmed = [a for a in actions if isinstance(a, Confirmed)]
    assert [(c.tool, c.by, c.approved) for c in confirmed] == [("change_address", "customer", True)]
    assert state.status == "completed" and state.pending is None
    [record] = state.confirmations
    assert (record["by"], record["approved"], record["step"]) == ("customer", True, "change")
    assert record["arguments"] == {"order_number": "A-10006", "address": NEW}
    assert record["at"].startswith("20") and record["at"] == confirmed[0].at


@pytest.mark.parametrize("answer", ["no", "No thanks", "non", "nein", "não"])
def test_a_no_goes_to_on_declined_and_never_calls_the_tool(answer):
    calls: list = []
    e = engine(calls)
    state, _ = at_question(e)
    state, actions = e.advance(ADDRESS, state, CustomerMessage(answer))
    assert calls == []
    assert texts(actions) == [
        "All right, order A-10006 keeps its address.",
        "Is there anything else I can help with?",
    ]
    assert [(c["approved"], c["by"]) for c in state.confirmations] == [(False, "customer")]


def test_a_no_without_on_declined_ends_the_flow_politely():
    flow = parse_flow(
        "name: f\nsteps:\n  - {id: change, call: {tool: change_address, args: {order_number: A-10006, "
        "address: x}, result: r}}\n  - {id: after, say: never}\n"
    )
    calls: list = []
    e = engine(calls)
    state, actions = e.advance(flow, None)
    assert texts(actions) == [
        "Please confirm: Send an order to a new address (order number: A-10006, address: x). "
        "Shall I go ahead? Please answer yes or no."
    ]
    state, actions = e.advance(flow, state, CustomerMessage("no"))
    assert texts(actions) == ["All right, I have not done it. Is there anything else I can help with?"]
    assert isinstance(actions[-1], FlowEnded) and actions[-1].outcome == "declined"
    assert state.status == "cancelled" and calls == []


def test_an_unclear_answer_is_asked_again_once_then_counts_as_invalid():
    calls: list = []
    e = engine(calls)
    state, _ = at_question(e)
    state, actions = e.advance(ADDRESS, state, CustomerMessage("maybe, what does it cost?"))
    assert texts(actions) == [ASK_AGAIN + QUESTION] and state.waiting == "customer"
    state, actions = e.advance(ADDRESS, state, CustomerMessage("I am not sure"))
    assert isinstance(actions[-1], HandOff) and actions[-1].reason == "invalid_answers"
    assert actions[-1].detail == "no yes or no to change_address"
    assert state.status == "handed_off" and state.pending is None and calls == []
    assert state.confirmations == []  # no decision was made


def test_a_restart_mid_confirmation_loses_nothing():
    calls: list = []
    state, _ = at_question(engine(calls))
    saved = json.loads(json.dumps(state.to_json()))  # what the conversation row keeps
    state, actions = engine(calls).advance(ADDRESS, FlowState.from_json(saved), CustomerMessage("oui"))
    assert calls == [("change_address", "A-10006", NEW)]
    assert [a.tool for a in actions if isinstance(a, ToolCalled)] == ["change_address"]


def at_approval(e: FlowEngine):
    state, _ = e.advance(REFUND, None)
    state, _ = e.advance(REFUND, state, CustomerMessage("A-10001"))
    return e.advance(REFUND, state, CustomerMessage("damaged"))


def test_an_agent_tool_waits_for_a_person_and_runs_on_approval():
    calls: list = []
    e = engine(calls)
    state, actions = at_approval(e)
    assert texts(actions) == [
        "A colleague must approve this first: refund request (order number: A-10001, reason: damaged). "
        "You will see their answer here."
    ]
    assert actions[-1] == AwaitApproval(
        "refund_request", {"order_number": "A-10001", "reason": "damaged"}, "refund"
    )
    assert state.waiting == "agent" and calls == []
    state, actions = e.advance(REFUND, state, CustomerMessage("yes please, hurry"))  # not the customer's call
    assert texts(actions) == ["A colleague still has to approve this; you will see their answer here."]
    assert state.waiting == "agent" and calls == []
    with pytest.raises(InvalidInputError, match="not waiting for the tool 'refund_request'"):
        e.advance(REFUND, state, ToolResult("refund_request", {"refund_id": "forged"}))
    state, actions = e.advance(REFUND, state, Decision(True, "key_ag", "2026-12-02T10:00:00+00:00"))
    assert calls == [("refund_request", "A-10001", "damaged")]
    assert (
        texts(actions)[0]
        == "Your refund RF-10001 for blue kettle is on its way; ana@example.com gets a receipt."
    )
    assert state.confirmations == [
        {
            "tool": "refund_request",
            "arguments": {"order_number": "A-10001", "reason": "damaged"},
            "by": "key_ag",
            "approved": True,
            "at": "2026-12-02T10:00:00+00:00",
            "step": "refund",
        }
    ]
    asking, _ = at_question(e)  # the customer's yes or no is awaited, not a person's
    with pytest.raises(InvalidInputError, match="not waiting for a person's approval"):
        e.advance(ADDRESS, asking, Decision(True, "key_ag"))


def test_a_person_declining_goes_to_on_declined_and_a_cancel_withdraws_the_request():
    calls: list = []
    e = engine(calls)
    state, _ = at_approval(e)
    declined, actions = e.advance(REFUND, state, Decision(False, "key_ag"))
    assert texts(actions)[0].startswith("A colleague could not approve a refund for order A-10001")
    assert declined.confirmations[0]["approved"] is False and calls == []
    cancelled, actions = e.advance(REFUND, state, CustomerMessage("cancel", intent="cancel"))
    assert isinstance(actions[0], ApprovalWithdrawn) and actions[0].tool == "refund_request"
    assert cancelled.status == "cancelled" and cancelled.pending is None and calls == []


def test_yes_or_no():
    assert [yes_or_no(t) for t in ("OUI!", "Nein danke", "Não", "yesterday", "", "I said yes")] == [
        True,
        False,
        False,
        None,
        None,
        None,
    ]


def test_confirm_values_and_references_are_checked_at_load(tmp_path):
    (tmp_path / "t.yaml").write_text("tools:\n  x:\n    python: json:dumps\n    confirm: boss\n")
    with pytest.raises(FlowError, match=r"tool 'x': confirm is customer .* or agent .* got 'boss'"):
        load_tools(tmp_path / "t.yaml")
    with pytest.raises(FlowError, match="confirm is customer"):
        Tool(print, confirm="yes")
    with pytest.raises(FlowError, match="confirm is customer"):
        FlowEngine().register("x", print, confirm="manager")
    step = "  - {id: c, call: {tool: t, result: r, %s}}\n"
    with pytest.raises(FlowError, match=r"step 'c', field call.on_declined: no step 'nowhere'"):
        parse_flow("name: f\nsteps:\n" + step % "on_declined: nowhere")
    with pytest.raises(FlowError, match=r"field call.confirm_message: \{colour\} names no slot"):
        parse_flow("name: f\nsteps:\n" + step % "confirm_message: 'Paint it {colour}? {arguments}'")
    _, tools = load_desk(DESK)
    assert {n: t.confirm for n, t in tools.items()} == {
        "lookup_order": None,
        "change_address": "customer",
        "refund_request": "agent",
    }


# The review queue: a person's approval of a ``confirm: agent`` call, on the desk (tiny random model:
# the flow's replies are forced targets, so their text is the flow's).


@pytest.fixture
def db(tmp_path):
    db = Database(f"sqlite:///{tmp_path / 'desk.db'}")
    yield db
    db.close()


def refund_desk(db, backend) -> tuple[Desk, list]:
    calls: list = []
    flows, _ = load_desk(DESK)
    tools = engine(calls).tools
    runner = TurnRunner(backend, AuditLog(db), None, max_tokens=4)
    return Desk(db, runner, flows, tools, extractor=PatternExtractor()), calls


def test_a_review_item_carries_the_call_and_its_approval_resumes_the_flow(db, tiny_backend):
    desk, calls = refund_desk(db, tiny_backend)
    ana = Customers(db).create("acme", "Ana", "en")
    cid = desk.open_conversation("acme", ana.id, "refund").conversation.id
    desk.customer_message("acme", cid, "A-10001")
    asked = desk.customer_message("acme", cid, "damaged")
    [pending] = asked.confirmations
    item = ReviewQueue(db).get(pending["review_id"], "acme")
    assert item.kind == CONFIRMATION and item.status == "open"
    assert (item.payload["tool"], item.payload["arguments"]) == (
        "refund_request",
        {"order_number": "A-10001", "reason": "damaged"},
    )
    assert [t["role"] for t in item.payload["transcript"]][-2:] == ["customer", "assistant"]
    assert asked.conversation.status == "open" and calls == []

    # no desk serves this database: the decision is refused and the item stays open
    with pytest.raises(InvalidInputError, match="tool-confirmation"):
        ReviewQueue(db).decide(item.id, "acme", "approve", "key_ag")
    assert ReviewQueue(db).get(item.id, "acme").status == "open" and calls == []
    with pytest.raises(InvalidInputError, match="not answered"):
        ReviewQueue(db).decide(item.id, "acme", "answer", "key_ag", answer="fine")

    seen: list = []
    serve_approvals(db, lambda item: desk, lambda item, reply: seen.append(reply))
    ReviewQueue(db).decide(item.id, "acme", "approve", "key_ag")
    assert calls == [("refund_request", "A-10001", "damaged")]
    [reply] = seen
    assert reply.tool_calls[0]["result"]["refund_id"] == "RF-10001"
    assert [(c["by"], c["approved"]) for c in reply.confirmations] == [("key_ag", True)]
    said = [m.text for m in desk.conversations.get("acme", cid).messages if m.role == "assistant"]
    assert said[-2].startswith("Your refund RF-10001 for blue kettle")
    state = FlowState.from_json(desk.conversations.get("acme", cid).flow_state)
    assert state.status == "completed" and state.confirmations[0]["by"] == "key_ag"
    with pytest.raises(NotAwaitingApprovalError):
        desk.confirm_tool("acme", cid, True, "key_ag")


def test_the_desk_method_decides_the_item_and_a_decline_goes_to_on_declined(db, tiny_backend):
    desk, calls = refund_desk(db, tiny_backend)
    ana = Customers(db).create("acme", "Ana", "en")
    cid = desk.open_conversation("acme", ana.id, "refund").conversation.id
    desk.customer_message("acme", cid, "A-10001")
    review_id = desk.customer_message("acme", cid, "damaged").confirmations[0]["review_id"]
    done = desk.confirm_tool("acme", cid, False, "key_ag")
    assert calls == [] and done.confirmations[0]["approved"] is False
    assert done.messages[0].text.startswith("A colleague could not approve a refund for order A-10001")
    item = ReviewQueue(db).get(review_id, "acme")
    assert (item.status, item.decided_by) == ("dismissed", "key_ag")


def test_a_customer_cancelling_dismisses_the_open_request(db, tiny_backend):
    desk, calls = refund_desk(db, tiny_backend)
    ana = Customers(db).create("acme", "Ana", "en")
    cid = desk.open_conversation("acme", ana.id, "refund").conversation.id
    desk.customer_message("acme", cid, "A-10001")
    review_id = desk.customer_message("acme", cid, "damaged").confirmations[0]["review_id"]
    desk.customer_message("acme", cid, "cancel please")
    item = ReviewQueue(db).get(review_id, "acme")
    assert item.status == "dismissed" and item.decision["note"].startswith("withdrawn")
    with pytest.raises(NotAwaitingApprovalError):
        desk.confirm_tool("acme", cid, True, "key_ag")
    assert calls == []
