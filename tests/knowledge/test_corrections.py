"""Issue 14 on pure functions: no example text in the prompt, the abstention, quoted spans, the correction
rules on hand-made CitedAnswers, the JSON form (schema 2, reading 1) and the highlighted page."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from clearlm.knowledge.answer import (
    CitedAnswer,
    cite,
    parse_citations,
    quote_citations,
    support,
)
from clearlm.knowledge.answer_html import render_html
from clearlm.knowledge.corrections import correct, leaks_example
from clearlm.knowledge.passage import Passage
from clearlm.knowledge.quotes import (
    MIN_QUOTE,
    NO_ANSWER,
    is_abstention,
    quoted_span,
    sentence_before,
)

TEXTS = [
    "To show the routing table, run ip route show in a terminal.",
    "The file /etc/apt/sources.list lists the package archives.",
    "Use tar -tvf archive.tar to list the contents of a tar archive.",
]
PASSAGES = [Passage(f"c{i}", t, f"doc{i}.md", f"T{i}", (), 0, len(t)) for i, t in enumerate(TEXTS)]
QUESTION = "How do I list a tar archive?"


def cited_answer(text: str, attribution: SimpleNamespace | None = None) -> CitedAnswer:
    """``cite`` without a model, with ``attribution`` set by hand when given."""
    result = cite(None, QUESTION, PASSAGES, text)
    if attribution is not None:
        result.attribution = attribution
        result.support = support(len(PASSAGES), result.citations, attribution)
    return result


def attribution(weights: list[float]) -> SimpleNamespace:
    """What ``support`` and ``correct`` read of a ContextAttribution: the weights (no gradient)."""
    return SimpleNamespace(weights=np.array(weights), gradient=None, gradient_shares=None)


# ---- no worked example can leak


@pytest.mark.parametrize(
    "text",
    [
        "The Nile flows north into the Mediterranean Sea [1].",  # the example's answer, copied
        "The answer is that it flows north through eleven countries [2].",  # a stretch of an example passage
    ],
)
def test_an_answer_quoting_the_worked_example_becomes_the_abstention(text):
    """Before: the prompt's example (the Nile) came back as the answer to unrelated questions."""
    result = correct(cited_answer(text))
    assert result.text == NO_ANSWER and result.citations == [] and result.abstained
    assert result.corrections == [{"kind": "abstained", "by": "example", "text": text}]
    for word in ("Nile", "Mediterranean", "eleven countries"):
        assert word not in result.text


def test_words_the_example_shares_with_a_real_passage_are_no_leak():
    assert not leaks_example("Use tar -tvf archive.tar to list the contents [3].", TEXTS)
    assert leaks_example("It is the largest hot desert [1].", TEXTS)
    nile = [*TEXTS, "The Nile flows north through eleven countries into the sea."]
    assert not leaks_example("The Nile flows north through eleven countries [4].", nile)


# ---- the abstention


@pytest.mark.parametrize(
    "text",
    [NO_ANSWER, "The documents do not say", "the documents do not say!", "The documents do not say. [2]"],
)
def test_the_abstention_is_recognised_and_normalised(text):
    assert is_abstention(text)
    result = correct(cited_answer(text))
    assert result.abstained and result.text == NO_ANSWER
    assert result.citations == [] and result.cited == [] and result.corrections == []


def test_an_answer_is_not_an_abstention():
    assert not is_abstention("Run tar -tvf archive.tar [3].")
    assert not is_abstention("")
    assert not cited_answer("Run tar -tvf archive.tar [3].").abstained


# ---- quoted spans


def test_the_quoted_span_is_the_longest_verbatim_stretch_in_the_passage():
    text = "List it with tar -tvf archive.tar [3]. Routes: ip route show [1]."
    result = cited_answer(text)
    first, second = result.citations
    assert (first.quote_start, first.quote_end) == (TEXTS[2].index("tar -tvf archive.tar"), 24)
    assert TEXTS[2][first.quote_start : first.quote_end] == " tar -tvf archive.tar"[1:]
    assert TEXTS[0][second.quote_start : second.quote_end] == "ip route show"


