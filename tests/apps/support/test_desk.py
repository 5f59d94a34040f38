"""The support desk's turn on the governed pipeline, with the tiny random model (its words are random:
these tests assert on flow-driven text, statuses, audit records and review items, not on its wording).

A returns flow from a trigger through a tool call to a hand-off; every assistant message has its audit
record; the assistant stays silent once handed off; an agent's answer joins the chat; hand back; PII
redacted in the stored history with ``store_redacted``; another customer's words never in a prompt; a
policy ``escalate`` hands off; the model extracts a slot as JSON constrained to the slot's schema."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from clearlm.apps.support import (
    HANDOFF,
    Customers,
    Desk,
    ModelExtractor,
    PatternExtractor,
    TurnRunner,
    hand_back,
    load_desk,
)
from clearlm.apps.support.desk import FlowNotFoundError
from clearlm.apps.support.flows import Ask
from clearlm.apps.support.handoff import NotHandedOffError
from clearlm.apps.support.model_extract import slot_schema
from clearlm.errors import InvalidInputError
from clearlm.govern.policy import parse_policy
from clearlm.store import AuditLog, Database
from clearlm.store.review import ReviewQueue

DESK = Path(__file__).parents[3] / "examples" / "support"


@pytest.fixture
def db(tmp_path):
    db = Database(f"sqlite:///{tmp_path / 'desk.db'}")
    yield db
    db.close()


def make_desk(db, backend, policy=None, extractor=None) -> Desk:
    flows, tools = load_desk(DESK)
    runner = TurnRunner(backend, AuditLog(db), policy, max_tokens=4)
    return Desk(db, runner, flows, tools, extractor=extractor or PatternExtractor())


def records_of(db, conversation_id: str) -> list:
    return [r for r in AuditLog(db).records() if r.request_id.startswith(conversation_id + "-")]


def test_a_return_runs_from_its_trigger_through_the_tool_to_acceptance_every_reply_audited(db, tiny_backend):
    desk = make_desk(db, tiny_backend)
    ada = Customers(db).create("acme", "Ada", "en")
    cid = desk.open_conversation("acme", ada.id).conversation.id
    first = desk.customer_message("acme", cid, "Hello, I want to return my kettle, order A-10001")
    assert first.flow["flow"] == "returns" and first.flow["slots"] == {"order_number": "A-10001"}
    assert [m.role for m in first.messages] == ["customer", "assistant"]
    assert first.messages[1].text.startswith("Why are you returning it")
    second = desk.customer_message("acme", cid, "it arrived damaged")
    assert second.tool_calls == [
        {
            "tool": "lookup_order",
            "arguments": {"order_number": "A-10001"},
            "result": {
                "found": True,
                "item": "blue kettle",
                "email": "ana@example.com",
                "days_since_delivery": 5,
                "status": "delivered",
            },
            "error": None,
        }
    ]
    texts = [m.text for m in second.messages[1:]]
    assert texts[0].startswith("Your return of order A-10001 (blue kettle) is accepted")
    assert texts[1] == "Is there anything else I can help with?"
    assert second.flow["status"] == "completed" and second.conversation.status == "open"
    # one audit record per assistant message, each a forced target holding the text the customer got
    records = records_of(db, cid)
    said = [m for m in desk.conversations.get("acme", cid).messages if m.role == "assistant"]
    assert [r.output for r in records] == [m.text for m in said]
    assert {r.endpoint for r in records} == {"support:reply"} and all(r.tenant == "acme" for r in records)
    assert all(r.finish_reason == "forced" for r in records)
    assert {r.request_id for r in records} == set(first.request_ids + second.request_ids)


def test_outside_the_window_hands_off_to_a_person_who_answers_and_hands_back(db, tiny_backend):
    desk = make_desk(db, tiny_backend)
    ben = Customers(db).create("acme", "Ben", "de")
    cid = desk.open_conversation("acme", ben.id, flow="returns").conversation.id
    desk.customer_message("acme", cid, "A-10002")
    late = desk.customer_message("acme", cid, "changed mind")
    assert late.handoff["reason"] == "outside_return_window" and late.conversation.status == "handed_off"
    translated = [r for r in records_of(db, cid) if r.endpoint == "support:translate"][-1]  # Ben: German
    assert translated.endpoint == "support:translate" and translated.request_id in late.request_ids
    assert "45 days ago" in json.dumps(translated.prompt) and late.messages[-1].text in translated.output
    items = ReviewQueue(db).list("acme", kind=HANDOFF)
    assert [i.id for i in items] == [late.handoff["review_id"]]
    payload = items[0].payload
    assert (
        payload["conversation_id"] == cid and payload["language"] == "de" and payload["customer_id"] == ben.id
    )
    assert [t["text"] for t in payload["transcript"]] == [
        m.text for m in desk.conversations.get("acme", cid).messages
    ]
    assert payload["summary"] == "First: A-10002 | Last: changed mind"
    # handed off: the assistant is silent, no pipeline turn runs
    before = len(records_of(db, cid))
    quiet = desk.customer_message("acme", cid, "hello? anyone there?")
    assert [m.role for m in quiet.messages] == ["customer"] and quiet.notice and quiet.request_ids == []
    assert len(records_of(db, cid)) == before
    # the agent answers through the review queue: the answer joins the chat as an agent message
    ReviewQueue(db).decide(items[0].id, "acme", "answer", "key_agent", answer="I can make an exception.")
    messages = desk.conversations.get("acme", cid).messages
    assert (messages[-1].role, messages[-1].text) == ("agent", "I can make an exception.")
    back = hand_back(db, "acme", cid, "key_agent")
    assert back.status == "open"
    with pytest.raises(NotHandedOffError, match="not handed off"):
        hand_back(db, "acme", cid, "key_agent")
    again = desk.customer_message("acme", cid, "thanks, what else can you do?")
    assert len(again.request_ids) == 1  # a free reply (the random model's words: maybe none)
    assert records_of(db, cid)[-1].endpoint == "support:free"


def test_asking_for_a_person_hands_off_and_a_missing_order_fails_over_to_a_person(db, tiny_backend):
    desk = make_desk(db, tiny_backend)
    cy = Customers(db).create("acme", "Cy", "en")
    cid = desk.open_conversation("acme", cy.id).conversation.id
    reply = desk.customer_message("acme", cid, "Can I talk to a human please?")
    assert reply.handoff["reason"] == "customer_asked" and reply.conversation.status == "handed_off"
    assert reply.messages[-1].text == "I am passing you to a person; they will answer here shortly."
    other = desk.open_conversation("acme", cy.id, flow="returns").conversation.id
    desk.customer_message("acme", other, "A-99999")
    missing = desk.customer_message("acme", other, "wrong item")
    assert missing.tool_calls[0]["result"] == {"found": False}
    assert missing.handoff["reason"] == "order_not_found"
    assert len(ReviewQueue(db).list("acme", kind=HANDOFF)) == 2


def test_another_customers_words_never_enter_the_prompt(db, tiny_backend):
    desk = make_desk(db, tiny_backend)
    customers = Customers(db)
    ada, eve = customers.create("acme", "Ada", "en"), customers.create("acme", "Eve", "en")
    eve_cid = desk.open_conversation("acme", eve.id).conversation.id
    desk.customer_message("acme", eve_cid, "My secret word is PAPAYA-42.")
    ada_cid = desk.open_conversation("acme", ada.id).conversation.id
    desk.customer_message("acme", ada_cid, "Hi there, what are your opening hours?")
    prompts = [json.dumps(r.prompt) for r in records_of(db, ada_cid)]
    assert prompts and all("PAPAYA" not in p for p in prompts)
    assert any("opening hours" in p for p in prompts)


def test_with_store_redacted_pii_never_reaches_the_history_or_the_audit_log(db, tiny_backend):
    policy = parse_policy(
        "name: desk\nstore_redacted: true\ninput:\n  - {scanner: pii, action: warn}\n"
        "output:\n  - {scanner: pii, action: redact}\n"
    )
    desk = make_desk(db, tiny_backend, policy)
    ana = Customers(db).create("acme", "Ana", "en")
    cid = desk.open_conversation("acme", ana.id, flow="returns").conversation.id
    desk.customer_message("acme", cid, "A-10001, write to me at ana.lima@example.com")
    reply = desk.customer_message("acme", cid, "damaged")
    stored = [m.text for m in desk.conversations.get("acme", cid).messages]
    assert not any("example.com" in t for t in stored)  # the customer's and the flow's reply (label email)
    assert any("A-10001" in t for t in stored) and "accepted" in reply.messages[1].text
    assert all("example.com" not in json.dumps([r.prompt, r.output]) for r in records_of(db, cid))


def test_a_policy_escalation_hands_the_conversation_off(db, tiny_backend):
    policy = parse_policy("name: desk\ninput:\n  - {scanner: toxicity, words: [lawyer], action: escalate}\n")
    desk = make_desk(db, tiny_backend, policy)
    dan = Customers(db).create("acme", "Dan", "en")
    cid = desk.open_conversation("acme", dan.id).conversation.id
    reply = desk.customer_message("acme", cid, "My lawyer will hear about this")
    assert reply.handoff["reason"] == "policy_escalate" and reply.conversation.status == "handed_off"
    kinds = sorted(i.kind for i in ReviewQueue(db).list("acme"))
    assert kinds.count(HANDOFF) == 1 and "escalated_request" in kinds  # the pipeline's own item too
    hand_back(db, "acme", cid, "key_agent")  # the old words stay in the history, but do not count again
    again = desk.customer_message("acme", cid, "Thanks for sorting it out")
    assert again.handoff is None and again.conversation.status == "open"
    assert len(again.request_ids) == 1 and records_of(db, cid)[-1].endpoint == "support:free"


def test_the_model_extracts_a_missing_slot_as_json_constrained_to_its_schema(db, tiny_backend):
    ask = Ask(slot="reason", prompt="Why?", enum=["damaged", "wrong_item", "changed_mind"])
    schema = slot_schema(ask)
    assert schema["properties"]["reason"]["anyOf"][0] == {"enum": ["damaged", "wrong_item", "changed_mind"]}
    desk = make_desk(db, tiny_backend)
    runner = TurnRunner(tiny_backend, AuditLog(db), max_tokens=24)
    fay = Customers(db).create("acme", "Fay", "en")
    cid = desk.open_conversation("acme", fay.id, flow="returns").conversation.id
    desk.customer_message("acme", cid, "A-10003")
    flow = desk.flows["returns"]
    state = desk.conversations.get("acme", cid).flow_state
    from clearlm.apps.support.state import FlowState

    extractor = ModelExtractor(runner, "acme", cid)
    found = extractor.extract(flow, FlowState.from_json(state), "hmm, let me think")
    assert extractor.asked == 1
    record = records_of(db, cid)[-1]
    assert record.endpoint == "support:extract" and "json_output" in record.parameters
    assert set(found) <= {"reason"} and found.get("reason", "damaged") in ask.enum
    # a value the patterns find is taken without asking the model
    assert extractor.extract(flow, FlowState.from_json(state), "wrong item") == {"reason": "wrong_item"}
    assert extractor.asked == 1


def test_a_pattern_slot_schema_is_anchored_so_llamacpp_compiles_its_grammar():
    from llama_cpp import LlamaGrammar

    schema = slot_schema(Ask(slot="order", prompt="Your order number?", pattern=r"A-\d{5}"))
    assert schema["properties"]["order"]["anyOf"][0] == {"type": "string", "pattern": r"^(A-[0-9]{5})$"}
    assert (
        slot_schema(Ask(slot="o", prompt="?", pattern=r"^A-\d{5}$"))["properties"]["o"]["anyOf"][0]["pattern"]
        == r"^(A-[0-9]{5})$"  # (\d as a class: model_extract.grammar_pattern)
    )
    LlamaGrammar.from_json_schema(json.dumps(schema), verbose=False)  # raised on the unanchored pattern


def test_unknown_flows_closed_and_foreign_conversations_are_refused(db, tiny_backend):
    desk = make_desk(db, tiny_backend)
    gus = Customers(db).create("acme", "Gus", "en")
    with pytest.raises(FlowNotFoundError, match="no flow named"):
        desk.open_conversation("acme", gus.id, flow="nope")
    cid = desk.open_conversation("acme", gus.id).conversation.id
    from clearlm.apps.support import SupportConversationNotFoundError

    with pytest.raises(SupportConversationNotFoundError):
        desk.customer_message("globex", cid, "hello")
    desk.conversations.update("acme", cid, status="closed")
    with pytest.raises(InvalidInputError, match="closed"):
        desk.customer_message("acme", cid, "hello")


def test_a_question_mid_flow_is_answered_then_the_pending_question_is_asked_again(db, tiny_backend):
    flows, tools = load_desk(DESK)
    asked = []

    def open_kb(tenant, name):  # the flow's knowledge base is not there: the model answers freely
        from clearlm.knowledge.errors import KnowledgeBaseNotFoundError

        asked.append((tenant, name))
        raise KnowledgeBaseNotFoundError(f"no knowledge base {name!r}")

    runner = TurnRunner(tiny_backend, AuditLog(db), max_tokens=4)
    desk = Desk(db, runner, flows, tools, open_kb=open_kb, extractor=PatternExtractor())
    hal = Customers(db).create("acme", "Hal", "en")
    cid = desk.open_conversation("acme", hal.id, flow="returns").conversation.id
    reply = desk.customer_message("acme", cid, "Do I have to pay for the return shipping?")
    assert asked == [("acme", "shop-faq")]
    assert reply.messages[-1].text.startswith("What is your order number?")  # asked again
    assert reply.flow["step"] == "ask_order" and reply.flow["status"] == "active"
    assert [r.endpoint for r in records_of(db, cid)[-2:]] == ["support:answer", "support:reply"]
    resumed = desk.customer_message("acme", cid, "A-10003")
    assert resumed.messages[-1].text.startswith("Why are you returning it")
