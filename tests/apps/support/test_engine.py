"""The flow engine on the sample returns flow and small flows: slots validated and re-asked, branches
both ways on a tool's result, tool failures handed off, cancel, the fallback, a question mid-flow, and
a state that survives a restart (JSON, a new engine, the conversation row)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from clearlm.apps.support import (
    AnswerFromKnowledge,
    CallTool,
    CustomerMessage,
    Customers,
    FlowEnded,
    FlowEngine,
    FlowError,
    FlowState,
    HandOff,
    Reply,
    SupportConversations,
    ToolCalled,
    ToolResult,
    advance,
    load_flow,
    parse_flow,
)
from clearlm.errors import InvalidInputError
from clearlm.store import Database

RETURNS = load_flow(Path(__file__).parents[3] / "examples" / "support" / "flows" / "returns.yaml")
ORDERS = {
    "A-12345": {"found": True, "item": "kettle", "email": "ada@example.com", "days_since_delivery": 12},
    "A-99999": {"found": True, "item": "lamp", "email": "bob@example.com", "days_since_delivery": 45},
}
ASK_ORDER = "What is your order number? You find it in your confirmation email."
ASK_REASON = "Why are you returning it: damaged, wrong item, or changed mind?"
BAD_ORDER = "An order number is the letter A, a dash and five digits, for example A-12345."


def lookup_order(order_number: str) -> dict:
    return ORDERS.get(order_number, {"found": False})


def engine() -> FlowEngine:
    return FlowEngine({"lookup_order": lookup_order})


def say(eng, state, text, **kw):
    return eng.advance(RETURNS, state, CustomerMessage(text, **kw))


def texts(actions) -> list[str]:
    return [a.text for a in actions if isinstance(a, Reply)]


def test_a_return_within_30_days_is_accepted():
    eng = engine()
    state, actions = eng.advance(RETURNS, None)
    assert actions == [Reply(ASK_ORDER)] and (state.step, state.waiting) == ("ask_order", "slot")
    state, actions = say(eng, state, "sure, it's A-12345.")
    assert actions == [Reply(ASK_REASON)] and state.slots == {"order_number": "A-12345"}
    state, actions = say(eng, state, "It arrived with a wrong item inside")
    assert actions[0] == ToolCalled("lookup_order", {"order_number": "A-12345"}, ORDERS["A-12345"])
    assert texts(actions) == [
        "Your return of order A-12345 (kettle) is accepted. A prepaid label is on its way to "
        "ada@example.com.",
        "Is there anything else I can help with?",
    ]
    assert actions[-1] == FlowEnded("completed")
    assert state.status == "completed" and state.step is None
    assert state.slots == {"order_number": "A-12345", "reason": "wrong_item", "order": ORDERS["A-12345"]}
    assert eng.advance(RETURNS, state, CustomerMessage("thanks!")) == (state, [])  # over: nothing more


def test_a_late_return_and_an_unknown_order_are_handed_off():
    eng = engine()
    state, _ = eng.advance(RETURNS, None)
    state, _ = say(eng, state, "A-99999")
    state, actions = say(eng, state, "changed mind")
    assert texts(actions) == [
        "Order A-99999 was delivered 45 days ago, past our 30-day window. I am passing you to a "
        "colleague who can look at exceptions."
    ]
    assert actions[-1] == HandOff("outside_return_window", None, "late") and state.status == "handed_off"
    assert eng.advance(RETURNS, state, CustomerMessage("hello?")) == (state, [])  # the bot stays quiet

    state, actions = say(eng, None, "Return A-00001, it is damaged")  # both slots said up front
    assert actions[0] == ToolCalled("lookup_order", {"order_number": "A-00001"}, {"found": False})
    assert actions[-1] == HandOff("order_not_found", None, "not_found")
    assert texts(actions) == ["I cannot find order A-00001. A colleague will look into it with you."]


def test_invalid_answers_are_re_asked_with_the_expected_format_then_handed_off():
    eng = engine()
    state, _ = eng.advance(RETURNS, None)
    state, actions = say(eng, state, "12345")
    assert actions == [Reply(BAD_ORDER)] and state.invalid == 1 and state.step == "ask_order"
    state, actions = say(eng, state, "a-12345")  # the pattern is case-sensitive: A, not a
    assert actions == [Reply(BAD_ORDER)] and state.invalid == 2
    state, actions = say(eng, state, "A-1234")
    assert texts(actions) == [RETURNS.fallback_message["en"]]  # (its English variant)
    assert actions[-1] == HandOff("invalid_answers", "no valid order_number after 3 tries", "ask_order")
    assert state.status == "handed_off"


def test_a_valid_answer_resets_the_count_and_enums_take_their_own_spelling():
    eng = engine()
    state, _ = eng.advance(RETURNS, None)
    state, _ = say(eng, state, "no idea")
    state, _ = say(eng, state, "A-12345")
    assert state.invalid == 0
    state, actions = say(eng, state, "because I like it")  # no enum value named
    assert actions == [Reply("Please choose one: damaged, wrong item, or changed mind.")]
    state, actions = eng.advance(RETURNS, state, CustomerMessage("x", slots={"reason": "DAMAGED"}))
    assert state.slots["reason"] == "damaged" and state.status == "completed"
    state, actions = say(eng, None, "damaged or wrong item?")  # two enum values: neither is taken
    assert "reason" not in state.slots and actions == [Reply(ASK_ORDER)]


def test_the_engine_is_pure_and_a_tool_the_caller_runs_comes_back_as_an_event():
    state, _ = advance(RETURNS, None)
    state, _ = advance(RETURNS, state, CustomerMessage("", slots={"order_number": "A-99999"}))
    before = state.model_copy(deep=True)
    after, actions = advance(RETURNS, state, CustomerMessage("", slots={"reason": "damaged"}))
    assert state == before  # the input state is not changed
    assert actions == [CallTool("lookup_order", {"order_number": "A-99999"}, "order")]
    assert (after.step, after.waiting) == ("lookup", "tool")
    with pytest.raises(InvalidInputError, match="waiting for a tool's result"):
        advance(RETURNS, after, CustomerMessage("hello"))
    with pytest.raises(InvalidInputError, match="not waiting for the tool 'refund'"):
        advance(RETURNS, after, ToolResult("refund", {}))
    done, actions = advance(RETURNS, after, ToolResult("lookup_order", ORDERS["A-99999"]))
    assert done.slots["order"]["days_since_delivery"] == 45 and actions[-1].reason == "outside_return_window"


def test_a_failing_tool_is_reported_to_the_customer_and_the_agent():
    def broken(order_number):
        raise TimeoutError("orders service did not answer in 5 s")

    eng = FlowEngine({"lookup_order": broken})
    state, actions = eng.advance(RETURNS, None, CustomerMessage("A-12345, damaged"))
    assert actions[0] == ToolCalled(
        "lookup_order",
        {"order_number": "A-12345"},
        None,
        "TimeoutError: orders service did not answer in 5 s",
    )
    assert texts(actions) == ["Sorry, lookup_order is not working right now. I am passing you to a person."]
    assert actions[-1] == HandOff(
        "tool_failed", "lookup_order: TimeoutError: orders service did not answer in 5 s", "lookup"
    )


def test_a_tool_error_can_go_to_a_step_of_the_flow():
    flow = parse_flow(
        """