def test_a_stretch_shorter_than_the_minimum_is_no_quote():
    assert MIN_QUOTE == 8
    assert quoted_span("see the table", "the table of routes") == (0, 9)  # "the table" has 9
    assert quoted_span("see the tab", "the table") is None  # "the tab" has 7
    assert quoted_span("", "anything") is None
    c = cited_answer("Nothing in common here xyz [2].").citations[0]
    assert c.quote_start is None and c.quote_end is None


def test_the_sentence_a_citation_closes():
    text = "First fact. Second is ip route show. [1][2] Third [3]."
    assert sentence_before(text, text.index("[1]")) == "Second is ip route show"
    assert sentence_before(text, text.index("[2]")) == "Second is ip route show"
    assert sentence_before(text, text.index("[3]")) == "Third"


# ---- corrections


def test_a_citation_is_repointed_to_the_passage_its_sentence_quotes():
    result = correct(cited_answer("Run tar -tvf archive.tar to see it [1]."))
    assert result.text == "Run tar -tvf archive.tar to see it [3]."
    assert result.cited == [3] and result.citations[0].quote_start is not None
    assert result.corrections == [{"kind": "recited", "from": 1, "to": 3, "by": "quote"}]


def test_a_citation_that_quotes_its_passage_is_kept():
    before = cited_answer("Run tar -tvf archive.tar [3].")
    assert correct(before) is before


def test_an_answer_that_cites_and_quotes_nothing_abstains():
    result = correct(cited_answer("The river runs south."))
    assert result.text == NO_ANSWER and result.abstained
    assert result.corrections == [{"kind": "abstained", "by": "quote", "text": "The river runs south."}]
    cited = correct(cited_answer("You can run ip route show."))  # cites nothing, quotes passage 1
    assert cited.text == "You can run ip route show. [1]" and cited.cited == [1]
    assert cited.corrections == [{"kind": "recited", "from": None, "to": 1, "by": "quote"}]


def test_attribution_repoints_an_unrelied_citation_to_the_one_relied_uncited_passage():
    result = correct(cited_answer("It is done so [1].", attribution([0.1, 0.0, 2.0])))
    assert result.text == "It is done so [3]." and result.cited == [3]
    assert result.corrections == [{"kind": "recited", "from": 1, "to": 3, "by": "attribution"}]
    assert [s.flag for s in result.support] == [None, None, None]


def test_attribution_that_finds_no_relied_passage_abstains():
    result = correct(cited_answer("Run tar -tvf archive.tar [3].", attribution([0.1, 0.2, 0.3])))
    assert result.text == NO_ANSWER and result.corrections[0]["by"] == "attribution"


def test_two_relied_uncited_passages_leave_the_citations_alone():
    before = cited_answer("It is done so [1].", attribution([0.1, 1.0, 2.0]))
    assert correct(before) is before


# ---- JSON and the page


def test_json_round_trip_and_version_1_input():
    result = correct(cited_answer("Run tar -tvf archive.tar to see it [1]."))
    data = result.to_dict()
    assert data["schema_version"] == 2 and data["abstained"] is False
    assert data["citations"][0]["quote_start"] == TEXTS[2].index("tar -tvf")
    assert CitedAnswer.from_dict(data).to_dict() == data
    old = cited_answer("Run tar -tvf archive.tar [3].").to_dict()
    old["schema_version"] = 1
    del old["corrections"], old["abstained"]
    for c in old["citations"]:
        del c["quote_start"], c["quote_end"]
    back = CitedAnswer.from_dict(old)
    assert back.citations[0].quote_start is None and back.corrections == []
    with pytest.raises(ValueError, match="schema version 3"):
        CitedAnswer.from_dict({**data, "schema_version": 3})


def test_the_page_marks_the_quoted_span_and_lists_corrections():
    result = correct(cited_answer("Run tar -tvf archive.tar to see it [1]."))
    page = render_html(result)
    c = result.citations[0]
    assert TEXTS[2][c.quote_start : c.quote_end] == "tar -tvf archive.tar to"
    assert '<mark class="quote">tar -tvf archive.tar to</mark>' in page
    assert "citation [1] re-pointed to [3]" in page


def test_quote_citations_leaves_unknown_numbers_without_a_span():
    citations, unknown = parse_citations("Run tar -tvf archive.tar [9].", 3)
    assert unknown == [9]
    assert quote_citations("Run tar -tvf archive.tar [9].", citations, PASSAGES)[0].quote_start is None
