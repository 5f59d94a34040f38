"""The governance page in headless Chromium against a real server (tiny model): an invalid policy shows the
server's message naming the key, a valid one is saved and summarised; the scan playground highlights an
e-mail address and shows it redacted; a user key cannot open the page; axe finds nothing serious."""

from __future__ import annotations

from urllib.parse import urlparse

import pytest
from playwright.sync_api import expect

EMAIL = "maria.okafor@example.com"
POLICY = """name: desk
refusal: "The desk cannot answer that."
input:
  - {scanner: pii, action: redact, entities: [EMAIL_ADDRESS]}
  - {scanner: prompt_injection, threshold: 0.8, action: block, classifier: false}
"""


def failures(page) -> list[tuple[int, str]]:
    """The responses of 400 and above the tab gets from now on, as (status, path); the browser's favicon
    request is not one of this page's."""
    seen: list[tuple[int, str]] = []
    page.tab.on("response", lambda r: r.status >= 400 and seen.append((r.status, urlparse(r.url).path)))
    return seen


def assert_clean(page, failed, expected) -> None:
    """No console error but the browser's note of each expected 4xx answer, and no other 4xx."""
    assert [f for f in failed if f[1] != "/favicon.ico"] == expected
    assert not [e for e in page.errors if not e.startswith("Failed to load resource")], page.errors


@pytest.fixture
def keyed(serve, tiny_backend, tmp_path, monkeypatch):
    monkeypatch.setenv("CLEARLM_HOME", str(tmp_path / "home"))
    server = serve(tiny_backend)
    _, admin = server.state.keys.create("alice", scope="admin")
    _, user = server.state.keys.create("bob", scope="user")
    return server, admin, user, tmp_path / "home"


def test_a_user_key_is_sent_to_sign_in(keyed, open_page):
    server, _, user, _ = keyed
    page = open_page(server)
    failed = failures(page)
    page.sign_in(user, "/chat")
    assert page.tab.get_by_role("link", name="Governance").count() == 0
    page.goto("/governance")
    page.tab.wait_for_url("**/signin?next=/governance")
    assert "needs an admin key" in page.tab.get_by_role("alert").inner_text()
    assert_clean(page, [f for f in failed if f[1] != "/chat"], [(403, "/signin")])  # /chat: another page


def test_edit_the_policy_and_scan_a_text(keyed, open_page):
    server, admin, _, home = keyed
    page = open_page(server)
    failed = failures(page)
    page.sign_in(admin, "/governance")
    tab = page.tab
    source = tab.locator("#policy-source")
    expect(source).to_contain_text("No policy is in force")
    assert not tab.locator("#policy-locked").is_visible()  # this admin may edit the server's policy

    editor = tab.get_by_label("Policy (YAML)")
    editor.fill(POLICY.replace("threshold: 0.8", "threshold: 2"))
    tab.get_by_role("button", name="Save policy").click()
    error = tab.locator("#policy-error")
    error.wait_for(state="visible")
    assert "input[1].threshold: Input should be less than or equal to 1" in error.inner_text()
    assert editor.get_attribute("aria-invalid") == "true" and not (home / "policy.yaml").exists()

    editor.fill(POLICY)
    tab.get_by_role("button", name="Save policy").click()
    error.wait_for(state="hidden")
    tab.locator("#rules-summary table.rules").first.wait_for()
    summary = tab.locator("#rules-summary").inner_text()
    assert "input[0]" in summary and "prompt_injection" in summary and "EMAIL_ADDRESS" in summary
    assert "policy.yaml" in source.inner_text() and (home / "policy.yaml").read_text() == POLICY

    tab.get_by_label("Text to scan").fill(f"Please write to {EMAIL} today.")
    tab.get_by_label("Direction").select_option("input")
    tab.get_by_role("button", name="Scan").click()
    mark = tab.locator("#scan-highlighted mark.finding.hit")
    mark.wait_for(timeout=120_000)  # the first PII scan loads spaCy
    assert mark.inner_text() == EMAIL and mark.get_attribute("data-types") == "EMAIL_ADDRESS"
    assert tab.locator("#scan-highlighted").inner_text() == f"Please write to {EMAIL} today."
    assert tab.locator("#scan-redacted").inner_text() == "Please write to <EMAIL_ADDRESS> today."
    assert tab.locator("#scan-action").inner_text() == "redact"
    assert EMAIL in tab.locator("#scan-findings").inner_text()
    page.assert_accessible()
    tab.get_by_role("heading", name="Governance").scroll_into_view_if_needed()
    page.screenshot("governance")
    assert_clean(page, failed, [(400, "/v1/policy")])  # the invalid policy
