"""Quiz generation from a knowledge base: drafts parsed and checked (a key the passage does not support,
one the question gives away, invalid output: dropped and counted), near-duplicates dropped, generation
through audited pipeline turns (the tiny random Qwen2; the real default model in one integration test),
the teacher's approval (edits rebuild the rubric; decisions audited; the review queue decides too), the
export as rubric files read back by the rubric loader, and bad input with clear errors."""

from __future__ import annotations

import json
import time

import pytest
from sqlalchemy import select

from clearlm.apps.classroom import load_rubrics
from clearlm.apps.classroom.quiz import (
    EXAMPLE_REPLY,
    EmptyKnowledgeBaseError,
    QuizGenerator,
    QuizResult,
    all_passages,
)
from clearlm.apps.classroom.quiz_checks import (
    Checked,
    Dropped,
    check_draft,
    near_duplicate,
    parse_draft,
    quiz_rubric,
    support,
)
from clearlm.apps.classroom.quiz_store import (
    QUIZ_APPROVAL,
    QuizBook,
    QuizQuestionDecidedError,
    QuizQuestionNotFoundError,
)
from clearlm.apps.classroom.rubrics import parse_rubric
from clearlm.errors import InvalidInputError
from clearlm.knowledge import KnowledgeBase, KnowledgeBaseNotFoundError, Passage
from clearlm.store import AuditLog, Database
from clearlm.store.review import ReviewQueue
from clearlm.store.tables import AuditRow

# Made-up facts, so the real model can only take its keys from the passages.
DOCS = {
    "harbour.md": "# Brisk Harbour\n\nBrisk Harbour is a fishing port on the north coast of Veldmark. Its "
    "lighthouse was designed by the engineer Anika Brandt and first lit in 1931. The harbour freezes "
    "over in February, when the fishing boats are hauled onto the quay for repairs.\n",
    "glass.md": "# Velmora glassworks\n\nVelmora is a river town known for its blue glass. The glassblowers "
    "of Velmora use sand from the Orlen river, which gives the glass its colour. The town holds a "
    "lantern festival every October, when each house hangs a glass lantern over its door.\n",
    "cheese.md": "# Oskel\n\nOskel is a mountain village famous for its smoked goat cheese. The cheese "
    "is aged for nine months in caves above the village. Oskel can only be reached by a cable car "
    "that leaves the valley station every forty minutes.\n",
}
PASSAGE = Passage(
    "c1",
    "Brisk Harbour is a fishing port on the north coast. Its lighthouse was designed by the engineer "
    "Anika Brandt and first lit in 1931. The harbour freezes in February.",
    "/docs/harbour.md",
    "Brisk Harbour",
    ("Brisk Harbour",),
    100,
    240,
)


def reply(question: str, answer: str, quote: str = "") -> str:
    return json.dumps({"question": question, "answer": answer, "quote": quote})


@pytest.fixture(scope="module")
def backend(tiny_tokenizer):
    from clearlm.models.backends.torch_backend import TorchBackend
    from conftest import make_model

    return TorchBackend(make_model(tiny_tokenizer, context=2048), tiny_tokenizer, "tiny-random-qwen2")


@pytest.fixture(scope="module")
def embedder():
    from clearlm.knowledge.base import default_embedder

    return default_embedder()


@pytest.fixture(scope="module")
def kb(tmp_path_factory, embedder):
    folder = tmp_path_factory.mktemp("docs")
    for name, text in DOCS.items():
        (folder / name).write_text(text)
    base = KnowledgeBase.create("towns", root=tmp_path_factory.mktemp("kb"), embedder=embedder)
    base.add(folder)
    yield base
    base.close()


@pytest.fixture
def db(tmp_path):
    return Database(f"sqlite:///{tmp_path / 'q.db'}")


# ---- checks on the model's reply (pure functions) ----------------------------------------------------


