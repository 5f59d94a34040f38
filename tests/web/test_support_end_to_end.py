"""Issue 15's "Done when", in one browser test over a real server (the tiny random model, the sample desk in
examples/support, its FAQ as the tenant's knowledge base): a page of another origin embeds the chat
widget; the customer goes through the returns flow ("I am returning order A-10002", "changed mind"), the
lookup_order tool finds the order delivered 45 days ago and the flow hands off (outside_return_window);
an agent, in a second browser context, signs in to the desk view, opens the conversation from the
hand-off queue, sees the tool call in the transcript, asks for a suggested reply (the reply box gets the
suggestion, the FAQ's quote and its citations are shown; nothing is sent), writes their own reply and
sends it; the widget, polling, shows the agent's reply. axe finds nothing serious on either page."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
from playwright.sync_api import expect

from support_site import ASK_REASON, LATE, page_with_widget
from support_site import site as site  # a fixture

DESK = Path(__file__).parents[2] / "examples" / "support"
QUOTE = "You can return an item within 30 days of its delivery. Return the item for a refund and place a new order."
AGENT = "Hello Ana, we can accept it as an exception: the label is on its way."


def test_a_return_goes_from_the_widget_through_a_tool_to_an_agent_s_reply(
    serve, tiny_backend, site, open_page, tmp_path, monkeypatch
):
    from clearlm.models.embeddings import load_embedder

    monkeypatch.setenv("CLEARLM_HOME", str(tmp_path / "home"))  # the knowledge bases' folder
    server = serve(
        tiny_backend,
        embedder=load_embedder(),
        support_desk=str(DESK),
        support_origins=(site.origin,),
        default_max_tokens=4,
    )
    _, widget_key = server.state.keys.create("shop widget", tenant="acme", scope="user")
    _, agent_key = server.state.keys.create("Ada", tenant="acme", scope="admin")
    faq = {"filename": "shop-faq.md", "content": (DESK / "kb" / "shop-faq.md").read_text(encoding="utf-8")}
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {agent_key}"}) as api:
        assert api.post("/kb", json={"name": "shop-faq", "chunk_tokens": 96, "overlap": 0}).status_code == 201
        assert api.post("/kb/shop-faq/files", json={"files": [faq]}).status_code == 200

    # The customer, on the shop's page (another origin), through the flow to a hand-off.
    shop = open_page(server)
    widget = shop.tab
    widget.goto(page_with_widget(site, "index.html", server, key=widget_key, name="Ana", poll="1"))
    widget.get_by_role("button", name="Chat with support").click()
    box = widget.get_by_label("Your message")
    replies = widget.locator(".messages > li.assistant .text")
    box.fill("I am returning order A-10002")
    box.press("Enter")
    expect(replies).to_have_text([ASK_REASON], timeout=20_000)
    box.fill("changed mind")
    box.press("Enter")
    expect(replies).to_have_text([ASK_REASON, LATE], timeout=20_000)
    expect(widget.get_by_role("status")).to_have_text("A person will answer here.")
    shop.assert_accessible()

    # The agent, in a second browser context: the desk's hand-off queue, then the conversation.
    desk = open_page(server)
    tab = desk.tab
    desk.sign_in(agent_key, "/support")
    queue = tab.locator("#handoff-queue tbody tr")
    expect(queue).to_have_count(1)
    assert "Ana" in queue.first.inner_text() and "outside_return_window" in queue.first.inner_text()
    queue.first.get_by_role("link").click()
    tab.wait_for_url("**/support/conversations/sup_*")
    cid = tab.url.rsplit("/", 1)[1]
    transcript = tab.locator("#transcript > li")
    roles = ["customer", "assistant", "customer", "tool", "assistant"]
    assert [m.get_attribute("data-role") for m in transcript.all()] == roles
    call = transcript.nth(3)
    assert call.get_attribute("data-tool") == "lookup_order"
    assert json.loads(call.locator(".call-arguments").inner_text()) == {"order_number": "A-10002"}
    result = json.loads(call.locator(".call-result").inner_text())  # the flow's slot "order"
    assert (result["found"], result["days_since_delivery"], result["status"]) == (True, 45, "delivered")
    assert "(slot order)" in call.inner_text() and call.locator(".call-error").count() == 0
    desk.assert_accessible()

    # A suggested reply: in the reply box, editable, not sent; the FAQ's quote with its citations.
    reply = tab.get_by_label("Reply to the customer")
    tab.get_by_role("button", name="Suggest a reply").click()
    panel = tab.locator("#suggestion")
    expect(panel).to_be_visible()
    expect(reply).to_be_focused()
    suggested = [r for r in server.state.audit.records(tenant="acme") if r.endpoint == "support:suggest"]
    assert [r.parameters.get("answer") for r in suggested] == ["extract", None]
    draft = suggested[1].output.strip()  # the tiny model's random words
    expect(reply).to_have_value(f"{draft}\n\n{QUOTE}" if draft else QUOTE)
    notes = panel.locator("p").all_inner_texts()  # the draft was not refused: no note says so
    assert len(notes) == 2 and notes[0].endswith("Nothing was sent.") and "null" not in panel.inner_text()
    assert panel.locator("blockquote").inner_text() == (
        "You can return an item within 30 days of its delivery. [1] Return the item for a refund and place "
        "a new order. [2]"
    )
    cited = [c.inner_text() for c in panel.get_by_role("list", name="Citations").locator("li").all()]
    assert [c.split(" · ")[0] for c in cited] == ["[1] shop-faq.md", "[2] shop-faq.md"]
    assert cited[0].endswith("> Returns window") and cited[1].endswith("> Exchanges")
    expect(transcript).to_have_count(5)  # nothing was sent
    desk.assert_accessible()

    # The agent's own words, sent: the review item is answered and the widget shows them.
    reply.fill(AGENT)
    tab.get_by_role("button", name="Send reply").click()
    expect(transcript).to_have_count(6)
    assert transcript.last.get_attribute("data-role") == "agent"
    said = ["I am returning order A-10002", ASK_REASON, "changed mind", LATE, AGENT]
    expect(widget.locator(".messages > li .text")).to_have_text(said)  # polled
    expect(widget.locator(".messages > li.agent .who")).to_have_text(["Agent"])
    shop.assert_accessible()
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {agent_key}"}) as api:
        [item] = api.get("/review", params={"kind": "support_handoff", "status": "all"}).json()["data"]
        assert item["status"] == "answered" and item["decision"]["answer"] == AGENT
        assert item["payload"]["conversation_id"] == cid
    assert not shop.errors and not desk.errors, (shop.errors, desk.errors)
