"""/v1/review over a real server with the tiny model: a policy's escalate rule fills the queue from a chat
request; an admin of the tenant approves, answers or dismisses each item once (409 after), every decision
audited; another tenant's item is 404 and a user key gets 403."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest

from clearlm.models import Message, SamplingParams
from clearlm.pipeline import TurnRequest, start_turn
from clearlm.store import AuditRecord

POLICY = "name: desk\ninput:\n  - {scanner: toxicity, words: [refund], action: escalate}\n"


def chat(client: httpx.Client, text: str) -> dict:
    body = {"model": "tiny-random-qwen2", "messages": [{"role": "user", "content": text}], "max_tokens": 3}
    r = client.post("/chat/completions", json=body)
    assert r.status_code == 200, r.text
    return r.json()


@pytest.fixture
def desk(serve, tiny_backend, tmp_path):
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY)
    server = serve(tiny_backend, policy=str(policy))
    keys = server.state.keys
    clients = {}
    for name, tenant, scope in [
        ("admin", "acme", "admin"),
        ("user", "acme", "user"),
        ("other", "zeta", "admin"),
    ]:
        _, secret = keys.create(name, tenant=tenant, scope=scope)
        clients[name] = httpx.Client(
            base_url=server.url, headers={"Authorization": f"Bearer {secret}"}, timeout=60
        )
    yield server, clients
    for c in clients.values():
        c.close()


def test_escalated_chats_are_queued_and_each_is_decided_once_and_audited(desk):
    server, c = desk
    admin = c["admin"]
    answers = [chat(c["user"], f"I want a refund for order {i}") for i in range(3)]
    chat(c["user"], "What are your opening hours?")  # not escalated
    listed = admin.get("/review").json()["data"]
    assert [i["request_id"] for i in listed] == [a["id"] for a in answers]  # oldest first
    first = listed[0]
    assert first["kind"] == "escalated_request" and first["status"] == "open"
    assert first["title"] == "I want a refund for order 0" and first["tenant"] == "acme"
    assert first["payload"]["output"] == answers[0]["choices"][0]["message"]["content"]
    assert first["payload"]["findings"]["input"]["action"] == "escalate"
    assert first["payload"]["endpoint"] == "/v1/chat/completions"

    ids = [i["id"] for i in listed]
    approved = admin.post(f"/review/{ids[0]}/decision", json={"action": "approve", "note": "fine"})
    assert approved.status_code == 200 and approved.json()["status"] == "approved"
    again = admin.post(f"/review/{ids[0]}/decision", json={"action": "dismiss"})
    assert again.status_code == 409 and "already decided" in again.json()["error"]["message"]
    blank = admin.post(f"/review/{ids[1]}/decision", json={"action": "answer", "answer": "  \n"})
    assert blank.status_code == 400 and "answer" in blank.json()["error"]["message"]
    empty = admin.post(f"/review/{ids[1]}/decision", json={"action": "answer"})
    assert empty.status_code == 400 and "answer" in empty.json()["error"]["message"]
    answered = admin.post(
        f"/review/{ids[1]}/decision", json={"action": "answer", "answer": "Refunds: 14 days."}
    )
    assert (
        answered.json()["decision"]["answer"] == "Refunds: 14 days."
        and answered.json()["status"] == "answered"
    )
    dismissed = admin.post(f"/review/{ids[2]}/decision", json={"action": "dismiss"})
    assert dismissed.json()["status"] == "dismissed" and dismissed.json()["decided_by"].startswith("key_")
    assert admin.get("/review").json()["data"] == []
    decided = admin.get("/review", params={"status": "decided"}).json()["data"]
    assert {i["id"]: i["status"] for i in decided} == dict(
        zip(ids, ["approved", "answered", "dismissed"], strict=True)
    )
    assert admin.get(f"/review/{ids[1]}").json()["decision"]["action"] == "answer"

    records = [r for r in server.state.audit.records() if r.endpoint.endswith("/decision")]
    # every decision, refused ones included (a body refused before the handler: its path names the item)
    assert [(r.endpoint.split("/")[3], r.status_code) for r in records] == [
        (ids[0], 200),
        (ids[0], 409),
        (ids[1], 400),
        (ids[1], 400),
        (ids[1], 200),
        (ids[2], 200),
    ]
    assert records[0].output == {"status": "approved", "action": "approve", "answer": None, "note": "fine"}
    assert (
        records[4].output["answer"] == "Refunds: 14 days."
        and records[4].parameters["kind"] == "escalated_request"
    )
    assert records[4].parameters == {
        "review_id": ids[1],
        "action": "answer",
        "kind": "escalated_request",
        "item_request_id": answers[1]["id"],
    }
    assert records[1].parameters == {"review_id": ids[0], "action": "dismiss"}  # the 409
    assert "answer" in records[2].error


def test_other_tenants_and_user_keys_cannot_see_or_decide_items(desk):
    _, c = desk
    chat(c["user"], "refund please")
    [item] = c["admin"].get("/review").json()["data"]
    assert c["other"].get("/review").json()["data"] == []
    assert c["other"].get(f"/review/{item['id']}").status_code == 404
    decided = c["other"].post(f"/review/{item['id']}/decision", json={"action": "dismiss"})
    assert decided.status_code == 404
    for call in (
        c["user"].get("/review"),
        c["user"].post(f"/review/{item['id']}/decision", json={"action": "dismiss"}),
    ):
        assert call.status_code == 403 and "admin" in call.json()["error"]["message"]
    assert c["admin"].get("/review", params={"status": "closed"}).status_code == 400
    assert c["admin"].get(f"/review/{item['id']}").json()["status"] == "open"


def test_an_answer_joins_the_conversation_the_request_came_from(desk):
    pytest.importorskip("clearlm.store.conversations")
    from clearlm.store.conversations import Conversations

    server, c = desk
    conversations = Conversations(server.state.db)
    conv = conversations.create("acme", "key_x", "Refunds")
    # What the chat does: a turn whose request carries its origin.
    record = AuditRecord("chatcmpl-conv", datetime.now(UTC), "/v1/conversations/x/turns", tenant="acme")
    request = TurnRequest(
        [Message("user", "refund now")],
        SamplingParams(max_new_tokens=2),
        origin={"conversation_id": conv["id"]},
    )
    start_turn(server.state.backend, request, record, server.state.audit, server.state.policy).run()
    [item] = c["admin"].get("/review").json()["data"]
    assert item["payload"]["origin"] == {"conversation_id": conv["id"]}
    r = c["admin"].post(
        f"/review/{item['id']}/decision", json={"action": "answer", "answer": "Done: refunded."}
    )
    assert r.status_code == 200
    messages = conversations.get("acme", "key_x", conv["id"])["messages"]
    # A conversation deleted meanwhile: the answer cannot reach it, the item stays open.
    record = AuditRecord("chatcmpl-gone", datetime.now(UTC), "/v1/conversations/x/turns", tenant="acme")
    start_turn(server.state.backend, request, record, server.state.audit, server.state.policy).run()
    [gone] = c["admin"].get("/review").json()["data"]
    conversations.delete("acme", "key_x", conv["id"])
    refused = c["admin"].post(f"/review/{gone['id']}/decision", json={"action": "answer", "answer": "Hi"})
    assert refused.status_code == 400 and "no longer exists" in refused.json()["error"]["message"]
    assert c["admin"].get(f"/review/{gone['id']}").json()["status"] == "open"
    assert messages[-1]["role"] == "assistant" and messages[-1]["content"] == "Done: refunded."
    assert messages[-1]["meta"] == {"reviewed_by": r.json()["decided_by"], "review_id": item["id"]}