def test_a_supported_key_is_kept_with_the_sentence_it_comes_from():
    text = reply(
        "Who designed the lighthouse of Brisk Harbour?", "Anika Brandt", "designed by the engineer Anika"
    )
    out = check_draft(text, PASSAGE, "towns")
    assert isinstance(out, Checked)
    assert (out.question, out.answer, out.support) == (
        "Who designed the lighthouse of Brisk Harbour?",
        "Anika Brandt",
        1.0,
    )
    quote = "Its lighthouse was designed by the engineer Anika Brandt and first lit in 1931."
    c = out.citation
    assert (
        c["quote"] == quote
        and c["chunk_id"] == "c1"
        and c["path"] == "/docs/harbour.md"
        and c["kb"] == "towns"
    )
    offset = PASSAGE.text.index(
        quote
    )  # offsets into the source document: the passage's start plus the sentence's
    assert (c["start"], c["end"]) == (100 + offset, 100 + offset + len(quote))
    # no usable quote: the sentence holding the key's words is cited
    out = check_draft(reply("When does the harbour freeze?", "in February", "it is cold"), PASSAGE, "towns")
    assert isinstance(out, Checked) and out.citation["quote"] == "The harbour freezes in February."
    # the sentence with the key and the question's words, not the one the model quoted
    glass = Passage("c2", DOCS["glass.md"].split("\n\n")[1], "/docs/glass.md", "Velmora", (), 0, 300)
    quote = "The glassblowers of Velmora use sand from the Orlen river"
    out = check_draft(
        reply("Which river town is known for its blue glass?", "Velmora", quote), glass, "towns"
    )
    assert (
        isinstance(out, Checked)
        and out.citation["quote"] == "Velmora is a river town known for its blue glass."
    )


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (reply("Who designed the lighthouse of Brisk Harbour?", "Gustave Eiffel"), "unsupported"),
        # the prompt's worked example, copied for another passage
        (
            json.dumps(EXAMPLE_REPLY).replace("Brisk Harbour", "Oskel").replace("Anika Brandt", "Lars Holm"),
            "unsupported",
        ),
        (reply("Who designed the lighthouse, Anika Brandt?", "Anika Brandt"), "answer_in_question"),
        ('{"question": "Who designed the lighthouse of Brisk', "invalid_output"),  # cut at the token limit
        (json.dumps({"question": "Who designed it and when?", "quote": ""}), "invalid_output"),
        (reply("Who?", "Anika Brandt"), "invalid_output"),  # too short to be a question
        ("[1, 2]", "invalid_output"),
        (reply("What is the default behavior of the", "noatime"), "invalid_output"),  # closed mid-sentence
        (reply("What is the lighthouse?", " ".join(["the lighthouse"] * 11)), "long_key"),
    ],
)
def test_drafts_that_are_dropped(text, reason):
    out = check_draft(text, PASSAGE, "towns")
    assert isinstance(out, Dropped) and out.reason == reason and out.chunk_id == "c1"


def test_support_and_near_duplicates():
    assert support("the engineer Anika Brandt", PASSAGE.text) == 1.0
    assert support("Anika Brandt, in 1950", PASSAGE.text) == pytest.approx(2 / 3)
    assert support("it", PASSAGE.text) == 0.0  # no content word at all
    assert near_duplicate(
        "Who designed the lighthouse of Brisk Harbour?", "Who designed the Brisk Harbour lighthouse?"
    )
    assert not near_duplicate("Who designed the lighthouse?", "When was the lighthouse first lit?")
    assert isinstance(parse_draft("not json"), str)


def test_the_rubric_is_one_the_loader_reads():
    rubric = quiz_rubric("qz_0123", "towns", "When was the lighthouse first lit?", "in 1931; by Anika Brandt")
    assert rubric.key_points == ("in 1931", "by Anika Brandt") and rubric.max_points == 2
    assert [lv.points for lv in rubric.criteria[0].levels] == [2, 1, 0]
    import yaml

    again = parse_rubric(yaml.safe_dump(rubric.model_dump(mode="json"), sort_keys=False))
    assert again == rubric


# ---- generation through the pipeline ------------------------------------------------------------------


