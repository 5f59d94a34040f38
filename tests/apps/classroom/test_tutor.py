"""The tutor over the database, on the sample course: a learner practising a skill sees mastery rise to
the threshold and moves on; a multi-skill item updates both skills; a due review comes before new
practice; state survives a new Tutor on the same database; learners of two tenants are apart; fitting
stores parameters and replays mastery; bad attempts are InvalidInputErrors. SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from clearlm.apps.classroom import tracing
from clearlm.apps.classroom.items import CourseError, load_course
from clearlm.apps.classroom.tutor import Tutor, choose
from clearlm.errors import InvalidInputError
from clearlm.store import Database

COURSE = load_course(Path(__file__).parents[3] / "examples" / "classroom" / "fractions.yaml")
T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
def db(db_url):
    database = Database(db_url)
    yield database
    database.close()


def practise(tutor: Tutor, learner: str, start: datetime, n: int, right: bool = True, tenant="school"):
    """Answer the next item ``n`` times, a minute apart; returns the items and results."""
    seen = []
    for k in range(n):
        now = start + timedelta(minutes=k)
        nxt = tutor.next_item(tenant, learner, now=now)
        answer = nxt.item.answer.accept[0] if right else "no idea"
        seen.append((nxt, tutor.attempt(tenant, learner, nxt.item.id, answer, now=now)))
    return seen


def test_a_learner_practising_a_skill_sees_mastery_rise_then_moves_on(db):
    tutor = Tutor(db, COURSE)
    priors = {"frac-add": 0.2, "frac-percent": 0.1, "percent-of": 0.1, "units": 0.15}
    assert tutor.mastery("school", "ada") == priors
    first = tutor.next_item("school", "ada", now=T0)
    # the not-mastered skill with the highest P(mastery): frac-add; its first item
    assert (first.reason, first.skill, first.item.id, first.due) == ("practice", "frac-add", "fa-1", None)
    steps = practise(tutor, "ada", T0, 3)
    p = [r.mastery["frac-add"] for _, r in steps]
    expected, q = [], 0.2
    for _ in range(3):
        q = tracing.update(q, True, COURSE.skill("frac-add").bkt)
        expected.append(q)
    assert p == pytest.approx(expected, abs=1e-12)
    assert p == pytest.approx([0.6, 0.8903, 0.9774], abs=1e-4)  # by hand: 0.18/0.34 = 0.529 -> 0.6, ...
    assert p[1] < 0.95 <= p[2]  # three right answers: mastered
    assert [n.item.id for n, _ in steps] == ["fa-1", "fa-2", "fa-3"]  # new items of that skill
    assert all(r.correct for _, r in steps)
    assert all(r.mastery["units"] == 0.15 for _, r in steps)
    after = tutor.next_item("school", "ada", now=T0 + timedelta(minutes=3))
    assert (after.reason, after.skill, after.item.id) == ("practice", "units", "un-1")  # the next edge
    assert tutor.mastery("school", "ada") == pytest.approx(priors | {"frac-add": p[2]})


def test_a_wrong_answer_and_a_hinted_right_one_trace_the_same(db):
    tutor = Tutor(db, COURSE)
    wrong = tutor.attempt("school", "bo", "un-1", "25", now=T0)
    assert not wrong.correct and wrong.expected == "250" and "100" in wrong.solution
    units = COURSE.skill("units").bkt  # a wrong answer: posterior 0.0216, plus learning: 0.168
    assert wrong.mastery["units"] == pytest.approx(tracing.update(0.15, False, units))
    assert wrong.mastery["units"] == pytest.approx(0.1683, abs=1e-4)
    hinted = tutor.attempt("school", "cy", "un-1", "250 cm", hints_used=1, now=T0)
    assert hinted.correct and hinted.mastery["units"] == pytest.approx(wrong.mastery["units"])
    assert hinted.next_review > wrong.next_review  # FSRS: Hard waits longer than Again


def test_a_multi_skill_item_updates_both_skills(db):
    tutor = Tutor(db, COURSE)
    result = tutor.attempt("school", "dee", "un-4", "100", now=T0)
    assert result.correct
    assert result.mastery["percent-of"] == pytest.approx(
        tracing.update(0.1, True, COURSE.skill("percent-of").bkt)
    )
    assert result.mastery["units"] == pytest.approx(tracing.update(0.15, True, COURSE.skill("units").bkt))
    assert result.mastery["frac-add"] == 0.2  # untouched
    stored = tutor.mastery("school", "dee")
    assert stored == pytest.approx(result.mastery)
    assert stored["percent-of"] > 0.1 and stored["units"] > 0.15


def test_due_reviews_come_first(db):
    tutor = Tutor(db, COURSE)
    missed = tutor.attempt("school", "eve", "po-3", "12", now=T0)
    assert not missed.correct
    assert missed.next_review == T0 + timedelta(minutes=1)  # FSRS's first learning step
    right = tutor.attempt("school", "eve", "fa-1", "3/4", now=T0)
    assert right.next_review == T0 + timedelta(minutes=10)
    before = tutor.next_item("school", "eve", now=T0 + timedelta(seconds=30))
    assert before.reason == "practice"
    due = tutor.next_item("school", "eve", now=T0 + timedelta(minutes=2))
    assert (due.reason, due.item.id, due.due) == ("review", "po-3", T0 + timedelta(minutes=1))
    both = tutor.next_item("school", "eve", now=T0 + timedelta(hours=1))
    assert both.item.id == "po-3"  # the earliest due first
    assert tutor.due_reviews("school", "eve") == {"po-3": missed.next_review, "fa-1": right.next_review}


def test_state_survives_a_new_tutor_and_tenants_are_apart(db_url):
    first = Database(db_url)
    practise(Tutor(first, COURSE), "fay", T0, 2)
    mastery = Tutor(first, COURSE).mastery("school", "fay")
    first.close()
    again = Database(db_url)
    tutor = Tutor(again, COURSE)
    assert tutor.mastery("school", "fay") == pytest.approx(mastery)
    assert 0.85 < mastery["frac-add"] < 0.95
    nxt = tutor.next_item("school", "fay", now=T0 + timedelta(minutes=2, seconds=30))
    assert nxt.item.id == "fa-3"  # fa-1 and fa-2 were done, their reviews not yet due
    assert tutor.mastery("other-school", "fay") == {s.id: s.bkt.prior for s in COURSE.skills}
    assert tutor.next_item("other-school", "fay", now=T0).item.id == "fa-1"
    again.close()


def test_everything_mastered_and_nothing_due_is_none():
    mastered = {s.id: 0.99 for s in COURSE.skills}
    assert choose(COURSE, mastered, {}, {}, T0) is None
    later = {"fa-1": T0 + timedelta(days=3)}
    assert choose(COURSE, mastered, later, {"fa-1": T0}, T0) is None
    assert choose(COURSE, mastered, later, {"fa-1": T0}, T0 + timedelta(days=4)).item.id == "fa-1"


def test_the_least_recent_item_when_all_of_a_skill_were_tried():
    mastery = {"frac-add": 0.1, "frac-percent": 0.1, "percent-of": 0.1, "units": 0.5}
    tried = {i.id: T0 + timedelta(minutes=k) for k, i in enumerate(COURSE.items) if "units" in i.skills}
    tried["un-3"] = T0 - timedelta(days=1)
    assert choose(COURSE, mastery, {}, tried, T0 + timedelta(hours=1)).item.id == "un-3"


def test_fit_stores_parameters_and_replays_mastery(db):
    tutor = Tutor(db, COURSE)
    for k in range(12):
        learner = f"s{k}"
        for j, item in enumerate(["fa-1", "fa-2", "fa-3", "fp-5", "fa-4"]):
            right = (j + k) % 3 != 0 or j >= 3
            answer = COURSE.item(item).answer.accept[0] if right else "1"
            tutor.attempt("school", learner, item, answer, now=T0 + timedelta(minutes=j))
    fitted = tutor.fit("school", seed=0, num_fits=1)
    assert set(fitted) == {"frac-add", "frac-percent"}
    assert tutor.params("school")["frac-add"].prior == pytest.approx(fitted["frac-add"].prior)
    assert tutor.params("other")["frac-add"] == COURSE.skill("frac-add").bkt
    replay = fitted["frac-add"].prior
    for j in range(5):  # learner s0's answers, every item exercising frac-add
        replay = tracing.update(replay, j % 3 != 0 or j >= 3, fitted["frac-add"])
    assert tutor.mastery("school", "s0")["frac-add"] == pytest.approx(replay, abs=1e-9)
    with pytest.raises(InvalidInputError, match="no logged attempts"):
        tutor.fit("nobody")


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"item_id": "nope"}, CourseError, "has no item 'nope'"),
        ({"hints_used": 3}, InvalidInputError, "item 'fa-1' has 2 hint"),
        ({"hints_used": -1}, InvalidInputError, "give 0 to 2"),
        ({"seconds": -5.0}, InvalidInputError, "seconds is -5.0"),
        ({"answer": "9" * 10_001}, InvalidInputError, "the limit is 10000"),
        ({"learner": "  "}, InvalidInputError, "non-empty id"),
        ({"answer": "3/4\x00"}, InvalidInputError, "NUL character"),
    ],
)
def test_bad_attempts_are_refused_and_log_nothing(db, kwargs, error, message):
    tutor = Tutor(db, COURSE)
    args = {"tenant": "school", "learner": "gil", "item_id": "fa-1", "answer": "3/4"} | kwargs
    with pytest.raises(error, match=message):
        tutor.attempt(**args)
    assert tutor.due_reviews("school", "gil") == {}
