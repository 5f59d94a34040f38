"""The knowledge-base question sets (benchmarks/data/kb_questions.jsonl, kb_heldback.jsonl,
kb_unanswerable.jsonl): their sizes and keys, `states_key`'s normalisation, the checks `check_questions`
makes on keys and absent terms, and, when the Debian Reference is installed, that every quote, key and
absent term matches the manual. No model is loaded."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from conftest import load_benchmark

MANUAL = Path("/usr/share/debian-reference/ch01.en.html")


@pytest.fixture(scope="module")
def bench():
    module = load_benchmark("bench_knowledge")
    return module


@pytest.fixture(scope="module")
def sets(bench):
    return {
        "questions": bench.load_questions(bench.QUESTIONS),
        "heldback": bench.load_questions(bench.HELDBACK),
        "unanswerable": bench.load_questions(bench.UNANSWERABLE),
    }


def test_every_answerable_question_has_one_to_four_key_strings(sets):
    for name in ("questions", "heldback"):
        for q in sets[name]:
            assert q.answerable and 1 <= len(q.key) <= 4, q.id
            assert all(k.strip() for k in q.key), q.id
    assert len(sets["questions"]) == 105
    assert len(sets["heldback"]) == 30
    assert [q.id for q in sets["heldback"]] == [f"hb-{i:02d}" for i in range(1, 31)]


def test_the_held_back_set_spreads_over_chapters_in_both_styles(sets):
    held = sets["heldback"]
    assert len({q.file for q in held}) >= 10
    styles = Counter(q.style for q in held)
    assert styles == {"lexical": 15, "paraphrase": 15}


def test_unanswerable_questions_carry_absent_terms_and_no_key(bench, sets):
    unanswerable = sets["unanswerable"]
    assert len(unanswerable) >= 25
    for q in unanswerable:
        assert not q.answerable and q.style == "unanswerable", q.id
        assert q.key == () and q.file == "" and q.answer == "", q.id
        assert q.absent_terms and all(t.strip() for t in q.absent_terms), q.id
    lines = bench.UNANSWERABLE.read_text(encoding="utf-8").splitlines()
    kinds = Counter(json.loads(line)["kind"] for line in lines if line.strip())
    assert set(kinds) == {"near-miss", "off-topic", "false premise"} and min(kinds.values()) >= 5


def test_ids_are_unique_across_the_three_files(sets):
    ids = [q.id for qs in sets.values() for q in qs]
    assert len(ids) == len(set(ids)) == 105 + 30 + len(sets["unanswerable"])


def test_states_key_normalises_case_quotes_and_white_space(bench):
    key = ["dpkg -L", "dpkg --listfiles"]
    assert bench.states_key("Run `dpkg -L bash` to list them [1].", key)
    assert bench.states_key("Use DPKG  -l\n(the lower case works too).", key)  # case and white space
    assert bench.states_key("Use \u201cdpkg --listfiles\u201d.", key)  # curly quotes, the other alternative
    assert bench.states_key("Set it with ':set expandtab' and ':%retab'.", ["%retab"])
    assert bench.states_key("The file shouldn\u2019t exist.", ["shouldn't exist"])  # apostrophes removed
    assert bench.states_key("Press \uff23trl-Alt-F3.", ["ctrl-alt-f"])  # NFKC: a full-width C
    assert not bench.states_key("Use dpkg -S to find the package.", key)
    assert not bench.states_key("dpkg lists them.", key)
    assert not bench.states_key("The documents do not say.", key)
    assert not bench.states_key("anything at all", [])
    assert not bench.states_key("anything at all", ["  "])  # a blank key string states nothing


def test_load_questions_refuses_a_key_that_is_not_a_list(bench, tmp_path):
    path = tmp_path / "q.jsonl"
    row = {"id": "a", "question": "?", "file": "f", "answer": "x", "style": "lexical", "key": "dpkg -L"}
    path.write_text(json.dumps(row) + "\n")
    with pytest.raises(ValueError, match="q.jsonl line 1: .*key must be a list of strings"):
        bench.load_questions(path)
    row["key"] = ["dpkg -L"]
    unanswerable = {"id": "u", "question": "?", "style": "unanswerable", "why": "-", "absent_terms": ["zz"]}
    path.write_text(json.dumps(row) + "\n\n" + json.dumps(unanswerable) + "\n")
    a, u = bench.load_questions(path)
    assert (a.key, a.answerable, a.absent_terms) == (("dpkg -L",), True, ())
    assert (u.key, u.answerable, u.absent_terms, u.file) == ((), False, ("zz",), "")


def test_check_questions_reports_bad_keys_and_present_absent_terms(bench):
    Q = bench.Question
    texts = {
        "a.html": "Run dpkg -L foo to list its files. See also `dpkg-query`.",
        "b.html": "Zram is not here",
    }
    quote = "Run dpkg -L foo to list"
    questions = [
        Q("k1", "?", "a.html", quote, "lexical", ("DPKG -l",)),  # sound: case is ignored
        Q("k2", "?", "a.html", quote, "lexical", ("dpkg-query",)),  # sound: in the file, not the quote
        Q("k3", "?", "a.html", quote, "lexical", ("apt-file",)),
        Q("k4", "?", "a.html", quote, "lexical", ("dpkg",) * 5),
        Q("k5", "?", "a.html", quote, "lexical", ("",)),
        Q("k6", "?", "a.html", quote, "lexical"),  # no key: allowed unless keys are required
        Q("u1", "?", "", "", "unanswerable", (), False, ("wireguard",)),  # sound
        Q("u2", "?", "", "", "unanswerable", (), False, ("ZRAM", "dpkg -l")),
        Q("u3", "?", "", "", "lexical", (), False, ()),
    ]
    expected = [
        "k3: key 'apt-file' is neither in the quote nor in a.html",
        "k4: 5 key strings, not 1-4",
        "k5: key '' is neither in the quote nor in a.html",
        "u2: absent term 'ZRAM' occurs in b.html",
        "u2: absent term 'dpkg -l' occurs in a.html",
        "u3: style 'lexical' of an unanswerable question is not 'unanswerable'",
        "u3: no absent terms",
    ]
    assert bench.check_questions(questions, texts) == expected
    assert bench.check_questions(questions, texts, require_keys=True) == [
        *expected[:3],
        "k6: 0 key strings, not 1-4",
        *expected[3:],
    ]


@pytest.mark.skipif(not MANUAL.exists(), reason="the Debian Reference is not installed (make docs-corpus)")
def test_all_three_files_match_the_installed_manual(bench, sets, capsys):
    texts = bench.extracted_texts(bench.manual_paths())
    questions = [q for qs in sets.values() for q in qs]
    assert bench.check_questions(questions, texts, require_keys=True) == []
    assert bench.check_all(texts) == 0
    assert capsys.readouterr().out.startswith("OK: 105 from kb_questions.jsonl, 30 from kb_heldback.jsonl")
