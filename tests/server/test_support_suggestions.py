"""POST /v1/support/conversations/{id}/suggestion over a real server (the tiny random model, the sample desk
in examples/support, its FAQ as the tenant's knowledge base ``shop-faq``): a handed-off return gets a
suggested reply (the model's draft, then the FAQ's quoted sentences with their citations), each part one
audited ``support:suggest`` turn, nothing stored in the chat; no knowledge part without a flow; an open
conversation is 409, a user key 403, another tenant's conversation 404, all with OpenAI-style bodies."""

from __future__ import annotations

from pathlib import Path

import pytest
from support_clients import keyed_clients, ok

DESK = Path(__file__).parents[2] / "examples" / "support"
FAQ = (DESK / "kb" / "shop-faq.md").read_text(encoding="utf-8")
QUOTE = "You can return an item within 30 days of its delivery. Return the item for a refund and place a new order."


@pytest.fixture
def desk(serve, tiny_backend, tmp_path, monkeypatch):
    from clearlm.models.embeddings import load_embedder

    monkeypatch.setenv("CLEARLM_HOME", str(tmp_path / "home"))  # the knowledge bases' folder
    server = serve(tiny_backend, embedder=load_embedder(), support_desk=str(DESK), default_max_tokens=4)
    with keyed_clients(server) as clients:
        agent = clients["agent"]
        ok(agent.post("/kb", json={"name": "shop-faq", "chunk_tokens": 96, "overlap": 0}), 201)
        ok(agent.post("/kb/shop-faq/files", json={"files": [{"filename": "shop-faq.md", "content": FAQ}]}))
        yield server, clients


def conversation(shop, *texts: str) -> tuple[str, dict]:
    """A new customer's conversation after ``texts``: its id, and the last reply."""
    ana = ok(shop.post("/support/customers", json={"name": "Ana"}), 201)
    cid = ok(shop.post("/support/conversations", json={"customer_id": ana["id"]}), 201)["conversation"]["id"]
    for text in texts:
        last = ok(shop.post(f"/support/conversations/{cid}/messages", json={"text": text}))
    return cid, last


def test_a_handed_off_return_gets_a_draft_and_the_faq_s_cited_answer(desk):
    server, clients = desk
    agent, shop, zeta = clients["agent"], clients["shop"], clients["zeta"]
    cid, last = conversation(shop, "I am returning order A-10002", "changed mind")
    assert last["handoff"]["reason"] == "outside_return_window"
    before = ok(agent.get(f"/support/conversations/{cid}"))["messages"]

    got = ok(agent.post(f"/support/conversations/{cid}/suggestion"))
    knowledge = got["knowledge"]
    assert knowledge["knowledge_base"] == "shop-faq"
    assert knowledge["question"] == (
        "A customer returns an item they bought (outside return window). I am returning order A-10002. "
        "changed mind."
    )
    assert knowledge["answer"] == (
        "You can return an item within 30 days of its delivery. [1] Return the item for a refund and "
        "place a new order. [2]"
    )
    assert knowledge["quote"] == QUOTE
    assert [(c["n"], c["path"], c["heading"].split(" > ")[-1]) for c in knowledge["citations"]] == [
        (1, "shop-faq.md", "Returns window"),
        (2, "shop-faq.md", "Exchanges"),
    ]
    assert got["refused"] is False and got["draft"]  # the tiny model's random words
    assert got["text"] == got["draft"] + "\n\n" + QUOTE
    assert got["request_ids"][0] == knowledge["request_id"] and len(got["request_ids"]) == 2

    records = {r.request_id: r for r in server.state.audit.records(tenant="acme")}
    quoted, drafted = (records[i] for i in got["request_ids"])
    assert quoted.endpoint == drafted.endpoint == "support:suggest"
    assert all(i.startswith(cid + "-") for i in got["request_ids"])
    assert quoted.parameters["answer"] == "extract" and quoted.output == knowledge["answer"]
    assert drafted.output.strip() == got["draft"]
    # the draft's prompt: the conversation's latest messages, as many as the tiny model's 256 tokens hold
    said = [
        {"role": "user" if m["role"] == "customer" else "assistant", "content": m["text"]} for m in before
    ]
    spoken = [m for m in drafted.prompt if m["role"] != "system"]
    assert spoken and spoken == said[-len(spoken) :] and spoken[-1]["content"].startswith("Order A-10002")
    [route] = [r for r in records.values() if r.endpoint == f"/v1/support/conversations/{cid}/suggestion"]
    assert route.parameters == {"conversation_id": cid, "request_ids": got["request_ids"]}
    assert ok(agent.get(f"/support/conversations/{cid}"))["messages"] == before  # nothing sent or stored

    # errors: a user key, another tenant, an open conversation, no such conversation
    refused = shop.post(f"/support/conversations/{cid}/suggestion")
    assert refused.status_code == 403 and refused.json()["error"]["type"]
    hidden = zeta.post(f"/support/conversations/{cid}/suggestion")
    assert hidden.status_code == 404 and cid in hidden.json()["error"]["message"]
    open_cid, _ = conversation(shop, "I am returning order A-10001")  # the flow asks the reason: open
    busy = agent.post(f"/support/conversations/{open_cid}/suggestion")
    assert busy.status_code == 409 and busy.json()["error"]["code"] == "support_not_handed_off"
    assert agent.post("/support/conversations/sup_0/suggestion").status_code == 404
    assert len(server.state.audit.records(tenant="zeta")) == 1  # its 404; no turn ran for it


