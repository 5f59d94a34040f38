"""The chat tutor (``apps/classroom/tutor_chat.py``) and the learner's released grades (``feedback.py``):
the leak check on real item answers (equivalent forms, units, citation brackets), the nudge, a whole
question on the tiny model through the pipeline with a real knowledge base (packaged MiniLM, the example
course's notes): a cited answer, and a reply that would give the open item away replaced by its next hint,
audited and logged; released grades only, newest first, with the teacher's points after an override."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import pytest

from classroom_fixtures import ANSWER, CLOSER, DIRECT, TILT, add_grade, tutor_home
from clearlm.apps.classroom.feedback import learner_view, released_grades
from clearlm.apps.classroom.gradebook import Gradebook
from clearlm.apps.classroom.items import load_course, parse_course
from clearlm.apps.classroom.tutor import Tutor
from clearlm.apps.classroom.tutor_chat import NUDGE, TutorChat, leak, nudge, spelled_fractions
from clearlm.errors import InvalidInputError
from clearlm.knowledge import KnowledgeBase
from clearlm.store import AuditLog, Database

EXAMPLES = Path(__file__).parents[3] / "examples" / "classroom"
COURSE = load_course(EXAMPLES / "fractions.yaml")
SMALL = """id: small
title: Small
skills: [{id: s, name: S}]
items:
  - {id: two, question: "What is 1 + 1?", answer: 2, skills: [s], hints: ["Count on from one."], solution: "1 + 1 = 2"}
"""


def test_the_leak_check_finds_the_answer_in_any_form():
    fa1, fp1, un5 = COURSE.item("fa-1"), COURSE.item("fp-1"), COURSE.item("un-5")
    texts = ["So 1/4 + 1/2 = 3/4 [1].", "That makes 0.75.", "You get 6/8, then simplify.", "Three quarters!"]
    for text in texts:
        assert leak([fa1], [text]) is not None, text
    assert leak([fa1], ["The answer is 3/4."])[1] == "3/4"
    assert leak([fa1], ["Write one half in quarters, then add the numerators [2]."]) is None
    assert leak([COURSE.item("fa-2")], ["Write one half in quarters."])[1] == "one half"
    assert leak([COURSE.item("fa-5")], ["It is one and five twelfths."]) is not None  # 1 5/12
    assert spelled_fractions("2 and three-fifths, a third") == [
        ("2 and three-fifths", Fraction(13, 5)), ("a third", Fraction(1, 3))]  # fmt: skip
    assert leak([fa1], ["1/3 + 1/4 = 7/12 [1]"]) is None  # other numbers: a worked example, not the answer
    assert leak([fp1], ["3/4 is 75% [3]."])[1] == "75%"[:2]  # a number item with a unit: the number counts
    assert leak([un5], ["It is the Millimetre."]) is not None  # text answers: case and form folded
    assert leak([fa1, un5], ["mm is short for it"])[0].id == "un-5"  # every open item is checked
    two = parse_course(SMALL).item("two")
    assert leak([two], ["Count on from one [2]."]) is None  # a citation bracket is not the answer
    assert leak([two], ["It is 2 [1]."]) is not None
    # the passages returned with the reply are checked too
    assert leak([fa1], ["Add the numerators [1].", "Example: 1/4 + 1/2 = 3/4."]) is not None


def test_the_nudge_is_the_next_unseen_hint_and_never_the_answer():
    fa1 = COURSE.item("fa-1")
    assert nudge(fa1, 0) == (NUDGE.format(hint=fa1.hints[0]), 0)
    assert nudge(fa1, 1) == (NUDGE.format(hint=fa1.hints[1]), 1)
    assert nudge(fa1, 9) == (NUDGE.format(hint=fa1.hints[-1]), 1)  # all seen: the last again
    for item in COURSE.items:
        for seen in range(len(item.hints) + 1):
            assert leak([item], [nudge(item, seen)[0]]) is None, item.id
    bare = parse_course(SMALL.replace('hints: ["Count on from one."], ', "")).item("two")
    text, index = nudge(bare, 0)
    assert index is None and leak([bare], [text]) is None


@pytest.fixture(scope="module")
def notes_kb(tmp_path_factory):
    """The example course's knowledge base (its notes, plus a worked example that states fa-1's answer)
    in tenant 'school': ``open_kb(tenant, name)``."""
    from clearlm.knowledge.base import default_embedder

    home = tutor_home(tmp_path_factory.mktemp("home"))
    worked = home / "worked.md"
    worked.write_text(
        "# Worked examples\n\nQuarters and halves: one quarter plus one half. Write the half as two "
        "quarters; then 1/4 + 2/4 = 3/4.\n",
        encoding="utf-8",
    )
    root, embedder = home / "knowledge", default_embedder()
    with KnowledgeBase.open("fractions-kb", root=root, tenant="school", embedder=embedder) as kb:
        kb.add([worked])
    return lambda tenant, name: KnowledgeBase.open(name, root=root, tenant=tenant, embedder=embedder)


@pytest.fixture
def chat(tmp_path, tiny_backend, notes_kb):
    """A TutorChat of the example course on the tiny model, recording to a fresh database's audit log."""
    db = Database(f"sqlite:///{tmp_path / 'clearlm.db'}")
    audit = AuditLog(db)
    yield TutorChat(Tutor(db, COURSE), tiny_backend, audit, open_kb=notes_kb), audit
    db.close()