def test_generation_runs_audited_turns_and_accounts_for_every_draft(kb, backend, db):
    gen = QuizGenerator(backend, AuditLog(db), tenant="t1", max_new_tokens=48)
    result = gen.generate(kb, n=2, seed=1)
    assert result.kb == "towns" and result.requested == 2 and result.model == "tiny-random-qwen2"
    assert 1 <= result.tried <= 4 and len(result.questions) + len(result.dropped) == result.tried
    assert all(q.support >= 0.6 for q in result.questions)
    assert sum(result.dropped_counts.values()) == len(result.dropped)
    with db.session() as s:
        rows = s.scalars(select(AuditRow).where(AuditRow.endpoint == "classroom:quiz")).all()
    assert len(rows) == result.tried and {r.tenant for r in rows} == {"t1"}
    assert all(r.request_id.startswith(result.run_id) for r in rows)
    assert all(r.parameters["instructions"].startswith("You write short-answer quiz questions") for r in rows)


def test_bad_input_gives_clear_errors(kb, backend, tmp_path, embedder):
    gen = QuizGenerator(backend)
    for n in (0, 21, True):
        with pytest.raises(InvalidInputError, match="1 to 20 questions"):
            gen.generate(kb, n=n)
    with pytest.raises(InvalidInputError, match="at most 500 characters"):
        gen.generate(kb, n=1, topic="x" * 501)
    with (
        KnowledgeBase.create("empty", root=tmp_path, embedder=embedder) as empty,
        pytest.raises(
            EmptyKnowledgeBaseError, match="holds no documents: add some with `clearlm kb add empty"
        ),
    ):
        gen.generate(empty, n=3)
    with pytest.raises(KnowledgeBaseNotFoundError, match="no knowledge base named 'nosuch'"):
        KnowledgeBase.open("nosuch", root=tmp_path)


def test_all_passages_lists_every_chunk(kb):
    passages = all_passages(kb)
    assert len(passages) == sum(s.chunks for s in kb.sources()) >= 3
    assert {p.title for p in passages} == {"Brisk Harbour", "Velmora glassworks", "Oskel"}


# ---- the teacher's approval -------------------------------------------------------------------------


def result_of(*drafts: tuple[str, str]) -> QuizResult:
    result = QuizResult(
        "qzr_test0001", "towns", None, len(drafts), "tiny-random-qwen2", tried=len(drafts) + 1
    )
    for question, answer in drafts:
        out = check_draft(reply(question, answer), PASSAGE, "towns")
        assert isinstance(out, Checked)
        result.questions.append(out)
    result.dropped.append(Dropped("unsupported", "{}", "c9"))
    return result


def audit_rows(db, endpoint):
    with db.session() as s:
        return s.scalars(select(AuditRow).where(AuditRow.endpoint == endpoint)).all()