def test_without_a_flow_the_suggestion_is_the_draft_alone(desk):
    server, clients = desk
    cid, last = conversation(clients["shop"], "Can I talk to a human?")
    assert last["handoff"]["reason"] == "customer_asked"
    got = ok(clients["agent"].post(f"/support/conversations/{cid}/suggestion"))
    assert got["knowledge"] is None and len(got["request_ids"]) == 1
    assert got["text"] == got["draft"] and got["refused"] is False
    [record] = [r for r in server.state.audit.records(tenant="acme") if r.request_id == got["request_ids"][0]]
    assert record.endpoint == "support:suggest" and record.output.strip() == got["draft"]
    spoken = [
        m["content"] for m in record.prompt if m["role"] != "system"
    ]  # as the tiny model's context holds
    said = ["Can I talk to a human?", "I am passing you to a person; they will answer here shortly."]
    assert spoken and spoken == said[-len(spoken) :]


def test_a_suggestion_the_agent_s_policy_refuses_puts_nothing_in_the_box(desk, tmp_path):
    server, clients = desk
    cid, _ = conversation(clients["shop"], "I am returning order A-10002", "changed mind")
    strict = tmp_path / "strict.yaml"
    strict.write_text(  # the knowledge question quotes the order number; any draft with words is blocked
        'name: strict\nrefusal: "Refused."\n'
        'input:\n  - {scanner: regex, patterns: {o: "A-10002"}, action: block}\n'
        'output:\n  - {scanner: regex, patterns: {w: "\\\\S"}, action: block}\n'
    )
    _, secret = server.state.keys.create("careful agent", policy=str(strict), tenant="acme", scope="admin")
    got = ok(
        clients["agent"].post(
            f"/support/conversations/{cid}/suggestion", headers={"Authorization": f"Bearer {secret}"}
        )
    )
    assert (got["text"], got["draft"], got["refused"]) == ("", "", True)
    knowledge = got["knowledge"]
    assert (knowledge["answer"], knowledge["quote"], knowledge["citations"]) == ("Refused.", "", [])
    records = {r.request_id: r for r in server.state.audit.records(tenant="acme")}
    assert [records[i].finish_reason for i in got["request_ids"]] == ["content_filter", "content_filter"]
    quoted, drafted = (records[i].governance for i in got["request_ids"])
    assert quoted["input"]["action"] == "block"  # the question quotes the customer's order number
    # the draft's stored history (which names A-10002 too) was checked at its own turns: not scanned again
    assert drafted["input"] == {"action": "allow", "results": []}
    assert drafted["output"][0]["action"] == "block"


def test_a_question_mid_flow_is_answered_with_the_faq_s_quoted_sentences(desk):
    """The desk's knowledge-base answers are extractive by default (``Desk.knowledge_answer``): the FAQ's
    own sentences with their citation, whatever the (here random) model would have written."""
    server, clients = desk
    shop = clients["shop"]
    ana = ok(shop.post("/support/customers", json={"name": "Ana", "language": "en"}), 201)
    opened = ok(shop.post("/support/conversations", json={"customer_id": ana["id"], "flow": "returns"}), 201)
    cid = opened["conversation"]["id"]
    reply = ok(
        shop.post(f"/support/conversations/{cid}/messages", json={"text": "Do I pay for return shipping?"})
    )
    answer, asked_again = [m["text"] for m in reply["messages"][1:]]
    assert answer.startswith("Return shipping is free.") and "[1]" in answer
    assert asked_again.startswith("What is your order number?")
    record = server.state.audit.get(reply["request_ids"][0], "acme")
    assert record.endpoint == "support:answer" and record.parameters["answer"] == "extract"
