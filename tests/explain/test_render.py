"""Tests of the terminal, HTML and PNG renderers on a hand-built attribution result."""

from __future__ import annotations

import json
from dataclasses import replace
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console

from clearlm.explain.render import render_html, render_png, render_terminal, write_html
from clearlm.explain.render.png import _figure
from clearlm.explain.result import Attribution

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

# (token, role, message, special): 2 special tokens, 2 template tokens, a system and a user message.
PROMPT = [
    ("<|im_start|>", None, -1, True),
    ("system\n", None, -1, False),
    ("Be", "system", 0, False),
    (" brief.", "system", 0, False),
    ("<|im_end|>", None, -1, True),
    ("\nuser\n", None, -1, False),
    ("Capital", "user", 1, False),
    (" of", "user", 1, False),
    (" France", "user", 1, False),
    (" </script>", "user", 1, False),
    (" [bold]", "user", 1, False),
]
TARGETS = [" Paris", " is", " lovely", "\n"]


def make_result(method: str = "integrated_gradients") -> Attribution:
    """11 prompt tokens + 3 generated sources (14 sources), 4 targets, NaN where not causally earlier."""
    n_prompt, n_t = len(PROMPT), len(TARGETS)
    sources = [p[0] for p in PROMPT] + TARGETS[:-1]
    n_s = len(sources)
    rng = np.random.default_rng(0)
    scores = rng.uniform(-0.1, 0.1, size=(n_t, n_s)).astype(np.float32)
    scores[0, 8] = 0.9  # " France" -> " Paris"
    scores[1, 11] = -0.8  # " Paris" -> " is" (negative)
    scores[2, 10] = 0.7  # " [bold]" -> " lovely"
    scores[3, 9] = 0.6  # " </script>" -> "\n"
    for t in range(n_t):
        scores[t, n_prompt + t :] = np.nan
    if method == "saliency":
        scores = np.abs(scores)
    return Attribution(
        method=method,
        model="tiny-test-model",
        source_tokens=sources,
        target_tokens=list(TARGETS),
        scores=scores,
        target_probs=np.array([0.91, 0.55, 0.123, 0.4], dtype=np.float32),
        source_roles=[p[1] for p in PROMPT] + ["assistant"] * (n_t - 1),
        source_message=[p[2] for p in PROMPT] + [2] * (n_t - 1),
        source_special=[p[3] for p in PROMPT] + [False] * (n_t - 1),
        n_prompt=n_prompt,
        source_spans=[(i, i + 1) for i in range(n_s)],
        params={"steps": 32, "baseline": "pad"},
        completeness_gap=np.array([0.01, 0.032, 0.02, 0.005]) if method == "integrated_gradients" else None,
    )


def empty_result() -> Attribution:
    """Nothing visible: two special prompt tokens, one target."""
    return Attribution(
        method="saliency",
        model="m",
        source_tokens=["<s>", "<|user|>"],
        target_tokens=["x"],
        scores=np.array([[np.nan, np.nan]]),
        target_probs=np.array([0.5]),
        source_roles=[None, None],
        source_message=[-1, -1],
        source_special=[True, True],
        n_prompt=2,
        source_spans=[(0, 1), (1, 2)],
    )


# ---- terminal -------------------------------------------------------------------------------------------


def _terminal_text(result: Attribution, **kw) -> str:
    console = Console(record=True, width=120)
    render_terminal(result, console, **kw)
    return console.export_text()


@pytest.mark.parametrize("method", ["integrated_gradients", "saliency"])
def test_terminal_shows_targets_and_top_sources(method: str) -> None:
    result = make_result(method)
    text = _terminal_text(result)
    assert result.method in text and "tiny-test-model" in text
    for tok in (" Paris", " is", " lovely"):
        assert tok.strip() in text
    assert "⏎" in text  # the newline target, shown on one line
    assert "[bold]" in text and "</script>" in text  # taken literally, not as markup
    assert "France (+0.9)" in text or "France (0.9)" in text
    assert "<|im_start|>" not in text  # special tokens are hidden by default
    if method == "integrated_gradients":
        assert "max completeness gap 3.2%" in text
        assert "Paris (-0.8)" in text
    assert "Attribution matrix" in text
    assert "<|im_start|>" in _terminal_text(result, show_template=True)


def test_terminal_survives_nan_rows_and_empty_visible_set() -> None:
    result = make_result()
    scores = result.scores.copy()
    scores[1, :] = np.nan
    text = _terminal_text(result.with_scores(scores), top_k=3)
    assert "lovely" in text
    text = _terminal_text(empty_result())
    assert "no visible prompt tokens" in text
    with pytest.raises(ValueError):
        _terminal_text(result, top_k=-1)


