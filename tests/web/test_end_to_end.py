"""The web UI end to end, as a newcomer uses it: headless Chromium against ``clearlm serve``'s app on
loopback with the real default model (qwen2.5-0.5b-instruct) and the packaged embedder. One journey:
sign in with a key, chat with streaming, stop an answer, ask Why? and hover a word, click an alternative
token for the contrastive explanation, upload a file to a knowledge base and get a cited answer whose
citation opens its passage, answer an escalated request from the review queue (the answer joins the
conversation), verify the audit chain, create and revoke a key. Every page it visits is checked by
axe-core and has no console error."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from clearlm.models import DEFAULT_MODEL

pytestmark = pytest.mark.integration
POLICY = "name: desk\ninput:\n  - {scanner: toxicity, words: [refund], action: escalate}\n"
HANDBOOK = (
    "# Office handbook\n\nThe office Wi-Fi network is called Harbor and its password is tulip-42.\n\n"
    "Visitors sign in at the front desk on the ground floor.\n"
)
MINUTE = 60_000


@pytest.fixture(scope="module")
def embedder():
    from clearlm.models.embeddings import load_embedder

    return load_embedder()


STORED_ANSWERS = "article.msg[data-role='assistant']:not([data-message-id='pending'])"


def send(tab, text: str) -> int:
    """Send a message; returns how many stored answers the page showed before."""
    before = tab.locator(STORED_ANSWERS).count()
    tab.get_by_label("Message", exact=True).fill(text)
    tab.get_by_label("Message", exact=True).press("Enter")
    return before


def last_answer(tab):
    return tab.locator("article.msg[data-role='assistant']").last


def settle(tab, before: int) -> None:
    """Wait until the answer to the message just sent is stored and shown, and the composer is free."""
    expect(tab.locator(STORED_ANSWERS)).to_have_count(before + 1, timeout=5 * MINUTE)
    expect(tab.locator("#send")).to_be_enabled(timeout=MINUTE)


def test_a_newcomer_does_it_all_in_the_browser(
    serve, default_backend, embedder, open_page, tmp_path, monkeypatch
):
    monkeypatch.setenv("CLEARLM_HOME", str(tmp_path / "home"))  # knowledge bases and uploads (models: loaded)
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY)
    server = serve(default_backend, embedder=embedder, policy=str(policy))
    _, secret = server.state.keys.create("Ada (admin)", scope="admin")
    page = open_page(server)
    tab = page.tab
    page.sign_in(secret, "/chat")
    expect(tab.get_by_role("navigation", name="Main")).to_contain_text("Review queue")

    # Chat: greedy, short answers; the answer streams in and carries the disclosure mark
    tab.locator("#settings summary").click()
    tab.get_by_label("Temperature (0 to 2)").fill("0")
    tab.get_by_label("Max tokens (empty: the server's default)").fill("12")
    tab.get_by_role("button", name="Save settings").click()
    before = send(tab, "What is the capital of France? Answer in one word.")
    settle(tab, before)
    answer = last_answer(tab)
    expect(answer.locator(".msg-body")).to_contain_text("Paris")
    expect(answer).to_contain_text(f"AI-generated · {DEFAULT_MODEL}")
    page.assert_accessible()
    page.screenshot("e2e-chat")

    # Why?: the heatmap over the conversation; hovering a generated word shows its own row
    answer.get_by_role("button", name="Why?").click()
    tab.get_by_role("dialog", name="Why this answer?").wait_for()
    tab.locator(".why-heat .src").first.wait_for(timeout=3 * MINUTE)
    expect(tab.locator("dialog.why-panel .why-progress")).to_be_hidden(timeout=3 * MINUTE)
    assert "capital of France" in tab.inner_text(".why-heat")
    targets = tab.locator(".why-targets .tgt")
    assert "Paris" in targets.all_inner_texts()[0]
    before = tab.eval_on_selector(".why-heat", "h => h.dataset.row")
    targets.first.hover()
    assert before == "all" and tab.eval_on_selector(".why-heat", "h => h.dataset.row") == "0"
    # ... and an alternative to "Paris" asks why this and not that
    targets.first.click()
    alternative = tab.locator(".why-alt").first
    alternative.wait_for()
    other = alternative.locator(".why-chip").inner_text()
    alternative.click()
    expect(tab.locator(".why-banner")).to_contain_text("and not", timeout=3 * MINUTE)
    assert other in tab.inner_text(".why-banner") and not tab.locator(".why-notice.error").count()
    page.assert_accessible()
    page.screenshot("e2e-why")
    tab.keyboard.press("Escape")

    # Stop: a long answer stopped mid-stream keeps what was written, marked stopped
    if not tab.locator("#settings[open]").count():
        tab.locator("#settings summary").click()
    tab.get_by_label("Max tokens (empty: the server's default)").fill("200")
    tab.get_by_role("button", name="Save settings").click()
    before = send(tab, "Write a long story about a lighthouse keeper.")
    expect(last_answer(tab).locator(".msg-body")).not_to_be_empty(timeout=3 * MINUTE)
    tab.get_by_role("button", name="Stop").click()
    settle(tab, before)
    expect(last_answer(tab)).to_have_attribute("data-status", "stopped")
    stopped = last_answer(tab).locator(".msg-body").inner_text()
    assert 0 < len(stopped.split()) < 150

    # Knowledge: a knowledge base from an uploaded file
    tab.get_by_role("link", name="Knowledge").click()
    tab.get_by_label("Name").fill("office")
    tab.get_by_role("button", name="Create").click()
    tab.wait_for_url("**/knowledge/office")
    handbook = tmp_path / "handbook.md"
    handbook.write_text(HANDBOOK)
    tab.locator("#file-input").set_input_files(str(handbook))
    tab.locator("#files tr[data-file='handbook.md']").wait_for(timeout=2 * MINUTE)
    page.assert_accessible()

    # ... and a chat answered from it: the citation opens its passage with the cited span marked
    tab.get_by_role("link", name="Chat").click()
    tab.get_by_role("button", name="New chat").click()
    tab.locator("#settings summary").click()
    expect(tab.locator("#set-kb option[value='office']")).to_have_count(1)
    tab.get_by_label("Knowledge base").select_option("office")
    tab.get_by_label("Temperature (0 to 2)").fill("0")
    tab.get_by_label("Max tokens (empty: the server's default)").fill("40")
    tab.get_by_role("button", name="Save settings").click()
    before = send(tab, "What is the password of the office Wi-Fi?")
    settle(tab, before)
    answer = last_answer(tab)
    expect(answer.locator(".msg-body")).to_contain_text("tulip-42")
    cite = answer.locator("button.cite").first
    cite.click()
    dialog = tab.get_by_role("dialog").filter(has_text="Passage [1]")
    quoted = dialog.locator("mark.cited-span").inner_text()  # the passage's words the answer quotes
    assert len(quoted.strip()) >= 8 and quoted.strip() in answer.locator(".msg-body").inner_text()
    page.assert_accessible()
    page.screenshot("e2e-citation")
    tab.keyboard.press("Escape")

    # Review queue: the policy escalates a refund request; a person answers it, and the answer joins the chat
    tab.get_by_role("button", name="New chat").click()
    before = send(tab, "I want a refund for my order.")
    settle(tab, before)
    chat_url = tab.url
    tab.get_by_role("link", name="Review queue").click()
    item = tab.locator("article.review-item").first
    expect(item.get_by_role("heading", level=2)).to_have_text("I want a refund for my order.")
    item.get_by_label("Answer").fill("A colleague will refund order 17 today.")
    item.get_by_role("button", name="Answer").click()
    tab.get_by_text("Nothing waits for review.").wait_for()
    tab.goto(chat_url)
    expect(last_answer(tab)).to_contain_text("A colleague will refund order 17 today.")

    # Audit: every request above is in the chain, and it verifies
    tab.get_by_role("link", name="Audit log").click()
    tab.get_by_role("button", name="Verify chain").click()
    expect(tab.get_by_text(re.compile("Chain verified"))).to_be_visible(timeout=MINUTE)
    page.assert_accessible()

    # Keys: a new key's secret is shown once; revoked, it no longer works
    tab.get_by_role("link", name="API keys").click()
    tab.get_by_label("Name").fill("support bot")
    tab.get_by_role("button", name="Create key").click()
    dialog = tab.get_by_role("dialog", name="Your new key")
    new_secret = dialog.get_by_label("Secret of").input_value()
    assert new_secret.startswith("sk-clearlm-")
    dialog.get_by_role("button", name="I have copied it").click()
    row = tab.locator("#keys-body tr", has_text="support bot")
    row.get_by_role("button", name="Revoke support bot").click()
    tab.get_by_role("dialog", name="Revoke this key?").get_by_role("button", name="Revoke").click()
    expect(row.locator(".badge.bad")).to_have_count(1)
    assert server.state.keys.verify(new_secret) is None
    assert not page.errors, page.errors
