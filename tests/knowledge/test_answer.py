"""Cited answers on the tiny model: the prompt, citation parsing and mapping, flags, the JSON form, the page."""

from __future__ import annotations

import json
import math
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

import clearlm.knowledge.answer as answer_module
from clearlm.errors import BackendUnavailableError, InvalidInputError
from clearlm.explain.context import ContextAttribution
from clearlm.knowledge.answer import (
    EXAMPLE_ANSWER,
    INSTRUCTION,
    SYSTEM_PROMPT,
    CitedAnswer,
    _outside,
    answer,
    cite,
    parse_citations,
    passage_sources,
    support,
    token_char_spans,
)
from clearlm.knowledge.answer_html import render_html, write_html
from clearlm.knowledge.passage import Passage

CHROMIUM = Path("/usr/bin/chromium")


@pytest.fixture(scope="module")
def tiny(tiny_tokenizer):
    """The tiny random model with room for the answer prompt: its byte-level vocabulary spends ~700
    tokens on it, and its rotary positions extend past the configured 256."""
    from clearlm.models.backends.torch_backend import TorchBackend
    from conftest import make_model

    backend = TorchBackend(make_model(tiny_tokenizer), tiny_tokenizer, "tiny-random-qwen2")
    backend.context_length = 2048
    return backend


PASSAGES = [
    Passage(
        "c1",
        "The Eiffel Tower is located in the city of Paris, France.",
        "docs/paris.md",
        "Paris",
        ("Cities", "Paris"),
        120,
        177,
        0.9,
        {"vector": 1},
    ),
    Passage(
        "c2",
        "The capital of Italy is Rome. The capital of Spain is Madrid.",
        "docs/south.md",
        "South",
        (),
        0,
        61,
        0.5,
        {"bm25": 2},
    ),
    Passage(
        "c3",
        "Why is the sky blue? Because of <Rayleigh> scattering & sunlight.",
        "docs/sky.md",
        "",
        ("Physics",),
        40,
        105,
    ),
]


def attribution(weights, gradient=None) -> ContextAttribution:
    """A hand-made attribution over len(weights) sources (for flags and rendering, no model needed)."""
    n = len(weights)
    return ContextAttribution(
        model="tiny",
        sources=[f"source {i}" for i in range(n)],
        response="x",
        response_ids=[1],
        counted=[True],
        masks=np.ones((2, n), dtype=bool),
        logprobs=np.zeros((2, 1)),
        scores=np.zeros(2),
        weights=np.asarray(weights, dtype=float),
        intercept=0.1,
        lds=0.8,
        r2=0.5,
        exact=False,
        gradient=None if gradient is None else np.asarray(gradient, dtype=float),
        gradient_shares=None if gradient is None else np.asarray(gradient) / np.abs(gradient).sum(),
        params={"seed": 0},
    )


def hand_made(text: str, weights=(0.2, 2.5, 1.4)) -> CitedAnswer:
    citations, unknown = parse_citations(text, len(PASSAGES))
    attr = attribution(weights, gradient=[0.1, -0.3, 0.6])
    return CitedAnswer(
        question="Where is the <Eiffel> Tower?",
        text=text,
        model="tiny",
        finish_reason="stop",
        passages=list(PASSAGES),
        citations=citations,
        unknown_citations=unknown,
        support=support(len(PASSAGES), citations, attr, 1.0),
        attribution=attr,
        relied_threshold=1.0,
        seconds={"generate": 1.5, "attribute": 2.25},
    )


# ---- citations -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "numbers", "unknown"),
    [
        ("Paris [1].", [1], []),
        ("Rome [1, 2] and more [3].", [1, 2, 3], []),
        ("Both [1][3].", [1, 3], []),
        ("All [1-3].", [1, 2, 3], []),
        ("All [1–2; 3].", [1, 2, 3], []),
        ("See [2] and [7], and [0].", [2, 7, 0], [7, 0]),
        ("Twice [2] [2].", [2, 2], []),
        ("Not citations: [a], [], [1.5], x[i].", [], []),
    ],
)
def test_citations_are_parsed_and_mapped(text, numbers, unknown):
    citations, missing = parse_citations(text, 3)
    assert [c.number for c in citations] == numbers
    assert missing == unknown
    for c in citations:
        assert text[c.start] == "[" and text[c.end - 1] == "]"
        assert c.passage == (c.number - 1 if 1 <= c.number <= 3 else None)


def test_a_bracket_citing_several_passages_gives_one_citation_each_on_the_same_span():
    citations, _ = parse_citations("Yes [1, 3].", 3)
    assert [(c.number, c.passage) for c in citations] == [(1, 0), (3, 2)]
    assert {(c.start, c.end) for c in citations} == {(4, 10)}


