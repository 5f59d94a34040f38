"""A class as its teacher sees it: every learner's P(mastery) of every skill of a course (the heatmap of
``/classroom/class``) and one learner's logged attempts, read from the tutor's tables
(``store/tables.py``: classroom_learners, classroom_attempts, classroom_mastery; migration 0010).

A skill a learner has not practised shows its prior (the tenant's fitted BKT parameters, else the
course's: ``Tutor.params``), as the tutor itself counts it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select

from clearlm.apps.classroom.tutor import Tutor
from clearlm.store.db import as_utc
from clearlm.store.tables import AttemptRow, LearnerRow, MasteryRow

MAX_LEARNERS = 1000  # learners of a class read at once
MAX_ATTEMPTS = 500  # attempts of a learner read at once


@dataclass(slots=True, frozen=True)
class LearnerMastery:
    """A row of the heatmap: ``mastery`` (P per skill id, every skill of the course), ``attempts`` (their
    number in this course) and the ``last_attempt`` (UTC)."""

    learner: str
    mastery: dict[str, float]
    attempts: int
    last_attempt: datetime | None


@dataclass(slots=True, frozen=True)
class LoggedAttempt:
    """One logged answer: ``correct`` as the item's check judged it, ``hints_used``, ``seconds`` (None:
    unknown), ``created_at`` (UTC)."""

    item_id: str
    answer: str
    correct: bool
    hints_used: int
    seconds: float | None
    created_at: datetime


def class_mastery(tutor: Tutor, tenant: str, limit: int = MAX_LEARNERS) -> list[LearnerMastery]:
    """Every learner of ``tenant`` who has attempted an item of the tutor's course (at most ``limit``, by
    name), with P(mastery) of every skill of the course."""
    course = tutor.course.id
    priors = {s: p.prior for s, p in tutor.params(tenant).items()}
    with tutor.db.session() as session:
        learners = session.execute(
            select(
                LearnerRow.id,
                LearnerRow.external_id,
                func.count(AttemptRow.id),
                func.max(AttemptRow.created_at),
            )
            .join(AttemptRow, AttemptRow.learner_id == LearnerRow.id)
            .where(LearnerRow.tenant == tenant, AttemptRow.course == course)
            .group_by(LearnerRow.id, LearnerRow.external_id)
            .order_by(LearnerRow.external_id)
            .limit(limit)
        ).all()
        ids = [lid for lid, *_ in learners]
        known: dict[int, dict[str, float]] = {}
        if ids:
            rows = session.execute(
                select(MasteryRow.learner_id, MasteryRow.skill, MasteryRow.p_mastery).where(
                    MasteryRow.learner_id.in_(ids), MasteryRow.course == course
                )
            )
            for lid, skill, p in rows:
                if skill in priors:
                    known.setdefault(lid, {})[skill] = p
    return [
        LearnerMastery(name, {**priors, **known.get(lid, {})}, n, as_utc(last) if last else None)
        for lid, name, n, last in learners
    ]


def attempts_of(tutor: Tutor, tenant: str, learner: str, limit: int = MAX_ATTEMPTS) -> list[LoggedAttempt]:
    """The learner's latest ``limit`` attempts at the tutor's course, newest first (none: an unknown
    learner)."""
    with tutor.db.session() as session:
        rows = session.scalars(
            select(AttemptRow)
            .join(LearnerRow, LearnerRow.id == AttemptRow.learner_id)
            .where(
                LearnerRow.tenant == tenant,
                LearnerRow.external_id == learner,
                AttemptRow.course == tutor.course.id,
            )
            .order_by(AttemptRow.created_at.desc(), AttemptRow.id.desc())
            .limit(limit)
        ).all()
        return [
            LoggedAttempt(r.item, r.answer, r.correct, r.hints_used, r.seconds, as_utc(r.created_at))
            for r in rows
        ]
