"""Tool confirmations over a real server (the tiny random model, the sample desk in examples/support):
``change_address`` (``confirm: customer``) runs only after the customer's "oui", ``refund_request``
(``confirm: agent``) only after an agent approves it, through ``POST .../tool-confirmation`` or through
``/v1/review`` (also on a server restarted mid-approval, before any support request); each decision and
tool call is in the audit; the customer is told meanwhile; a decline goes to the flow's ``on_declined``."""

from __future__ import annotations

from pathlib import Path

import pytest
from support_clients import keyed_clients, ok

DESK = Path(__file__).parents[2] / "examples" / "support"
NEW = "12 Harbour Road, Leeds LS1 4AB"  # English: the desk would translate its replies otherwise


@pytest.fixture
def desk(serve, tiny_backend):
    server = serve(tiny_backend, support_desk=str(DESK), default_max_tokens=4)
    with keyed_clients(server) as clients:
        yield server, clients


def http_records(server, path: str) -> list:
    return [r for r in server.state.audit.records() if r.endpoint == f"/v1{path}"]


def to_approval(shop, order: str) -> tuple[str, dict]:
    """A refund conversation up to the request for an agent's approval: (its id, that turn's reply)."""
    cus = ok(shop.post("/support/customers", json={"name": "Ana"}), 201)
    started = ok(shop.post("/support/conversations", json={"customer_id": cus["id"], "flow": "refund"}), 201)
    cid = started["conversation"]["id"]
    ok(shop.post(f"/support/conversations/{cid}/messages", json={"text": order}))
    return cid, ok(shop.post(f"/support/conversations/{cid}/messages", json={"text": "damaged"}))


def test_the_customer_confirms_an_address_change_in_the_chat(desk):
    server, c = desk
    shop = c["shop"]
    cus = ok(shop.post("/support/customers", json={"name": "Chloé", "language": "en"}), 201)
    cid = ok(shop.post("/support/conversations", json={"customer_id": cus["id"]}), 201)["conversation"]["id"]

    def say(text: str) -> dict:
        return ok(shop.post(f"/support/conversations/{cid}/messages", json={"text": text}))

    assert say("I need to change the address of my order")["flow"]["flow"] == "change_address"
    say("A-10006")
    asked = say(NEW)
    question = f"Shall I send order A-10006 (phone case) to {NEW}? Please answer yes or no."
    assert asked["messages"][-1]["text"] == question and asked["tool_calls"] == []
    assert asked["flow"]["waiting"] == "customer"
    assert asked["flow"]["pending"]["arguments"] == {"order_number": "A-10006", "address": NEW}

    done = say("Oui, merci")
    assert [t["tool"] for t in done["tool_calls"]] == ["change_address"]
    assert done["tool_calls"][0]["result"]["address"] == NEW
    [confirmed] = done["confirmations"]
    assert (confirmed["by"], confirmed["customer_id"], confirmed["approved"]) == ("customer", cus["id"], True)
    assert done["messages"][1]["text"] == f"Done: order A-10006 now goes to {NEW}."
    assert done["flow"]["confirmations"][0]["at"] == confirmed["at"]
    record = http_records(server, f"/support/conversations/{cid}/messages")[-1]
    assert record.parameters["confirmations"] == [
        {**confirmed, "arguments": f'{{"order_number": "A-10006", "address": "{NEW}"}}'}
    ]
    assert record.parameters["tool_calls"][0]["tool"] == "change_address"


