"""Extractive answers (``clearlm.knowledge.extractive``) on the real default embedding model: the sentence
that states the fact is quoted word for word and cited, the citation's quoted span is that sentence, a
question the passages do not answer gets the abstention, and through the pipeline the answer is audited
and checked by the output policy like a generated one."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime

import pytest

from clearlm.govern.policy import parse_policy
from clearlm.knowledge import KnowledgeBase
from clearlm.knowledge.answer import cite
from clearlm.knowledge.extractive import MIN_SCORE, extractive_text, rank_sentences, sentence_spans, words
from clearlm.knowledge.passage import Passage
from clearlm.knowledge.quotes import NO_ANSWER
from clearlm.models.backends.base import SamplingParams
from clearlm.models.chat import Message
from clearlm.pipeline import Retrieval, TurnRequest, cite_turn, start_turn
from clearlm.store import AuditLog, AuditRecord, Database

TOWNS = [
    "Velmora is a harbour town on the north coast. The ferry to Ostrik leaves Velmora at 7:15 every "
    "morning from pier 4. Tickets are sold on board.",
    "Ostrik is an island of fishing villages. Its lighthouse was built in 1871 and is open to visitors "
    "in summer.",
    "To list the ferry timetable, run:\n  ferryctl schedule --route velmora-ostrik\nThe timetable changes "
    "in October.",
]


def passage(i: int, text: str) -> Passage:
    return Passage(f"c{i}", text, f"towns/{i}.md", f"Town {i}", ("Towns",), 0, len(text))


@pytest.fixture(scope="module")
def embedder():
    from clearlm.knowledge.base import default_embedder

    return default_embedder()


def test_sentences_are_split_at_stops_colons_and_lines_and_short_pieces_dropped():
    text = "Note:\nRun this first: apt-get update. Then reboot!\n  ok\nThe end is near? Yes. 3.5 is out."
    assert [text[s:e] for s, e in sentence_spans(text)] == [
        "Run this first:",
        "apt-get update.",
        "Then reboot!",
        "The end is near?",
    ]  # "Note:", "ok", "Yes." and "3.5 is out." (11 characters) are under MIN_CHARS


def test_words_keep_commands_paths_and_options_and_drop_stop_words():
    assert words("How do I list /etc/hosts with ls -l, or apt-get the 2.0 version?") == {
        "list",
        "etc/hosts",
        "ls",
        "-l",
        "apt-get",
        "2.0",
        "version",
    }


def test_the_sentence_that_states_the_fact_is_quoted_and_cited(embedder):
    passages = [passage(i, t) for i, t in enumerate(TOWNS)]
    ranked = rank_sentences(embedder, "When does the ferry to Ostrik leave?", passages)
    assert TOWNS[0][ranked[0].start : ranked[0].end] == (
        "The ferry to Ostrik leaves Velmora at 7:15 every morning from pier 4."
    )
    assert ranked[0].passage == 0 and all(
        a.score >= b.score for a, b in zip(ranked, ranked[1:], strict=False)
    )
    text = extractive_text(ranked, passages, sentences=1)
    assert text == "The ferry to Ostrik leaves Velmora at 7:15 every morning from pier 4. [1]"
    cited = cite(None, "When does the ferry to Ostrik leave?", passages, text)
    (citation,) = cited.citations
    assert citation.passage == 0
    assert TOWNS[0][citation.quote_start : citation.quote_end] == (
        "The ferry to Ostrik leaves Velmora at 7:15 every morning from pier 4"
    )


def test_two_sentences_come_in_passage_order_and_an_unrelated_question_abstains(embedder):
    passages = [passage(i, t) for i, t in enumerate(TOWNS)]
    ranked = rank_sentences(embedder, "When was the lighthouse on Ostrik built?", passages)
    text = extractive_text(ranked, passages)
    assert "Its lighthouse was built in 1871 and is open to visitors in summer. [2]" in text
    numbers = [int(n) for n in re.findall(r"\[(\d)\]", text)]
    assert numbers == sorted(numbers) and len(numbers) == 2
    unrelated = rank_sentences(embedder, "What is the capital of Australia?", passages)
    assert unrelated[0].score < MIN_SCORE
    assert extractive_text(unrelated, passages) == NO_ANSWER
    assert extractive_text([], passages) == NO_ANSWER


def test_through_the_pipeline_the_quote_is_redacted_and_audited(embedder, tmp_path, tiny_backend):
    kb = KnowledgeBase.create("t-" + uuid.uuid4().hex[:8], root=tmp_path / "kb", embedder=embedder)
    doc = tmp_path / "contacts.md"
    doc.write_text(
        "# Contacts\n\nThe harbour master is reached at harbour@velmora.example on weekdays. "
        "The museum opens at ten.\n",
        encoding="utf-8",
    )
    kb.add([doc])
    policy = parse_policy("name: p\noutput:\n  - {scanner: pii, action: redact, entities: [EMAIL_ADDRESS]}\n")
    audit = AuditLog(Database(f"sqlite:///{tmp_path / 'audit.db'}"))
    record = AuditRecord(request_id="r-1", created_at=datetime.now(UTC), endpoint="test")
    request = TurnRequest(
        [Message("user", "How do I reach the harbour master?")],
        SamplingParams(max_new_tokens=8),
        retrieval=Retrieval(kb, 2, answer="extract"),
    )
    turn = start_turn(tiny_backend, request, record, audit, policy)
    text = "".join(chunk.text for _, chunk in turn)
    assert text.startswith("The harbour master is reached at <EMAIL_ADDRESS> on weekdays. [1]")
    assert turn.choices[0].finish_reason == "stop"
    (stored,) = audit.records()
    assert stored.parameters["answer"] == "extract" and "harbour@velmora.example" not in repr(stored.output)
    cited = cite_turn(None, turn)
    assert cited.citations[0].passage == 0 and cited.text == text
    kb.close()


def test_an_unknown_answer_kind_is_refused(tmp_path):
    from clearlm.errors import InvalidInputError

    with pytest.raises(InvalidInputError, match="answer must be one of generate, extract"):
        Retrieval(object(), answer="summarise")
