"""benchmarks/bench_knowledge.py: the question set matches the real manual (Debian Reference, installed by
`make docs-corpus`), the scoring (answer-passage rule, recall@k, MRR) gives known values, and, with the
real embedding and chat models, retrieval and cited answers on the manual stay above stated floors."""

from __future__ import annotations

import importlib.util
import sys
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import pytest

SCRIPT = Path(__file__).parents[2] / "benchmarks" / "bench_knowledge.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_knowledge", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def manual(bench):
    """File name: the text clearlm extracts from it, for every file of the document set."""
    return bench.extracted_texts(bench.manual_paths())


def test_the_questions_cover_every_chapter_in_both_styles(bench):
    questions = bench.load_questions()
    assert len(questions) >= 60
    per_file = Counter(q.file for q in questions)
    assert set(per_file) == {f"{stem}.en.html" for stem in bench.FILES}
    styles = Counter(q.style for q in questions)
    assert styles["lexical"] >= 25 and styles["paraphrase"] >= 25
    assert len({q.id for q in questions}) == len(questions)


def test_every_quote_occurs_once_in_its_file_and_nowhere_else(bench, manual):
    questions = bench.load_questions()
    assert bench.check_questions(questions, manual) == []
    spans = bench.answer_spans(questions, manual)
    for q in questions:
        start, end = spans[q.id]
        assert bench.normalise(manual[q.file][start:end]) == bench.normalise(q.answer), q.id


def test_a_bad_question_set_is_reported_line_by_line(bench):
    Q = bench.Question
    texts = {"a.html": "one two three four five six\nseven", "b.html": "alpha beta gamma delta epsilon"}
    questions = [
        Q("x1", "?", "a.html", "one two  three\nfour five", "lexical"),  # sound
        Q("x1", "?", "a.html", "two three four five six", "lexical"),  # a duplicate id
        Q("x2", "?", "a.html", "one two", "lexical"),  # too short
        Q("x3", "?", "c.html", "alpha beta gamma delta epsilon", "lexical"),  # no such file
        Q("x4", "?", "a.html", "absent words are not in it", "paraphrase"),
        Q("x5", "?", "a.html", "four five six seven eight", "other"),
    ]
    assert bench.check_questions(questions, texts) == [
        "x1: duplicate id",
        "x2: the quote has 2 words, not 5-20",
        "x3: c.html is not in the document set",
        "x4: the quote occurs 0 times in a.html, not once",
        "x5: style 'other' is neither lexical nor paraphrase",
        "x5: the quote occurs 0 times in a.html, not once",
    ]
    shared = [Q("y1", "?", "a.html", "one two three four five", "lexical")]
    assert bench.check_questions(shared, {**texts, "b.html": "so: one two three four five."}) == [
        "y1: the quote also occurs in b.html"
    ]


def test_locate_maps_a_normalised_quote_back_to_source_offsets(bench):
    text = "Intro.\n\n  the  sticky\tbit on a\n directory  prevents removal.  Again: the sticky bit on a directory."
    spans = bench.locate("the sticky bit on a\ndirectory", text)
    assert spans == [(10, 41), (69, 98)]
    assert text[10:41] == "the  sticky\tbit on a\n directory"
    assert text[69:98] == "the sticky bit on a directory"
    assert bench.locate("no such words", text) == []
    # NFKC: a no-break space and a ligature in the source match a plain space and "fi"
    assert bench.locate("the file is", "So\u00a0the \ufb01le\u00a0is here") == [(3, 13)]


def _passage(path, start, end, text="x"):
    return SimpleNamespace(path=path, start=start, end=end, text=text)


def test_the_answer_passage_rule(bench):
    q = bench.Question("q", "?", "ch03.en.html", "the quote of ten characters", "lexical")
    span = (100, 127)  # 27 characters
    inside = _passage("/usr/share/debian-reference/ch03.en.html", 50, 300)
    half = _passage("ch03.en.html", 114, 400)  # covers 13 of 27: less than half
    more = _passage("ch03.en.html", 113, 400)  # covers 14 of 27
    before = _passage("ch03.en.html", 0, 100)  # ends where the quote starts
    other_file = _passage("ch04.en.html", 50, 300)
    quoted = _passage(
        "elsewhere.html", 0, 10, text="... The quote of\nten  characters ...".replace("The", "the")
    )
    assert bench.is_answer_passage(inside, q, span)
    assert not bench.is_answer_passage(half, q, span)
    assert bench.is_answer_passage(more, q, span)
    assert not bench.is_answer_passage(before, q, span)
    assert not bench.is_answer_passage(other_file, q, span)
    assert bench.is_answer_passage(quoted, q, span)


def test_ranks_recall_and_mrr(bench):
    assert bench.first_rank([False, False, True, True]) == 3
    assert bench.first_rank([False] * 10) is None
    ranks = [1, 3, None, 6, 10, 11]
    assert bench.recall_at(ranks, 5) == pytest.approx(2 / 6)
    assert bench.recall_at(ranks, 10) == pytest.approx(4 / 6)
    assert bench.mrr(ranks, 10) == pytest.approx((1 + 1 / 3 + 1 / 6 + 1 / 10) / 6)
    assert bench.mrr(ranks, 5) == pytest.approx((1 + 1 / 3) / 6)


def test_a_short_run_takes_questions_in_turn_from_each_file(bench):
    Q = bench.Question
    qs = [Q(f"{f}-{i}", "?", f, "a b c d e", "lexical") for f in ("a", "b", "c") for i in range(3)]
    assert [q.id for q in bench.select(qs, 4)] == ["a-0", "b-0", "c-0", "a-1"]
    assert [q.id for q in bench.select(qs, None, files={"c", "a"})] == [
        "a-0",
        "c-0",
        "a-1",
        "c-1",
        "a-2",
        "c-2",
    ]
    chosen = bench.select(bench.load_questions(), 14)
    assert len({q.file for q in chosen}) == 14