def test_approve_with_an_edit_reject_and_audit(db, tmp_path):
    book = QuizBook(db, AuditLog(db))
    first, second = book.save("t1", result_of(("Who designed the lighthouse?", "Anika Brandt"),
                                              ("When was the lighthouse first lit?", "in 1931")), by="k1")  # fmt: skip
    assert first.status == second.status == "pending" and first.rubric["id"] == first.id
    items = ReviewQueue(db).list("t1", kind=QUIZ_APPROVAL)
    assert [i.payload["question_id"] for i in items] == [first.id, second.id]
    assert items[0].payload["citation"]["quote"].startswith("Its lighthouse was designed")
    assert book.held_questions("t1", "towns") == (first.question, second.question)

    done = book.decide(first.id, "t1", "approve", "k1", answer="the engineer Anika Brandt", note="fuller key")
    assert done.status == "approved" and done.answer == "the engineer Anika Brandt"
    assert done.rubric["reference_answer"] == "the engineer Anika Brandt" and done.decision["edited"] == [
        "answer"
    ]
    assert done.decision["generated"] == {
        "question": "Who designed the lighthouse?",
        "answer": "Anika Brandt",
    }
    assert ReviewQueue(db).get(first.review_id, "t1").status == "approved"
    with pytest.raises(QuizQuestionDecidedError, match="already approved by k1"):
        book.decide(first.id, "t1", "reject", "k1")
    with pytest.raises(InvalidInputError, match="reject takes no edits"):
        book.decide(second.id, "t1", "reject", "k1", question="Edited?")
    with pytest.raises(InvalidInputError, match="edited answer key is empty"):
        book.decide(second.id, "t1", "approve", "k1", answer="   ")
    with pytest.raises(QuizQuestionNotFoundError):
        book.decide(second.id, "other-tenant", "approve", "k1")
    rejected = book.decide(second.id, "t1", "reject", "k1", note="too easy")
    assert rejected.status == "rejected" and ReviewQueue(db).get(second.review_id, "t1").status == "dismissed"
    assert book.held_questions("t1", "towns") == (first.question,)

    records = audit_rows(db, "classroom:quiz_decision")
    assert [r.output["status"] for r in records] == ["approved", "rejected"]
    assert (
        records[0].output["answer"] == "the engineer Anika Brandt"
        and records[0].prompt["answer"] == "Anika Brandt"
    )
    assert records[0].parameters["citation"]["chunk_id"] == "c1" and records[0].api_key_id == "k1"
    assert records[1].output["decision"]["note"] == "too easy"

    paths = book.export_rubrics("t1", tmp_path / "rubrics")
    rubrics = load_rubrics(tmp_path / "rubrics")  # what `clearlm classroom grade` reads
    assert [p.stem for p in paths] == [first.id] and list(rubrics) == [first.id]
    assert rubrics[first.id].reference_answer == "the engineer Anika Brandt"
    assert rubrics[first.id].question == "Who designed the lighthouse?"
    with pytest.raises(InvalidInputError, match="no approved quiz question of the knowledge base 'x'"):
        book.export_rubrics("t1", tmp_path / "none", kb="x")


def test_the_review_queue_decides_quiz_questions(db):
    book = QuizBook(db)
    a, b, c = book.save("t1", result_of(("Who designed the lighthouse?", "Anika Brandt"),
                                        ("When was the lighthouse first lit?", "in 1931"),
                                        ("When does the harbour freeze?", "in February")))  # fmt: skip
    queue = ReviewQueue(db)
    queue.decide(a.review_id, "t1", "approve", "k2")
    queue.decide(b.review_id, "t1", "answer", "k2", answer="first lit in 1931")
    queue.decide(c.review_id, "t1", "dismiss", "k2", note="duplicate of an old one")
    assert [(q.status, q.answer, q.decided_by) for q in book.list("t1")] == [
        ("approved", "Anika Brandt", "k2"),
        ("approved", "first lit in 1931", "k2"),
        ("rejected", "in February", "k2"),
    ]
    assert book.list("t1", "approved", kb="towns")[1].rubric["reference_answer"] == "first lit in 1931"
    with pytest.raises(InvalidInputError, match="unknown question status"):
        book.list("t1", "done")


# ---- the real default model -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def llamacpp_default():
    """The real default model on llama.cpp (what the CLI and the server load by default)."""
    from clearlm.models import DEFAULT_MODEL, load_backend

    return load_backend(DEFAULT_MODEL, "llamacpp")


@pytest.mark.integration
@pytest.mark.llamacpp
def test_the_default_model_writes_supported_questions(kb, llamacpp_default, db):
    start = time.monotonic()
    result = QuizGenerator(llamacpp_default, AuditLog(db)).generate(kb, n=2, seed=0)
    seconds = time.monotonic() - start
    print(
        f"\n{result.tried} tried, {len(result.questions)} kept, dropped {result.dropped_counts}, {seconds:.1f} s"
    )
    for q in result.questions:
        print(f"  {q.question} -> {q.answer}  [{q.citation['quote']}]")
    assert len(result.questions) >= 1 and result.tried <= 4
    for q in result.questions:
        assert support(q.answer, q.citation["passage"]) >= 0.6
        assert q.citation["quote"] in q.citation["passage"]
    assert len(audit_rows(db, "classroom:quiz")) == result.tried