# ---- html -----------------------------------------------------------------------------------------------


class _Scripts(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.scripts: list[tuple[dict, str]] = []
        self._attrs: dict | None = None

    def handle_starttag(self, tag, attrs):
        if tag == "script":
            self._attrs = dict(attrs)
            self.scripts.append((self._attrs, ""))

    def handle_data(self, data):
        if self._attrs is not None:
            attrs, text = self.scripts[-1]
            self.scripts[-1] = (attrs, text + data)

    def handle_endtag(self, tag):
        if tag == "script":
            self._attrs = None


def test_html_embeds_result_losslessly() -> None:
    result = make_result()
    page = render_html(result, title="A <title> & more")
    assert "http://" not in page and "https://" not in page
    assert "A &lt;title&gt; &amp; more" in page
    parser = _Scripts()
    parser.feed(page)
    by_id = {attrs.get("id"): text for attrs, text in parser.scripts}
    assert set(by_id) == {"clearlm-data", "clearlm-view", None}
    assert "</script>" not in by_id["clearlm-data"]
    assert Attribution.from_dict(json.loads(by_id["clearlm-data"])).equals(result)
    view = json.loads(by_id["clearlm-view"])
    assert view["target_source"] == [11, 12, 13, -1]
    assert view["visible"] == result.visible_sources().tolist()
    assert "(function ()" in by_id[None]  # the app script came through whole


def test_write_html_is_atomic(tmp_path: Path) -> None:
    out = write_html(make_result(), tmp_path / "a.html", show_template=True)
    assert out.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert [p.name for p in tmp_path.iterdir()] == ["a.html"]


def test_html_in_headless_chromium(tmp_path: Path) -> None:
    if not CHROMIUM.exists():
        pytest.skip("needs Chromium at /usr/bin/chromium for the real-browser check (CI installs it)")
    sync_api = pytest.importorskip("playwright.sync_api")
    result = make_result()
    path = write_html(result, tmp_path / "attribution.html")
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(path.as_uri())
            sources = page.locator("#text .tok.src")
            texts = sources.all_text_contents()
            assert texts[:3] == ["Be", " brief.", "Capital"]  # specials and template hidden
            assert " </script>" in texts and " [bold]" in texts
            assert (
                page.locator("#text")
                .inner_text()
                .startswith("Be brief.\nCapital of France </script> [bold]\n Paris is")
            )
            assert page.locator("#text .tok.src").first.is_visible()

            page.locator('.tok.tgt[data-target="1"]').hover()
            top = page.locator("#detail ol.top li .chip").first.text_content()
            assert top == result.source_tokens[result.top_sources(1)[0][0]] == " Paris"
            assert "0.550" in page.locator("#detail").inner_text()
            assert "active" in page.locator('.tok.tgt[data-target="1"]').get_attribute("class")
            shaded = page.eval_on_selector_all(
                "#text .src", "els => els.map(e => e.style.backgroundColor).filter(c => c !== '')"
            )
            assert shaded and any(c.startswith("rgba(31, 100, 200") for c in shaded)  # " Paris" is blue

            assert page.locator("#matrix tbody tr").count() == result.n_targets
            assert page.locator("#matrix thead th").count() == len(result.visible_sources()) + 1
            assert "3.2%" in page.locator("#legend").inner_text()
            page.screenshot(path="/tmp/clearlm_html.png", full_page=True)
            assert not errors
        finally:
            browser.close()


# ---- png ------------------------------------------------------------------------------------------------


def test_png_heatmap(tmp_path: Path) -> None:
    result = make_result()
    out = render_png(result, tmp_path / "heat.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in tmp_path.iterdir()] == ["heat.png"]
    ax = _figure(result).axes[0]
    assert len(ax.get_xticklabels()) == len(result.visible_sources())
    assert len(ax.get_yticklabels()) == result.n_targets
    assert len(_figure(result, show_template=True).axes[0].get_xticklabels()) == result.n_sources


def test_png_truncates_and_handles_empty(tmp_path: Path) -> None:
    result = make_result("saliency")
    ax = _figure(result, max_sources=4).axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["' [bold]'", "' Paris'", "' is'", "' lovely'"]
    assert "last 4 of 10" in ax.get_title()
    assert render_png(empty_result(), tmp_path / "e.png").read_bytes()[:4] == b"\x89PNG"
    dollar = replace(result, source_tokens=["$x"] + result.source_tokens[1:])
    render_png(dollar, tmp_path / "d.png", show_template=True)
