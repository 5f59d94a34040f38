"""The Why? panel (static/why.js) in headless Chromium over the tiny model: a conversation made through
the conversations API, its answer opened with Why?, the heatmap, hovering and arrowing through the
generated words, an alternative token's contrastive explanation, faithfulness, cancelling a long
explanation (recorded as 499), Escape and focus, axe, and a prompt's ``<script>`` shown as text."""

from __future__ import annotations

import html
import time

import pytest
from fastapi import Depends, Request
from fastapi.responses import HTMLResponse

from clearlm.explain import progress
from clearlm.store.sessions import SignIn
from clearlm.web.pages import needs

QUESTION = "<script>window.pwned = 1</script> The Eiffel Tower is located in the city of"
SYSTEM = "You are a helpful assistant. <img src=x onerror=alert(1)>"


def fixture_page(request: Request, signin: SignIn = Depends(needs("user"))):  # noqa: B008
    """An answer as the chat page shows it (contract: article.msg[data-message-id] with a Why? button)
    and the scripts; the test wires the button as chat.js does."""
    c, m = request.query_params.get("c", ""), request.query_params.get("m", "")
    return HTMLResponse(
        f"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Why? fixture</title>
<meta name="csrf-token" content="{html.escape(signin.csrf)}"><link rel="icon" href="data:,">
<link rel="stylesheet" href="/static/app.css"><link rel="stylesheet" href="/static/why.css">
<script src="/static/app.js" defer></script><script src="/static/why.js" defer></script></head>
<body><div id="status" role="status" aria-live="polite" class="status" hidden></div>
<main id="main"><h1>Chat</h1><article class="msg" data-role="assistant" data-conversation-id="{html.escape(c)}"
data-message-id="{html.escape(m)}"><div class="msg-body">answer</div>
<div class="msg-actions"><button type="button" class="why">Why?</button></div></article></main></body></html>"""
    )


WIRE = """() => document.querySelector("button.why").addEventListener("click", (e) => {
  const article = e.target.closest("article");
  window.clearlmWhy.open({conversationId: article.dataset.conversationId, messageId: article.dataset.messageId, article});
})"""

CONVERSATION = """async ([system, question]) => {
  const conv = await clearlm.api("/v1/conversations", {method: "POST",
    body: {settings: {system_prompt: system, temperature: 1, seed: 5, max_tokens: 12}}});
  const turn = await clearlm.api(`/v1/conversations/${conv.id}/turns`, {method: "POST",
    body: {content: question, stream: false}});
  return [conv.id, turn.message.id, turn.message.content, turn.message.meta];
}"""


@pytest.fixture
def server(serve, tiny_backend):
    server = serve(tiny_backend)
    server.server.config.app.add_api_route("/why-fixture", fixture_page, include_in_schema=False)
    return server


def heat_state(tab) -> tuple[str, str]:
    row, shades = tab.eval_on_selector(
        ".why-heat", "h => [h.dataset.row, [...h.querySelectorAll('.src')].map(s => s.className).join(' ')]"
    )
    return row, shades


def wait_idle(tab) -> None:
    tab.wait_for_selector("dialog.why-panel .why-progress", state="hidden")


def wait_for(tab, condition: str, timeout: float = 120) -> None:
    """Wait until ``condition`` (a JS expression) holds or the panel shows an error (which fails); the
    machine's two cores are shared, so explanations get up to ``timeout`` seconds."""
    tab.wait_for_function(
        f"() => ({condition}) || document.querySelector('.why-notice.error')", timeout=timeout * 1000
    )
    assert not tab.locator(".why-notice.error").count(), tab.inner_text(".why-notice")
    wait_idle(tab)


def test_why_opens_a_heatmap_that_follows_the_selected_word(server, open_page, monkeypatch):
    page = open_page(server)
    tab = page.tab
    page.sign_in(next_path="/why-fixture")
    cid, mid, answer, meta = tab.evaluate(CONVERSATION, [SYSTEM, QUESTION])
    assert answer.strip() and meta["logprobs"]
    page.goto(f"/why-fixture?c={cid}&m={mid}")
    tab.evaluate(WIRE)
    tab.get_by_role("button", name="Why?").click()
    dialog = tab.get_by_role("dialog", name="Why this answer?")
    tab.wait_for_selector(".why-heat .src")
    wait_idle(tab)

    # The default method (occlusion), word level; the prompt's markup shown as text, never run
    assert tab.get_by_label("Method").input_value() == "occlusion"
    heat = tab.inner_text(".why-heat")
    assert "<script>window.pwned = 1</script>" in heat and "<img src=x onerror=alert(1)>" in heat
    assert tab.evaluate("() => window.pwned") is None
    assert tab.locator("dialog script, dialog img").count() == 0
    assert tab.locator(".why-heat [class*='pos-'], .why-heat [class*='neg-']").count() > 0
    words = tab.locator(".why-heat .src").count()

    # Hovering a generated word switches the heatmap to its row; leaving it goes back to the whole answer
    row, shades = heat_state(tab)
    assert row == "all"
    targets = tab.locator(".why-targets .tgt")
    assert targets.count() >= 2
    targets.nth(1).hover()
    row1, shades1 = heat_state(tab)
    assert row1 == "1" and shades1 != shades
    tab.mouse.move(5, 5)
    assert heat_state(tab) == (row, shades)

    # Keyboard: focus a word, arrows move the selection (one tab stop)
    targets.nth(0).focus()
    assert heat_state(tab)[0] == "0"
    tab.keyboard.press("ArrowRight")
    assert heat_state(tab)[0] == "1" and targets.nth(1).get_attribute("aria-pressed") == "true"
    assert heat_state(tab)[1] == shades1

    # Sub-word tokens on request: more pieces than words
    tab.get_by_label("Sub-word tokens").check()
    assert tab.locator(".why-heat .src").count() > words
    tab.get_by_label("Sub-word tokens").uncheck()

    # An alternative token of the selected word: the contrastive explanation "why this and not that"
    targets.nth(0).click()
    alternative = tab.locator(".why-alt").first
    alternative.wait_for()
    alt_text = alternative.locator(".why-chip").inner_text()
    alternative.click()
    wait_for(tab, "document.querySelector('.why-banner').textContent.includes('and not')")
    banner = tab.inner_text(".why-banner")
    assert alt_text in banner and "contrastive" in tab.inner_text(".why-legend")
    assert heat_state(tab)[0] == "0"  # the contrasted step's row
    tab.get_by_role("button", name="Back to the explanation").click()
    assert "occlusion" in tab.inner_text(".why-legend")

    # Faithfulness on request: the two figures next to the random floor
    tab.get_by_role("button", name="Faithfulness").click()
    wait_for(tab, "document.querySelector('.why-faith .why-comp')")
    comp = float(tab.inner_text(".why-faith .why-comp").split()[0])
    suff = float(tab.inner_text(".why-faith .why-suff").split()[0])
    assert -1 <= comp <= 1 and -1 <= suff <= 1 and "random" in tab.inner_text(".why-faith")

    page.assert_accessible()
    page.screenshot("why")

    # A long explanation (every step slowed down) shows progress and is cancelled
    real = progress.advance
    monkeypatch.setattr(progress, "advance", lambda units=1: (time.sleep(0.3), real(units))[1])
    tab.get_by_label("Method").select_option("integrated_gradients")
    tab.wait_for_function("() => Number(document.querySelector('.why-progress progress').value) > 0")
    assert "Explaining" in tab.inner_text(".why-progress")
    tab.get_by_role("button", name="Cancel").click()
    wait_idle(tab)
    assert "Cancelled" in tab.inner_text(".why-notice")
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        explained = [r for r in server.state.audit.records() if r.endpoint == "/v1/explain"]
        if explained and explained[-1].parameters["explain"]["method"] == "integrated_gradients":
            break
        time.sleep(0.1)
    assert explained[-1].status_code == 499 and explained[-1].error == "the client closed the request"
    monkeypatch.undo()

    # Escape closes the panel and the focus goes back to the Why? button
    tab.keyboard.press("Escape")
    dialog.wait_for(state="detached")
    assert tab.evaluate("() => document.activeElement.className") == "why"
    assert not page.errors
