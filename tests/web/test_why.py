"""The Why? panel (static/why.js) in headless Chromium over the tiny model: a conversation made through
the conversations API, its answer opened with Why? on the chat page, the heatmap, hovering and arrowing through the
generated words, an alternative token's contrastive explanation, faithfulness, cancelling a long
explanation (recorded as 499), Escape and focus, axe, and a prompt's ``<script>`` shown as text."""

from __future__ import annotations

import time

import pytest

from clearlm.explain import progress

QUESTION = "<script>window.pwned = 1</script> The Eiffel Tower is located in the city of"
SYSTEM = "You are a helpful assistant. <img src=x onerror=alert(1)>"

CONVERSATION = """async ([system, question]) => {
  const conv = await clearlm.api("/v1/conversations", {method: "POST",
    body: {settings: {system_prompt: system, temperature: 1, seed: 5, max_tokens: 12}}});
  const turn = await clearlm.api(`/v1/conversations/${conv.id}/turns`, {method: "POST",
    body: {content: question, stream: false}});
  return [conv.id, turn.message.id, turn.message.content, turn.message.meta];
}"""


@pytest.fixture
def server(serve, tiny_backend):
    return serve(tiny_backend)


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
    page.sign_in(next_path="/chat")
    cid, mid, answer, meta = tab.evaluate(CONVERSATION, [SYSTEM, QUESTION])
    assert answer.strip() and meta["logprobs"]
    page.goto(f"/chat/{cid}")
    why = tab.locator(f"article.msg[data-message-id='{mid}'] button.why")
    why.click()
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

    # Integrated gradients: its completeness gap is shown
    tab.get_by_label("Method").select_option("integrated_gradients")
    wait_for(tab, "document.querySelector('.why-legend').textContent.includes('integrated_gradients')")
    assert "completeness gap: at most" in tab.inner_text(".why-legend")
    assert "Completeness gap:" in tab.inner_text(".why-detail")

    # A long explanation (every step slowed down) shows progress and is cancelled
    real = progress.advance
    monkeypatch.setattr(progress, "advance", lambda units=1: (time.sleep(1), real(units))[1])
    tab.get_by_label("Method").select_option("occlusion")
    tab.wait_for_function("() => Number(document.querySelector('.why-progress progress').value) > 0")
    assert "Explaining" in tab.inner_text(".why-progress")
    tab.get_by_role("button", name="Cancel").click()
    wait_idle(tab)
    assert "Cancelled" in tab.inner_text(".why-notice")
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        last = [r for r in server.state.audit.records() if r.endpoint == "/v1/explain"][-1]
        if last.parameters["explain"]["method"] == "occlusion":
            break
        time.sleep(0.1)
    assert last.status_code == 499 and last.error == "the client closed the request"
    monkeypatch.undo()

    # Escape closes the panel and the focus goes back to the Why? button
    tab.keyboard.press("Escape")
    dialog.wait_for(state="detached")
    assert why.evaluate("b => b === document.activeElement")
    assert not page.errors