def test_flags_follow_the_stated_threshold():
    citations, _ = parse_citations("A [1]. B [2].", 3)
    rows = support(3, citations, attribution([0.2, 2.5, 1.4]), relied_threshold=1.0)
    assert [(s.cited, s.relied, s.flag) for s in rows] == [
        (True, False, "cited_not_relied"),
        (True, True, None),
        (False, True, "relied_not_cited"),
    ]
    assert rows[1].weight == 2.5 and math.isnan(rows[1].gradient)
    assert hand_made("A [1].", weights=(0.2, 2.5, 1.4)).top_attributed() == 2
    assert hand_made("A [1].", weights=(-0.2, 0.0, -1.4)).top_attributed() is None  # nothing relied on
    assert hand_made("A [1].", weights=(0.5, 0.5, 0.1)).top_attributed() is None  # a tie
    rows = support(3, citations, None)
    assert [(s.cited, s.relied, s.flag) for s in rows] == [
        (True, None, None),
        (True, None, None),
        (False, None, None),
    ]


# ---- the prompt ----------------------------------------------------------------------------------------


def test_prompt_numbers_passages_and_keeps_numbers_when_one_is_left_out():
    sources = passage_sources("  Where is the Eiffel Tower? ", PASSAGES)
    assert sources.texts[0] == "[1] Cities > Paris\nThe Eiffel Tower is located in the city of Paris, France."
    assert sources.texts[1].startswith("[2] South\n")  # no heading: the title
    assert sources.texts[2].startswith("[3] Physics\n")
    full = sources.render([True, True, True])
    assert [m.role for m in full] == ["system", "user", "assistant", "user"]  # the worked example first
    assert full[0].content == SYSTEM_PROMPT and full[2].content == EXAMPLE_ANSWER
    assert full[3].content.endswith(f"\n\nQuestion: Where is the Eiffel Tower?\n{INSTRUCTION}")
    dropped = sources.render([True, False, True])[3].content
    assert "[1] Cities" in dropped and "[2]" not in dropped and "[3] Physics" in dropped


# ---- the flow on the tiny model ------------------------------------------------------------------------


def test_answer_on_the_tiny_model(tiny, tmp_path, monkeypatch):
    # The random model's greedy first token depends on the prompt's wording: after the packaged one it is
    # the stop token (an empty answer, nothing to attribute); these short instructions give it tokens.
    monkeypatch.setattr(answer_module, "SYSTEM_PROMPT", "Answer.")
    monkeypatch.setattr(answer_module, "INSTRUCTION", "Answer from the passages.")
    result = answer(
        tiny,
        "Where is the Eiffel Tower?",
        PASSAGES,
        max_new_tokens=10,
        ablations=4,
        gradient=True,
        correct=False,  # the answer as generated (corrections: tests/knowledge/test_corrections.py)
    )
    assert result.model == "tiny-random-qwen2" and result.finish_reason in ("stop", "length")
    assert result.text == tiny.decode(result.attribution.response_ids)
    attr = result.attribution
    assert attr.n_sources == 3 and attr.n_ablations == 4 and not attr.exact
    assert attr.sources == list(passage_sources("Where is the Eiffel Tower?", PASSAGES).texts)
    assert attr.gradient is not None and len(result.support) == 3
    assert [s.weight for s in result.support] == attr.weights.tolist()
    assert set(result.seconds) == {"generate", "attribute"}
    again = CitedAnswer.from_json(result.to_json())
    assert again.to_dict() == result.to_dict() and again.attribution.equals(attr)
    assert again.passages == PASSAGES
    assert CitedAnswer.load(result.save(tmp_path / "a.json")).to_dict() == result.to_dict()


def test_citation_tokens_are_left_out_of_the_score(tiny):
    text = "Paris [1]. Rome [2, 3]."
    ids = tiny.tokenizer(text, add_special_tokens=False)["input_ids"]
    spans = token_char_spans(tiny, ids)
    assert "".join(text[a:b] for a, b in spans) == text and spans[-1][1] == len(text)
    citations, _ = parse_citations(text, 3)
    counted = _outside(spans, [(c.start, c.end) for c in citations])
    kept = "".join(text[a:b] for (a, b), keep in zip(spans, counted, strict=True) if keep)
    assert "[" not in kept and "]" not in kept and "Paris" in kept and "Rome" in kept


def test_citing_a_given_answer_maps_citations_and_attributes_by_ablation_by_default(tiny):
    text = "Paris [1]. Rome [2, 9]."
    result = cite(tiny, "Where is the Eiffel Tower?", PASSAGES, text, ablations=4)
    assert [(c.number, c.passage) for c in result.citations] == [(1, 0), (2, 1), (9, None)]
    assert result.unknown_citations == [9] and result.cited == [1, 2]
    attr = result.attribution
    assert attr.gradient is None and attr.params["gradient_method"] is None  # the default: ablation only
    ids = tiny.tokenizer(text, add_special_tokens=False)["input_ids"]
    assert attr.response_ids == ids and not all(attr.counted)  # citation tokens left out of the score
    for s in result.support:
        relied = s.weight >= 0.5
        expected = "cited_not_relied" if s.cited and not relied else None
        expected = "relied_not_cited" if relied and not s.cited else expected
        assert s.relied == relied and s.flag == expected
    assert cite(None, "Where?", PASSAGES, text).attribution is None


