"""A cited answer from the real default model: it cites the passage holding the answer, and that passage is
the one the answer relied on most."""

from __future__ import annotations

import pytest

from clearlm.knowledge.answer import answer
from clearlm.knowledge.answer_html import render_html
from clearlm.knowledge.passage import Passage

pytestmark = pytest.mark.integration

# Three towns with made-up facts: the model cannot know the answer without passage 2.
TOWNS = {
    "Velmora": "Velmora is a river town known for its glassworks. Its lantern festival takes place every "
    "October.",
    "Brisk Harbour": "Brisk Harbour is a fishing port on the north coast. Its lighthouse was designed by the "
    "engineer Anika Brandt and first lit in 1931.",
    "Oskel": "Oskel is a mountain village famous for its goat cheese. It can only be reached by a cable car "
    "from the valley.",
}


def test_the_answer_cites_and_relies_on_the_passage_that_holds_it(default_backend):
    passages = [
        Passage(
            f"towns-{i}",
            text,
            f"towns/{name.lower().replace(' ', '-')}.md",
            name,
            ("Towns", name),
            0,
            len(text),
        )
        for i, (name, text) in enumerate(TOWNS.items())
    ]
    # every subset of the 3 passages; the gradient view is checked in tests/explain/test_context_real_model.py
    question = "Who designed the lighthouse of Brisk Harbour?"
    result = answer(default_backend, question, passages, ablations=8, gradient=False)
    assert "Anika Brandt" in result.text and "Nile" not in result.text and not result.abstained
    quoted = [c for c in result.citations if c.quote_start is not None]
    assert quoted and "Anika Brandt" in result.passage(2).text[quoted[0].quote_start : quoted[0].quote_end]
    assert result.cited == [2] and result.unknown_citations == []
    assert result.passage(2).path == "towns/brisk-harbour.md"
    assert result.top_attributed() == 2
    second = result.support[1]
    assert second.cited and second.relied and second.flag is None
    assert result.flagged == []
    assert result.attribution.exact and result.attribution.lds > 0
    page = render_html(result)
    assert 'href="#passage-2"' in page and "towns/brisk-harbour.md" in page
