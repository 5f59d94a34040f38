"""The review queue page in headless Chromium against a real server (tiny model, a policy that escalates
"refund"): an escalated chat shows up with its request, answer and findings as text; a reviewer answers it
with the keyboard-reachable form; a hostile prompt renders as text; axe finds nothing serious."""

from __future__ import annotations

import httpx
import pytest
from playwright.sync_api import expect

POLICY = "name: desk\ninput:\n  - {scanner: toxicity, words: [refund], action: escalate}\n"
XSS = '<img src=x onerror="document.title=1"><script>document.title=2</script> refund now'


def watch(page) -> list:
    """The page's own responses of 400 and above from now on, as (status, URL)."""
    failed: list = []
    page.tab.on("response", lambda r: r.status >= 400 and failed.append((r.status, r.url)))
    return failed


@pytest.fixture
def desk(serve, tiny_backend, tmp_path):
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY)
    server = serve(tiny_backend, policy=str(policy))
    _, admin = server.state.keys.create("reviewer", tenant="acme", scope="admin")
    _, user = server.state.keys.create("desk", tenant="acme", scope="user")
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {user}"}, timeout=60) as c:
        for text in ("I want a refund for order 17", XSS):
            body = {
                "model": "tiny-random-qwen2",
                "messages": [{"role": "user", "content": text}],
                "max_tokens": 3,
            }
            assert c.post("/chat/completions", json=body).status_code == 200
    return server, admin


def test_a_reviewer_answers_an_item_and_a_hostile_prompt_stays_text(desk, open_page):
    server, admin = desk
    page = open_page(server)
    failed = watch(page)
    page.sign_in(admin, "/review")
    tab = page.tab
    items = tab.locator("article.review-item")
    items.first.wait_for()
    assert items.count() == 2
    first, hostile = items.nth(0), items.nth(1)
    assert first.get_by_role("heading", level=2).inner_text() == "I want a refund for order 17"
    assert "toxicity → escalate" in first.locator(".findings").inner_text()
    assert "user" in first.locator(".messages").inner_text()
    # The hostile prompt: its markup is shown as text, nothing of it ran or became an element.
    assert hostile.get_by_role("heading", level=2).inner_text() == XSS
    assert tab.locator("#review-items img, #review-items script").count() == 0
    assert tab.title() == "Review queue · clearlm"
    page.assert_accessible()
    page.screenshot("review")

    # Answer the first item: an empty answer is refused on the page, a written one is sent.
    first.get_by_role("button", name="Answer").click()
    assert "Write the answer first" in tab.locator("#status").inner_text()
    first.get_by_label("Answer").fill("Your refund for order 17 is on its way.")
    first.get_by_label("Note").fill("checked the order")
    first.get_by_role("button", name="Answer").click()
    expect(tab.locator("article.review-item")).to_have_count(1)
    # Dismiss the hostile one with the keyboard.
    tab.locator("article.review-item").first.get_by_role("button", name="Dismiss").focus()
    tab.keyboard.press("Enter")
    tab.get_by_text("Nothing waits for review.").wait_for()

    tab.get_by_label("Show").select_option("decided")
    decided = tab.locator("article.review-item")
    expect(decided).to_have_count(2)
    answered = decided.filter(has_text="I want a refund for order 17")
    assert "Your refund for order 17 is on its way." in answered.locator(".decided").inner_text()
    assert "answered" in answered.locator(".decided").inner_text()
    page.assert_accessible()
    item = next(
        i for i in server.state.audit.records() if i.endpoint.endswith("/decision") and i.status_code == 200
    )
    assert (
        item.output["answer"] == "Your refund for order 17 is on its way."
        and item.output["note"] == "checked the order"
    )
    assert failed == [] and not page.errors, (failed, page.errors)


def test_the_review_page_needs_an_admin(desk, open_page, serve):
    server, _ = desk
    _, user = server.state.keys.create("u2", tenant="acme", scope="user")
    page = open_page(server)
    page.sign_in(user, "/chat")
    response = page.goto("/review")
    assert "/signin" in page.tab.url and response.status == 403  # signed in, but not as an admin
    assert page.tab.locator("#review-page").count() == 0
    assert page.tab.get_by_role("link", name="Review queue").count() == 0