def test_a_question_is_answered_from_the_notes_with_citations_and_logged(chat):
    tutor, audit = chat
    turn = tutor.ask("school", "ada", "How do I add fractions with different denominators?", "fa-1")
    assert not turn.leaked and turn.item_id == "fa-1" and turn.knowledge_base == "fractions-kb"
    cited = turn.citations
    assert cited["citations"] and cited["passages"]
    assert cited["text"] == turn.reply  # extractive: quoted from the notes, every sentence cited
    first = cited["passages"][cited["citations"][0]["number"] - 1]
    assert first["path"].endswith("adding-fractions.md")
    assert "common denominator" in turn.reply
    (record,) = audit.records(tenant="school")
    assert record.request_id == turn.request_ids[0] and record.endpoint == "classroom:tutor"
    assert record.parameters["retrieval"]["knowledge_base"] == "fractions-kb"
    (logged,) = tutor.history("school", "ada")
    assert (logged.id, logged.reply, logged.citations, logged.leaked) == (turn.id, turn.reply, cited, False)
    assert tutor.history("school", "bob") == [] and tutor.history("other", "ada") == []


def test_a_reply_that_gives_the_open_item_away_becomes_a_hint(chat):
    tutor, audit = chat
    fa1 = COURSE.item("fa-1")
    question = "What is one quarter plus one half?"
    turn = tutor.ask("school", "ada", question, "fa-1", hints_seen=1)
    assert turn.leaked and turn.citations is None
    assert turn.reply == NUDGE.format(hint=fa1.hints[1]) and turn.hint_index == 1
    assert "3/4" not in turn.reply
    records = {r.request_id: r for r in audit.records(tenant="school")}
    assert records[turn.request_ids[0]].endpoint == "classroom:tutor"
    assert records[turn.request_ids[0]].output != turn.reply  # the replaced reply stays in the audit log
    nudged = records[turn.request_ids[1]]
    assert nudged.endpoint == "classroom:tutor_nudge" and nudged.output == turn.reply
    assert tutor.history("school", "ada")[-1].reply == turn.reply
    # leaving the item out does not lift the check: fa-1 is the tutor's next item for this learner
    again = tutor.ask("school", "ada", question)
    assert again.leaked and again.item_id == "fa-1" and again.hint_index == 0
    # once fa-1 is answered, fa-2 (1/3 + 1/6 = 1/2) is next: the worked example's 2/4 gives it away
    tutor.tutor.attempt("school", "ada", "fa-1", "3/4")
    after = tutor.ask("school", "ada", question)
    assert after.leaked and after.item_id == "fa-2"
    assert after.reply == NUDGE.format(hint=COURSE.item("fa-2").hints[0])
    # a question the notes answer without the open item's answer: quoted and cited
    fine = tutor.ask("school", "ada", "How many metres are in a kilometre?", "fa-2")
    assert not fine.leaked and fine.citations["citations"] and "thousand metres" in fine.reply


def test_bad_questions_and_a_course_without_a_knowledge_base(chat):
    tutor, _ = chat
    for bad in ["", "   ", "x" * 2001, "a\x00b"]:
        with pytest.raises(InvalidInputError):
            tutor.ask("school", "ada", bad)
    with pytest.raises(InvalidInputError, match="no item"):
        tutor.ask("school", "ada", "How?", "nope")
    plain = TutorChat(Tutor(tutor.tutor.db, parse_course(SMALL)), tutor.backend)
    with pytest.raises(InvalidInputError, match="knowledge_base: NAME"):
        plain.ask("school", "ada", "How?")
    assert tutor.history("school", "ada") == []  # nothing half-written


