"""The support desk's pages in headless Chromium against a real server (tiny model, the sample desk in
examples/support): an agent signs in, sees the figures and a handed-off conversation in the hand-off
queue, opens it, answers (the answer answers the review item and is stored as an ``agent`` message),
answers again (no item open: straight into the chat), hands it back, and reads the customer's history;
hostile names and messages stay text; axe finds nothing serious; a user key and another tenant get
nothing."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from playwright.sync_api import expect

DESK = Path(__file__).parents[2] / "examples" / "support"
HOSTILE = '<img src=x onerror="document.title=1">Ben'
ASK = "Can I talk to a human? <script>document.title=2</script>"


def ok(r: httpx.Response, status: int = 200) -> dict:
    assert r.status_code == status, r.text
    return r.json()


@pytest.fixture
def desk(serve, tiny_backend):
    server = serve(tiny_backend, support_desk=str(DESK), default_max_tokens=4)
    _, admin = server.state.keys.create("Ada", tenant="acme", scope="admin")
    _, user = server.state.keys.create("shop", tenant="acme", scope="user")
    headers = {"Authorization": f"Bearer {user}"}
    with httpx.Client(base_url=server.url, headers=headers, timeout=60) as shop:
        ben = ok(shop.post("/support/customers", json={"name": HOSTILE, "attributes": {"plan": "gold"}}), 201)
        first = ok(shop.post("/support/conversations", json={"customer_id": ben["id"]}), 201)["conversation"]
        handed = ok(shop.post(f"/support/conversations/{first['id']}/messages", json={"text": ASK}))
        assert handed["handoff"]["reason"] == "customer_asked"
        done = ok(shop.post("/support/conversations", json={"customer_id": ben["id"]}), 201)["conversation"]
        ok(shop.post(f"/support/conversations/{done['id']}/close"))
        ok(shop.post(f"/support/conversations/{done['id']}/csat", json={"score": 4}), 201)
    return server, admin, user, ben, first["id"], handed["handoff"]["review_id"]


def watch(page) -> list:
    failed: list = []
    page.tab.on("response", lambda r: r.status >= 400 and failed.append((r.status, r.url)))
    return failed


def test_an_agent_answers_a_handed_off_conversation_from_the_desk(desk, open_page):
    server, admin, _, ben, cid, review_id = desk
    page = open_page(server)
    failed = watch(page)
    page.sign_in(admin, "/support")
    tab = page.tab
    assert tab.title() == "Support desk · clearlm"
    tiles = {
        t.locator(".tile-label").inner_text(): t.locator(".tile-value").inner_text()
        for t in tab.locator(".tile").all()
    }
    assert tiles["Conversations"] == "2" and tiles["Hand-off rate"] == "50%"
    assert tiles["Resolved without hand-off"] == "50%" and tiles["CSAT"] == "4.0 / 5"
    assert tiles["Median first response"].endswith(" s")  # the hand-off message answered the question
    assert "customer_asked: 1" in tab.locator("#figures-title + ul + p").inner_text()
    assert tab.locator("#flows").get_by_text("returns", exact=True).count() == 1
    assert tab.locator("#tools").get_by_text("lookup_order").count() == 1
    queue = tab.locator("#handoff-queue tbody tr")
    expect(queue).to_have_count(1)
    assert queue.first.get_attribute("data-review-id") == review_id
    assert HOSTILE in queue.first.inner_text() and "customer_asked" in queue.first.inner_text()
    assert tab.locator("main img, main script").count() == 0 and tab.title() != "1"
    page.assert_accessible()
    page.screenshot("support-desk")

    queue.first.get_by_role("link").click()
    tab.wait_for_url(f"**/support/conversations/{cid}")
    transcript = tab.locator("#transcript li")
    assert [m.get_attribute("data-role") for m in transcript.all()] == ["customer", "assistant"]
    assert transcript.first.locator(".msg-text").inner_text() == ASK
    assert tab.locator("main img, main script").count() == 0
    page.assert_accessible()

    tab.get_by_role("button", name="Send reply").click()
    assert "Write the reply first" in tab.locator("#status").inner_text()
    tab.get_by_label("Reply to the customer").fill("Hello, I am Ada from the shop: how can I help?")
    tab.get_by_role("button", name="Send reply").click()
    expect(transcript).to_have_count(3)
    last = transcript.last
    assert last.get_attribute("data-role") == "agent"
    assert last.locator(".msg-text").inner_text() == "Hello, I am Ada from the shop: how can I help?"
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {admin}"}, timeout=30) as api:
        stored = ok(api.get(f"/support/conversations/{cid}"))
        assert (stored["messages"][-1]["role"], stored["messages"][-1]["text"]) == (
            "agent",
            "Hello, I am Ada from the shop: how can I help?",
        )
        item = ok(api.get(f"/review/{review_id}"))
        assert item["status"] == "answered" and item["decision"]["answer"].startswith("Hello, I am Ada")

        # No item is open now: a second reply joins the chat directly; then the hand-back.
        tab.get_by_label("Reply to the customer").fill("Your refund is on its way.")
        tab.get_by_role("button", name="Send reply").click()
        expect(transcript).to_have_count(4)
        assert [m["role"] for m in ok(api.get(f"/support/conversations/{cid}"))["messages"]][-2:] == [
            "agent",
            "agent",
        ]
        tab.get_by_role("button", name="Hand back to the assistant").click()
        expect(tab.locator("#conversation-status")).to_have_text("open")
        assert tab.locator("#reply-form").count() == 0
        assert transcript.last.get_attribute("data-role") == "system"
        assert ok(api.get(f"/support/conversations/{cid}"))["status"] == "open"

    tab.get_by_role("link", name=HOSTILE).click()
    tab.wait_for_url(f"**/support/customers/{ben['id']}")
    assert tab.locator("h1").inner_text() == HOSTILE
    assert tab.locator("section.conversation").count() == 2
    assert "CSAT 4 / 5" in tab.locator("#support-customer").inner_text()
    assert "gold" in tab.locator(".facts").inner_text()
    assert tab.locator("main img, main script").count() == 0
    page.assert_accessible()
    assert failed == [] and not page.errors, (failed, page.errors)


def test_the_desk_needs_an_admin_of_the_same_tenant(desk, open_page):
    server, _, user, ben, cid, _ = desk
    page = open_page(server)
    page.sign_in(user, "/chat")
    response = page.goto("/support")
    assert "/signin" in page.tab.url and response.status == 403
    assert page.tab.get_by_role("link", name="Support desk").count() == 0
    _, other = server.state.keys.create("zeta", tenant="zeta", scope="admin")
    page = open_page(server)
    page.sign_in(other, "/support")
    assert page.tab.locator("#handoff-queue").count() == 0 and "Nobody waits" in page.tab.inner_text("main")
    for path in (f"/support/conversations/{cid}", f"/support/customers/{ben['id']}"):
        response = page.goto(path)
        assert response.status == 404 and "No such" in page.tab.locator("h1").inner_text()
