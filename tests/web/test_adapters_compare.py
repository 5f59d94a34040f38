"""/adapters/NAME/compare in headless Chromium over a server of the tiny base with two adapters: the form, the
two heatmaps on one scale, picking a generated token, the moved tokens outlined in both and listed, axe,
a prompt's markup shown as text, one adapter compared with the other, and the page of an adapter the server
does not serve."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from adapter_fixtures import tiny_base, write_adapter

PROMPT = "<b>bold</b> The Eiffel Tower is located in"


@pytest.fixture
def server(serve, tiny_tokenizer, tmp_path, monkeypatch):
    from clearlm.tune.router import AdapterRouter

    monkeypatch.setenv("CLEARLM_HOME", str(tmp_path / "home"))
    write_adapter(tiny_tokenizer, "apt", b_scale=0.3)
    write_adapter(tiny_tokenizer, "other", b_scale=0.3, seed=2)
    return serve(AdapterRouter(tiny_base(tiny_tokenizer), ["apt", "other"]), model="tiny-random-qwen2")


def test_compare_page(server, open_page):
    page = open_page(server)
    tab = page.tab
    page.sign_in(next_path="/adapters/apt/compare")
    tab.get_by_label("Prompt", exact=True).fill(PROMPT)
    tab.get_by_label("Send as a chat message").uncheck()
    tab.get_by_label("Method").select_option("input_x_gradient")
    tab.get_by_label("Tokens to generate").fill("4")
    tab.get_by_role("button", name="Compare").click()
    tab.wait_for_selector("#compare-result:not([hidden])", timeout=120_000)
    assert tab.get_attribute("#compare-page", "aria-busy") == "false"

    base = tab.locator("#compare-base .src")
    tuned = tab.locator("#compare-tuned .src")
    assert base.count() == tuned.count() > 5
    assert base.all_inner_texts() == tuned.all_inner_texts()
    assert "<b>" in "".join(base.all_inner_texts())  # markup is text
    assert tab.evaluate("window.document.querySelector('#compare-base b')") is None
    # every prompt token shaded on one scale (the largest share of either model gets the darkest bin)
    classes = tab.eval_on_selector_all(".compare-heat .src", "spans => spans.map(s => s.className)")
    assert all(any(c.startswith(("pos-", "neg-")) for c in cls.split()) for cls in classes)
    assert any(c.endswith("-9") for cls in classes for c in cls.split())
    # the moved tokens: outlined in both heatmaps, listed largest first
    rows = tab.locator("#compare-moved tbody tr")
    assert rows.count() == 5  # the page asks for the top 5
    assert (
        tab.locator("#compare-base .src.moved").count()
        == 5
        == tab.locator("#compare-tuned .src.moved").count()
    )
    first = rows.nth(0).locator("td").all_inner_texts()
    assert first[0].strip() and float(first[3]) != 0

    # a generated token: its row under both models, its distance
    targets = tab.locator("#compare-targets button")
    assert targets.count() >= 1
    assert tab.get_attribute("#compare-base", "data-row") == "all"
    targets.nth(0).click()
    assert (
        tab.get_attribute("#compare-base", "data-row")
        == "0"
        == tab.get_attribute("#compare-tuned", "data-row")
    )
    assert targets.nth(0).get_attribute("aria-pressed") == "true"
    assert "distance" in tab.inner_text("#compare-step")
    page.assert_accessible()
    assert tab.inner_text("#compare-base-heading") == "Base tiny-random-qwen2"

    # compared with the other adapter: the left side is that adapter's, named so
    tab.get_by_label("Compare with").select_option("other")
    tab.get_by_role("button", name="Compare").click()
    expect(tab.locator("#compare-base-heading")).to_have_text(
        "Reference tiny-random-qwen2:other", timeout=120_000
    )
    assert tab.locator("#compare-moved thead th").nth(1).inner_text() == "Reference share"
    tab.locator("#compare-targets button").nth(0).click()
    assert "under the adapter other" in tab.inner_text("#compare-step")
    comparisons = [r for r in server.state.audit.records() if r.endpoint == "/v1/adapters/apt/compare"]
    assert [r.parameters["compare"]["against"] for r in comparisons] == [None, "other"]
    page.assert_accessible()
    assert not page.errors, page.errors

    page.goto("/adapters/nope/compare")
    alert = tab.locator("#compare-not-served")
    assert "does not serve the adapter nope" in " ".join(alert.inner_text().split())
    assert tab.locator("#compare-form").count() == 0