def test_an_agent_approves_a_refund_on_the_desk_route_and_the_flow_goes_on(desk):
    server, c = desk
    shop, agent = c["shop"], c["agent"]
    cid, asked = to_approval(shop, "A-10001")
    assert asked["messages"][-1]["text"].startswith("A colleague must approve this first: Refund an order")
    assert asked["tool_calls"] == [] and asked["conversation"]["status"] == "open"
    [pending] = asked["confirmations"]
    assert pending["approved"] is None
    item = ok(agent.get(f"/review/{pending['review_id']}"))
    assert item["kind"] == "support_tool_confirmation" and item["status"] == "open"
    assert item["payload"]["arguments"] == {"order_number": "A-10001", "reason": "damaged"}
    assert item["payload"]["transcript"][-1]["text"] == asked["messages"][-1]["text"]

    meanwhile = ok(shop.post(f"/support/conversations/{cid}/messages", json={"text": "Any news?"}))
    assert meanwhile["messages"][-1]["text"].startswith("A colleague still has to approve this")
    assert meanwhile["tool_calls"] == []
    path = f"/support/conversations/{cid}/tool-confirmation"
    assert shop.post(path, json={"approve": True}).status_code == 403  # agents (admins) only
    assert agent.post(path, json={"approve": "perhaps"}).status_code == 400

    done = ok(agent.post(path, json={"approve": True}))
    assert done["tool_calls"][0]["tool"] == "refund_request"
    assert done["tool_calls"][0]["result"]["refund_id"] == "RF-10001"
    decided = ok(agent.get(f"/review/{pending['review_id']}"))
    assert decided["status"] == "approved"
    assert [(x["by"], x["approved"]) for x in done["confirmations"]] == [(decided["decided_by"], True)]
    assert done["messages"][0]["text"].startswith("Your refund RF-10001 for blue kettle is on its way")
    chat = ok(shop.get(f"/support/conversations/{cid}"))["messages"]
    assert chat[-2]["text"] == done["messages"][0]["text"] and done["flow"]["status"] == "completed"
    record = http_records(server, path)[-1]
    assert record.parameters["tool_calls"][0]["tool"] == "refund_request"
    assert record.parameters["confirmations"][0]["by"] == decided["decided_by"]
    again = agent.post(path, json={"approve": True})
    assert again.status_code == 409 and again.json()["error"]["code"] == "support_no_pending_approval"


def test_the_review_queue_decides_after_a_restart_and_a_dismissal_declines(serve, tiny_backend, tmp_path):
    first = serve(tiny_backend, support_desk=str(DESK), default_max_tokens=4)
    with keyed_clients(first) as c:
        approved_cid, approve = to_approval(c["shop"], "A-10003")
        declined_cid, decline = to_approval(c["shop"], "A-10004")
    first.stop()

    server = serve(tiny_backend, support_desk=str(DESK), default_max_tokens=4)  # the same database
    with keyed_clients(server) as c:
        agent, shop = c["agent"], c["shop"]
        review = approve["confirmations"][0]["review_id"]
        answered = agent.post(f"/review/{review}/decision", json={"action": "answer", "answer": "ok"})
        assert answered.status_code == 400 and "not answered" in answered.json()["error"]["message"]
        assert ok(agent.get(f"/review/{review}"))["status"] == "open"

        item = ok(agent.post(f"/review/{review}/decision", json={"action": "approve"}))
        assert item["status"] == "approved"
        said = [m["text"] for m in ok(shop.get(f"/support/conversations/{approved_cid}"))["messages"]]
        assert said[-2].startswith("Your refund RF-10003 for wool scarf is on its way")
        [record] = [r for r in server.state.audit.records() if r.endpoint == "support:tool_confirmation"]
        assert record.parameters["review_id"] == review and record.tenant == "acme"
        assert record.parameters["tool_calls"][0]["tool"] == "refund_request"
        assert record.parameters["confirmations"][0]["by"] == item["decided_by"]
        assert record.parameters["confirmations"][0]["approved"] is True

        review = decline["confirmations"][0]["review_id"]
        ok(agent.post(f"/review/{review}/decision", json={"action": "dismiss"}))
        state = ok(shop.get(f"/support/conversations/{declined_cid}"))
        assert state["messages"][-2]["text"].startswith(
            "A colleague could not approve a refund for order A-10004"
        )
        assert [x["approved"] for x in state["flow_state"]["confirmations"]] == [False]
