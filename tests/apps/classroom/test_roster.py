"""The class view of the tutor's tables (``roster.py``), on the sample course: the heatmap's rows are the
learners of the tenant who attempted the course, by name, with every skill (an unpractised one at its
prior) equal to what the tutor says; a learner's attempts come newest first with their hints; another
tenant's learners are not there. SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from clearlm.apps.classroom import roster
from clearlm.apps.classroom.items import load_course
from clearlm.apps.classroom.tutor import Tutor
from clearlm.store import Database

COURSE = load_course(Path(__file__).parents[3] / "examples" / "classroom" / "fractions.yaml")
T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
def tutor(db_url):
    database = Database(db_url)
    yield Tutor(database, COURSE)
    database.close()


def test_the_class_and_a_learners_attempts(tutor):
    tutor.attempt("school", "zoe", "fa-1", "3/4", now=T0)
    tutor.attempt("school", "zoe", "fa-2", "1/3", hints_used=2, now=T0 + timedelta(minutes=1))
    tutor.attempt("school", "amir", "un-1", "no", now=T0 + timedelta(minutes=2))
    tutor.attempt("other", "eve", "fa-1", "3/4", now=T0)
    tutor.mastery("school", "nobody")  # never attempted: not a row

    rows = roster.class_mastery(tutor, "school")
    assert [(r.learner, r.attempts) for r in rows] == [("amir", 1), ("zoe", 2)]
    for r in rows:
        assert r.mastery == tutor.mastery("school", r.learner)
    assert rows[1].mastery["units"] == 0.15  # not practised: the prior
    assert rows[1].mastery["frac-add"] == pytest.approx(
        0.2842, abs=1e-4
    )  # 0.2 -> 0.6 (right) -> 0.284 (hinted)
    assert rows[1].last_attempt == T0 + timedelta(minutes=1)
    assert [r.learner for r in roster.class_mastery(tutor, "other")] == ["eve"]
    assert roster.class_mastery(tutor, "school", limit=1)[0].learner == "amir"

    log = roster.attempts_of(tutor, "school", "zoe")
    assert [(a.item_id, a.answer, a.correct, a.hints_used) for a in log] == [
        ("fa-2", "1/3", False, 2),
        ("fa-1", "3/4", True, 0),
    ]
    assert log[0].created_at == T0 + timedelta(minutes=1)
    assert roster.attempts_of(tutor, "other", "zoe") == [] and roster.attempts_of(tutor, "school", "x") == []