def test_answer_without_attribution_works_on_any_backend(tiny):
    result = answer(tiny, "Where?", PASSAGES[:1], max_new_tokens=4, attribute=False)
    assert result.attribution is None and "attribute" not in result.seconds
    assert all(math.isnan(s.weight) and s.flag is None for s in result.support)
    assert result.top_attributed() is None


def test_bad_input_is_refused_clearly(tiny):
    class LlamaCpp:
        kind = "llamacpp"

    with pytest.raises(InvalidInputError, match="question is empty"):
        answer(tiny, "  ", PASSAGES)
    with pytest.raises(InvalidInputError, match="no passages"):
        answer(tiny, "Where?", [])
    with pytest.raises(BackendUnavailableError, match="torch backend"):
        answer(LlamaCpp(), "Where?", PASSAGES)
    with pytest.raises(InvalidInputError, match="at least 2 ablations"):
        answer(tiny, "Where?", PASSAGES, ablations=1)


# ---- the page ------------------------------------------------------------------------------------------


class _Page(HTMLParser):
    """Collects the citation links, the passage cards and the embedded data of a page."""

    def __init__(self):
        super().__init__()
        self.links, self.cards, self.unknown, self.data = [], [], [], None
        self._in_data = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "a" and "cite" in a.get("class", ""):
            self.links.append(a["href"])
        if tag == "details":
            self.cards.append((a["id"], a["style"]))
        if tag == "span" and a.get("class") == "cite unknown":
            self.unknown.append(a["title"])
        self._in_data = tag == "script" and a.get("id") == "clearlm-answer"

    def handle_data(self, data):
        if self._in_data:
            self.data = data
            self._in_data = False


def test_page_links_citations_shades_passages_and_shows_flags():
    cited = hand_made("The tower is in Paris [1]. Rome [2, 3]. Nowhere [7].", weights=(0.2, 2.5, -1.4))
    page = render_html(cited)
    assert "http://" not in page and "https://" not in page
    parser = _Page()
    parser.feed(page)
    # 3 links in the answer, then one per flag ([1] cited but not relied on)
    assert parser.links[:3] == ["#passage-1", "#passage-2", "#passage-3"]
    assert parser.unknown == ["no passage [7]"]
    assert [c[0] for c in parser.cards] == ["passage-1", "passage-2", "passage-3"]
    styles = dict(parser.cards)
    assert styles["passage-2"] == "background-color:rgba(214,39,40,0.450)"  # the largest weight
    assert styles["passage-3"].startswith("background-color:rgba(31,100,200,")  # negative: blue
    assert "cited, but the answer did not rely on it" in page and "[7]: cited, but there is no such" in page
    for shown in (
        "docs/paris.md",
        "Cities &gt; Paris",
        "120\u2013177",
        "LDS +0.80",
        "&lt;Rayleigh&gt;",
        "Where is the &lt;Eiffel&gt; Tower?",
        "weight +2.50",
        "gradient -30%",
    ):
        assert shown in page, shown
    assert "<Rayleigh>" not in page.split('<script type="application/json"')[0]  # escaped in the markup
    assert CitedAnswer.from_dict(json.loads(parser.data)).to_dict() == cited.to_dict()


def test_citation_click_opens_its_passage_in_chromium(tmp_path):
    if not CHROMIUM.exists():
        pytest.skip(
            "needs Chromium at /usr/bin/chromium for the real-browser check (`make test` installs it)"
        )
    sync_api = pytest.importorskip("playwright.sync_api")
    path = write_html(hand_made("The tower is in Paris [1]. Rome [2, 3]."), tmp_path / "answer.html")
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-gpu", "--no-first-run"]
        )
        try:
            page = browser.new_page(viewport={"width": 1000, "height": 700})
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(path.as_uri())
            text = page.locator("#passage-3 .text")
            assert not text.is_visible()  # cards start closed
            page.locator('#answer a.cite[data-passage="3"]').click()
            assert text.is_visible() and "Rayleigh" in text.inner_text()
            assert page.locator("#passage-3").get_attribute("open") is not None
            assert "target" in page.locator("#passage-3").get_attribute("class")
            assert not page.locator("#passage-1 .text").is_visible()
            assert page.evaluate("location.hash") == "#passage-3"
            assert not errors
        finally:
            browser.close()