name: refund
steps:
  - {id: pay, call: {tool: refund, args: {amount: 12.5, note: "for {last_message}"}, result: refund,
     on_error: sorry}}
  - {id: ok, say: "Refunded {refund.amount}.", next: fin}
  - {id: sorry, say: "The refund failed; try again later."}
  - {id: fin, end: {}}
"""
    )
    calls = []
    eng = FlowEngine({"refund": lambda amount, note: calls.append(note) or {"amount": amount}})
    _, actions = eng.advance(flow, None, CustomerMessage("the kettle"))
    assert calls == ["for the kettle"] and texts(actions) == ["Refunded 12.5."]
    eng.register("refund", lambda **_: 1 / 0)
    state, actions = eng.advance(flow, None, CustomerMessage("the kettle"))
    assert actions[0].error == "ZeroDivisionError: division by zero"
    assert texts(actions) == ["The refund failed; try again later."] and state.status == "completed"


@pytest.mark.parametrize("intent", ["cancel", "stop"])
def test_cancel_ends_the_flow_at_any_question(intent):
    eng = engine()
    state, _ = say(eng, None, "A-12345")
    state, actions = say(eng, state, "forget it", intent=intent)
    assert actions == [Reply(RETURNS.cancel_message["en"]), FlowEnded("cancelled")]
    assert state.status == "cancelled" and state.step is None


def test_asking_for_a_person_hands_off_at_once():
    state, actions = say(engine(), None, "I want a human", intent="handoff")
    assert actions == [Reply(RETURNS.handoff_message["en"]), HandOff("customer_asked", None, None)]
    assert state.status == "handed_off"


def test_a_question_mid_flow_is_answered_then_the_pending_question_asked_again():
    eng = engine()
    state, _ = say(eng, None, "A-12345")
    state, actions = say(eng, state, "How long do refunds take?", digression=True)
    assert actions == [AnswerFromKnowledge("How long do refunds take?", "shop-faq"), Reply(ASK_REASON)]
    assert (state.step, state.invalid) == ("ask_reason", 0)  # not counted as an invalid answer
    state, actions = say(eng, state, "damaged")
    assert state.status == "completed"


def test_a_restart_mid_flow_loses_nothing(tmp_path):
    db = Database(f"sqlite:///{tmp_path / 'desk.db'}")
    ada = Customers(db).create("acme", "Ada")
    convs = SupportConversations(db)
    conv = convs.open("acme", ada.id)
    state, _ = say(engine(), None, "my order is A-12345")
    state, _ = say(engine(), state, "hm?")  # one invalid answer to the reason
    convs.update("acme", conv.id, flow_state=state.to_json())
    db.close()

    db = Database(f"sqlite:///{tmp_path / 'desk.db'}")  # a new process: new database, flow, engine
    saved = SupportConversations(db).get("acme", conv.id).flow_state
    assert json.loads(json.dumps(saved)) == saved
    assert saved["slots"] == {"order_number": "A-12345"} and saved["invalid"] == 1
    flow = load_flow(Path(__file__).parents[3] / "examples" / "support" / "flows" / "returns.yaml")
    state, actions = FlowEngine({"lookup_order": lookup_order}).advance(
        flow, saved, CustomerMessage("damaged")
    )
    assert state.status == "completed" and state.slots["order"] == ORDERS["A-12345"]
    assert texts(actions)[0].startswith("Your return of order A-12345 (kettle) is accepted")


SMALL = """
name: survey
fallback: person
max_invalid: 2
steps:
  - id: rating
    ask: {slot: rating, prompt: "From 1 to 5?", schema: {type: integer, minimum: 1, maximum: 5},
          invalid: "A whole number from 1 to 5, please."}
  - id: route
    branch:
      - if: [{slot: rating, ge: 4}, {slot: rating, exists: true}]
        next: thanks
      - {if: {slot: rating, in: [1, 2]}, next: person}
  - id: faq
    answer: {question: "What improves a rating of {rating}?"}
  - {id: thanks, end: {message: "Thanks for {rating}!"}}
  - {id: person, handoff: {reason: unhappy, message: "A colleague will call you."}}
