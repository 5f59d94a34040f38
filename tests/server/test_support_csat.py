"""The survey at close and the desk's figures over a real server (tiny model, no model call needed):
``POST /v1/support/conversations/{id}/csat`` stores a 1-5 score once a conversation is closed (a comment
as the policy stores text: PII redacted); a bad score is a 400 with an OpenAI-style body naming
``score``; a conversation not closed or rated already is a 409, another tenant's a 404;
``GET /v1/support/analytics`` (admins) returns the figures, ``since`` with a zone."""

from __future__ import annotations

import pytest
from support_clients import keyed_clients, ok

POLICY = "name: desk\nstore_redacted: true\ninput:\n  - {scanner: pii, action: warn}\n"


@pytest.fixture
def desk(serve, tiny_backend, tmp_path):
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY)
    server = serve(tiny_backend, policy=str(policy))
    with keyed_clients(server) as clients:
        yield server, clients


def conversations(shop, n: int) -> list[str]:
    cus = ok(shop.post("/support/customers", json={"name": "Ada"}), 201)
    return [
        ok(shop.post("/support/conversations", json={"customer_id": cus["id"]}), 201)["conversation"]["id"]
        for _ in range(n)
    ]


def test_a_closed_conversation_is_rated_once_and_the_figures_show_it(desk):
    server, c = desk
    shop, agent = c["shop"], c["agent"]
    rated, still_open = conversations(shop, 2)
    r = shop.post(f"/support/conversations/{still_open}/csat", json={"score": 4})
    assert r.status_code == 409 and "not closed yet" in r.json()["error"]["message"]
    assert r.json()["error"]["code"] == "support_csat_not_allowed"
    ok(shop.post(f"/support/conversations/{rated}/close"))
    comment = "Great help, write me at ada@example.com"
    done = ok(shop.post(f"/support/conversations/{rated}/csat", json={"score": 4, "comment": comment}), 201)
    assert (done["object"], done["conversation_id"], done["score"]) == ("support.csat", rated, 4)
    assert done["comment"].startswith("Great help") and "ada@example.com" not in done["comment"]
    again = shop.post(f"/support/conversations/{rated}/csat", json={"score": 1})
    assert again.status_code == 409 and "rated already" in again.json()["error"]["message"]
    record = next(
        r for r in server.state.audit.records() if r.endpoint.endswith("/csat") and r.status_code == 201
    )
    assert record.parameters == {"conversation_id": rated, "score": 4}

    figures = ok(agent.get("/support/analytics"))
    assert figures["object"] == "support.analytics"
    assert (figures["conversations"], figures["open"], figures["closed"]) == (2, 1, 1)
    assert (figures["resolved_without_handoff"], figures["resolution_rate"], figures["handoff_rate"]) == (
        1,
        0.5,
        0.0,
    )
    assert (figures["csat_mean"], figures["csat_count"], figures["csat_scores"]["4"]) == (4.0, 1, 1)
    assert figures["median_first_response_s"] is None and figures["reasons"] == {}
    later = ok(agent.get("/support/analytics", params={"since": "2999-01-01T00:00:00Z"}))
    assert later["conversations"] == 0 and later["since"] == "2999-01-01T00:00:00+00:00"
    assert ok(c["zeta"].get("/support/analytics"))["conversations"] == 0


@pytest.mark.parametrize("score", [0, 6, "5", 4.5, True, None, "five"])
def test_a_bad_score_is_a_400_naming_the_field(desk, score):
    _, c = desk
    shop = c["shop"]
    (cid,) = conversations(shop, 1)
    ok(shop.post(f"/support/conversations/{cid}/close"))
    r = shop.post(f"/support/conversations/{cid}/csat", json={"score": score})
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["type"] == "invalid_request_error" and error["param"] == "score"
    assert error["message"].startswith("score: ")
    assert shop.post(f"/support/conversations/{cid}/csat", json={}).json()["error"]["param"] == "score"
    assert (
        ok(shop.post(f"/support/conversations/{cid}/csat", json={"score": 5.0}), 201)["score"] == 5
    )  # JSON's 5


def test_other_tenants_admins_and_bad_dates(desk):
    _, c = desk
    shop, zeta, agent = c["shop"], c["zeta"], c["agent"]
    (cid,) = conversations(shop, 1)
    ok(shop.post(f"/support/conversations/{cid}/close"))
    r = zeta.post(f"/support/conversations/{cid}/csat", json={"score": 5})
    assert r.status_code == 404 and r.json()["error"]["type"] == "not_found_error"
    assert shop.post("/support/conversations/sup_ffff/csat", json={"score": 5}).status_code == 404
    long = shop.post(f"/support/conversations/{cid}/csat", json={"score": 5, "comment": "x" * 2001})
    assert long.status_code == 400 and long.json()["error"]["param"] == "comment"
    assert shop.get("/support/analytics").status_code == 403  # figures are for the desk's admins
    naive = agent.get("/support/analytics", params={"since": "2026-01-01T00:00:00"})
    assert naive.status_code == 400 and "time zone" in naive.json()["error"]["message"]
    assert agent.get("/support/analytics", params={"since": "yesterday"}).status_code == 400


def test_an_agents_replies_answer_the_hand_off_then_join_the_chat(desk):
    _, c = desk
    shop, agent, zeta = c["shop"], c["agent"], c["zeta"]
    (cid,) = conversations(shop, 1)
    path = f"/support/conversations/{cid}/replies"
    not_yet = agent.post(path, json={"text": "Hello"})
    assert not_yet.status_code == 409 and not_yet.json()["error"]["code"] == "support_not_handed_off"
    handed = ok(shop.post(f"/support/conversations/{cid}/messages", json={"text": "Can I talk to a human?"}))
    review_id = handed["handoff"]["review_id"]
    assert shop.post(path, json={"text": "Hello"}).status_code == 403  # agents are admins
    assert zeta.post(path, json={"text": "Hello"}).status_code == 404
    assert agent.post(path, json={"text": "   "}).json()["error"]["param"] == "text"
    first = ok(agent.post(path, json={"text": "Hi, Ada here: mail me at ada@example.com"}), 201)
    assert first["role"] == "agent" and "ada@example.com" not in first["text"]  # stored as the policy stores
    item = ok(agent.get(f"/review/{review_id}"))
    assert item["status"] == "answered" and item["decision"]["answer"] == first["text"]
    second = ok(agent.post(path, json={"text": "Anything else?"}), 201)  # no item open: straight in
    stored = ok(shop.get(f"/support/conversations/{cid}"))["messages"]
    assert [(m["role"], m["id"]) for m in stored[-2:]] == [("agent", first["id"]), ("agent", second["id"])]
    figures = ok(agent.get("/support/analytics"))
    assert (figures["handed_off"], figures["handoff_rate"], figures["reasons"]) == (
        1,
        1.0,
        {"customer_asked": 1},
    )