def test_a_learner_sees_released_grades_only(tmp_path):
    db = Database(f"sqlite:///{tmp_path / 'clearlm.db'}")
    released = add_grade(db, "ada", "released", minutes=1)
    add_grade(db, "ada", "in_review", minutes=2)
    accepted = add_grade(db, "ada", "released", minutes=3)
    overridden = add_grade(db, "ada", "released", minutes=4)
    add_grade(db, "bob", "released", minutes=5)
    add_grade(db, "ada", "released", tenant="other", minutes=6)
    book = Gradebook(db)
    book.decide(accepted, "school", "accept", "teacher")
    book.decide(overridden, "school", "override", "teacher", criteria={"tilt": 2}, note="orbit implied")

    grades = released_grades(db, "school", "ada")
    assert [g.id for g in grades] == [overridden, accepted, released]  # newest first, no in_review
    assert [g.status for g in grades] == ["overridden", "accepted", "released"]
    assert released_grades(db, "school", "ada", limit=1)[0].id == overridden
    assert released_grades(db, "school", "carl") == []

    view = learner_view(grades[0])
    assert (view["score"], view["points"], view["max_points"], view["changed_by_teacher"]) == (2, 3, 3, True)
    tilt, effect = view["criteria"]
    assert (tilt["points"], tilt["max_points"], tilt["changed_by_teacher"]) == (2, 2, True)
    assert tilt["level"].startswith("The tilted axis together with the yearly orbit")  # the teacher's level
    assert (effect["points"], effect["changed_by_teacher"], effect["feedback"]) == (
        1, False, "Right: more direct sunlight in summer.")  # fmt: skip
    assert [(s["text"], s["effect"]) for s in tilt["evidence"]] == [(TILT, 0.6), (CLOSER, -0.4)]
    for s in tilt["evidence"] + effect["evidence"]:
        assert ANSWER[s["start"] : s["end"]] == s["text"]
    assert effect["evidence"][0]["text"] == DIRECT
    assert "orbit implied" not in str(view) and "confidence" not in view  # the teacher's note stays theirs
    plain = learner_view(grades[2])
    assert (plain["score"], plain["points"], plain["criteria"][0]["level"]) == (
        1, 2, grades[2].grade["criteria"][0]["descriptor"])  # fmt: skip
    in_review = [g for g in book.list("school", status="in_review")][0]
    with pytest.raises(InvalidInputError, match="released grades only"):
        learner_view(in_review)
    with pytest.raises(InvalidInputError):
        released_grades(db, "school", "")
    db.close()


def test_clearlm_classroom_kb_builds_the_course_knowledge_base(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from clearlm.cli import app

    monkeypatch.setenv("CLEARLM_HOME", str(tmp_path))
    course, notes = str(EXAMPLES / "fractions.yaml"), str(EXAMPLES / "fractions-kb" / "metric-units.md")
    done = CliRunner().invoke(app, ["classroom", "kb", course, notes, "--tenant", "school"])
    assert done.exit_code == 0, done.output
    said = " ".join(done.output.split())  # (rich wraps long lines)
    assert "fractions-kb (tenant school) for course fractions: 1 added, 0 replaced, 0 unchanged" in said
    with KnowledgeBase.open("fractions-kb", tenant="school") as kb:
        assert [s.path for s in kb.sources()] == [
            str((EXAMPLES / "fractions-kb" / "metric-units.md").resolve())
        ]
    plain = tmp_path / "plain.yaml"
    plain.write_text(SMALL, encoding="utf-8")
    for args, message in [
        ([str(plain), notes], "names no knowledge base"),
        ([course, str(tmp_path / "missing")], "no such file or folder"),
    ]:
        bad = CliRunner().invoke(app, ["classroom", "kb", *args])
        # (clearlm.cli.main prints a ClearlmError as one line and exits 1; the runner keeps the exception)
        assert isinstance(bad.exception, InvalidInputError) and message in str(bad.exception)


def test_a_generated_answer_is_cited_from_the_same_passages(tmp_path, tiny_tokenizer, notes_kb):
    """knowledge_answer: generate: the model (tiny, random) writes from the numbered passages; whatever it
    says is cited against them (cite_turn, no attribution) and checked like an extracted answer."""
    from clearlm.models.backends.torch_backend import TorchBackend
    from conftest import make_model

    backend = TorchBackend(make_model(tiny_tokenizer, context=4096), tiny_tokenizer, "tiny-random-qwen2")
    course = COURSE.model_copy(update={"knowledge_answer": "generate"})
    db = Database(f"sqlite:///{tmp_path / 'clearlm.db'}")
    chat = TutorChat(Tutor(db, course), backend, AuditLog(db), open_kb=notes_kb, max_new_tokens=12)
    turn = chat.ask("school", "ada", "How do I add fractions with different denominators?", "fa-1")
    assert turn.citations is not None and len(turn.citations["passages"]) == 3
    assert turn.citations["text"] == turn.reply and turn.model == "tiny-random-qwen2"
    (record,) = AuditLog(db).records(tenant="school")
    assert record.parameters["retrieval"]["k"] == 3 and "answer" not in record.parameters  # generated
    assert record.completion_tokens <= 12
    db.close()