"""


def test_json_schema_slots_conditions_answers_and_the_fallback_step():
    flow = parse_flow(SMALL)
    eng = FlowEngine()

    def answer(text: str):
        state, actions = eng.advance(flow, None)  # a flow's first message starts it; it asks first
        assert actions == [Reply("From 1 to 5?")]
        return eng.advance(flow, state, CustomerMessage(text))

    state, actions = answer("5")
    assert state.slots == {"rating": 5} and actions == [Reply("Thanks for 5!"), FlowEnded("completed")]
    state, actions = answer("3")
    assert actions[0] == AnswerFromKnowledge("What improves a rating of 3?", None)
    assert texts(actions) == ["Thanks for 3!"]
    state, actions = answer("2")
    assert actions[-1] == HandOff("unhappy", None, "person")
    state, actions = answer("9")
    assert actions == [Reply("A whole number from 1 to 5, please.")] and state.invalid == 1
    state, actions = eng.advance(flow, state, CustomerMessage("great"))  # 2 invalid: the fallback step
    assert texts(actions) == ["A colleague will call you."] and actions[-1].reason == "unhappy"


def test_states_of_another_flow_or_a_removed_step_are_refused_and_loops_are_caught():
    with pytest.raises(InvalidInputError, match="belongs to the flow 'survey'"):
        advance(RETURNS, FlowState(flow="survey"), CustomerMessage("hi"))
    with pytest.raises(InvalidInputError, match="no step 'gone' any more"):
        advance(RETURNS, {"flow": "returns", "step": "gone", "waiting": "slot"}, CustomerMessage("hi"))
    with pytest.raises(InvalidInputError, match="'accept' of the flow 'returns' no longer waits for a slot"):
        advance(RETURNS, {"flow": "returns", "step": "accept", "waiting": "slot"}, CustomerMessage("hi"))
    with pytest.raises(InvalidInputError, match="not a saved flow state"):
        advance(RETURNS, {"flow": "returns", "colour": "red"}, CustomerMessage("hi"))
    loop = parse_flow("name: l\nsteps:\n  - {id: a, say: hi, next: b}\n  - {id: b, say: again, next: a}\n")
    with pytest.raises(FlowError, match="ran 200 steps without waiting"):
        advance(loop, None)


def test_the_default_extractor_takes_whole_words_and_one_enum_value():
    from clearlm.apps.support import PatternExtractor

    asking, _ = advance(RETURNS, None)
    extract = PatternExtractor().extract
    assert extract(RETURNS, asking, "A-123456 or XA-12345") == {}  # no match standing on its own
    assert extract(RETURNS, asking, "(A-54321) Wrong-Item!") == {
        "order_number": "A-54321",
        "reason": "wrong_item",
    }
    assert extract(RETURNS, asking, "the lamp") == {}  # the pending slot has a pattern: no free text
    survey, _ = advance(parse_flow(SMALL), None)
    assert extract(parse_flow(SMALL), survey, " [1, 2] ") == {
        "rating": [1, 2]
    }  # JSON, then the schema judges


def test_tool_results_are_kept_as_plain_json():
    from datetime import date

    flow = parse_flow(
        "name: t\nsteps:\n  - {id: c, call: {tool: when, result: when}}\n"
        "  - {id: s, say: 'Delivered on {when.day}.'}\n"
    )
    eng = FlowEngine({"when": lambda: {"day": date(2026, 11, 20), "parcels": (1, 2)}})
    state, actions = eng.advance(flow, None)
    assert state.slots["when"] == {"day": "2026-11-20", "parcels": [1, 2]}
    assert texts(actions) == ["Delivered on 2026-11-20."]
    assert json.loads(json.dumps(state.to_json()))["slots"] == state.slots
    eng.register("when", lambda: object())
    _, actions = eng.advance(flow, None)
    assert actions[0].error.startswith("PydanticSerializationError") and actions[-1].reason == "tool_failed"
