"""The tutor: which item a learner practises next, and what an attempt changes (mastery, review schedule),
with every learner's state in the database (``store/tables.py``: classroom_learners, classroom_attempts,
classroom_mastery, classroom_cards, classroom_skill_params; migration 0010).

The next item (:func:`choose`):

1. a review that is due (its FSRS card's ``due`` has passed; the earliest first): spaced review before new
   practice (``scheduling.py``);
2. else practice at the edge of mastery: the not-yet-mastered skill (P(mastery) < the course's threshold,
   0.95) with the HIGHEST P(mastery), so a learner finishes the skill they are closest to mastering before
   the next (mastery learning; the "edge" of issue 16). OATutor's default heuristic instead takes the item
   with the LOWEST product of its skills' mastery below the threshold (its
   ``problem-select-heuristics/defaultHeuristic.js``); both skip mastered skills. Of that skill's items: one
   never attempted (in course order), else the least recently attempted;
3. else None: every skill is mastered and no review is due.

An attempt updates every skill of the item by BKT (``tracing.py``) with the outcome "right at the first try
without a hint" (ASSISTments' ``correct``: a hint request counts as wrong), and reviews the item's card
(FSRS rating from ``scheduling.rating_for``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from clearlm.apps.classroom import scheduling, tracing
from clearlm.apps.classroom.items import Course, Item
from clearlm.errors import InvalidInputError
from clearlm.store.db import Database, as_utc
from clearlm.store.tables import AttemptRow, LearnerRow, MasteryRow, ReviewCardRow, SkillParamsRow

MAX_ANSWER_CHARS = 10_000


@dataclass(slots=True, frozen=True)
class NextItem:
    """The item to present: ``reason`` "review" (its card is due since ``due``) or "practice" (chosen for
    ``skill`` at the edge of mastery; ``due`` None)."""

    item: Item
    reason: str
    skill: str
    due: datetime | None = None


@dataclass(slots=True, frozen=True)
class AttemptResult:
    """What an attempt changed: ``correct``, the ``expected`` answer and worked ``solution`` to show,
    ``mastery`` (P(mastery) of every skill of the course after it), ``next_review`` (UTC) of the item."""

    item_id: str
    correct: bool
    expected: str
    solution: str
    mastery: dict[str, float]
    next_review: datetime


def choose(
    course: Course,
    mastery: dict[str, float],
    due: dict[str, datetime],
    last_attempt: dict[str, datetime],
    now: datetime,
) -> NextItem | None:
    """The next item by the rule in the module docstring. ``mastery``: P(mastery) per skill (every skill
    of the course); ``due``: each attempted item's next review; ``last_attempt``: when each was last tried."""
    overdue = sorted((d, i) for i, d in due.items() if d <= now)
    if overdue:
        when, item_id = overdue[0]
        item = course.item(item_id)
        return NextItem(item, "review", item.skills[0], when)
    open_skills = [s.id for s in course.skills if mastery[s.id] < course.mastery_threshold]
    if not open_skills:
        return None
    skill = max(open_skills, key=lambda s: mastery[s])  # max keeps the first of equals: course order
    items = [item for item in course.items if skill in item.skills]
    fresh = [item for item in items if item.id not in last_attempt]
    item = fresh[0] if fresh else min(items, key=lambda i: last_attempt[i.id])
    return NextItem(item, "practice", skill)


class Tutor:
    """A course's tutor over the database ``db``; learners are named by ``(tenant, learner)``.

    Args:
        db: the database (tables of migration 0010).
        course: the course (``items.load_course``).
        scheduler: an FSRS scheduler (None: ``scheduling.make_scheduler()``).
    """

    def __init__(self, db: Database, course: Course, scheduler=None) -> None:
        self.db = db
        self.course = course
        self.scheduler = scheduler or scheduling.make_scheduler()

    def params(self, tenant: str) -> dict[str, tracing.BktParams]:
        """Each skill's BKT parameters: those fitted for ``tenant`` (:meth:`fit`), else the course's."""
        out = {s.id: s.bkt for s in self.course.skills}
        with self.db.session() as session:
            rows = session.scalars(
                select(SkillParamsRow).where(
                    SkillParamsRow.tenant == tenant, SkillParamsRow.course == self.course.id
                )
            )
            for r in rows:
                if r.skill in out:
                    out[r.skill] = tracing.BktParams(prior=r.prior, learn=r.learn, guess=r.guess, slip=r.slip)
        return out

    def mastery(self, tenant: str, learner: str) -> dict[str, float]:
        """P(mastery) of every skill of the course for the learner (a skill not practised: its prior)."""
        params = self.params(tenant)
        with self.db.session() as session:
            lid = self._learner(session, tenant, learner, create=False)
            return self._mastery(session, lid, params)

    def due_reviews(self, tenant: str, learner: str) -> dict[str, datetime]:
        """Each attempted item's next review (UTC), by item id."""
        with self.db.session() as session:
            lid = self._learner(session, tenant, learner, create=False)
            return self._due(session, lid)

    def next_item(self, tenant: str, learner: str, now: datetime | None = None) -> NextItem | None:
        """The item the learner should practise now (:func:`choose`); None when everything is mastered
        and nothing is due. ``now``: UTC (None: the clock)."""
        now = _utc(now)
        params = self.params(tenant)
        with self.db.session() as session:
            lid = self._learner(session, tenant, learner, create=False)
            last: dict[str, datetime] = {}
            if lid is not None:
                rows = session.execute(
                    select(AttemptRow.item, AttemptRow.created_at).where(
                        AttemptRow.learner_id == lid, AttemptRow.course == self.course.id
                    )
                )
                for item_id, at in rows:
                    last[item_id] = max(last.get(item_id, as_utc(at)), as_utc(at))
            return choose(
                self.course, self._mastery(session, lid, params), self._due(session, lid), last, now
            )

    def attempt(
        self,
        tenant: str,
        learner: str,
        item_id: str,
        answer: str,
        *,
        hints_used: int = 0,
        seconds: float | None = None,
        now: datetime | None = None,
    ) -> AttemptResult:
        """Check ``answer`` to ``item_id``, log it, update the mastery of EVERY skill of the item and the
        item's review card. ``hints_used``: hints seen before answering (0..len(item.hints)); ``seconds``:
        time taken (>= 0, or None).

        Raises:
            InvalidInputError: an unknown item (CourseError), a bad learner name, hints_used or seconds, an
                answer over 10,000 characters or with a NUL character.
        """
        item = self.course.item(item_id)
        if not 0 <= hints_used <= len(item.hints):
            raise InvalidInputError(
                f"hints_used is {hints_used}; item {item_id!r} has {len(item.hints)} hint(s): give 0 to "
                f"{len(item.hints)}"
            )
        if seconds is not None and not seconds >= 0:
            raise InvalidInputError(f"seconds is {seconds}; give the time taken in seconds (>= 0) or None")
        if "\x00" in answer:  # PostgreSQL's text columns refuse NUL characters
            raise InvalidInputError("the answer contains a NUL character (\\x00); remove it")
        if len(answer) > MAX_ANSWER_CHARS:
            raise InvalidInputError(
                f"the answer has {len(answer)} characters; the limit is {MAX_ANSWER_CHARS}"
            )
        now = _utc(now)
        correct = item.check(answer)
        params = self.params(tenant)
        with self.db.writing() as session:
            lid = self._learner(session, tenant, learner, create=True)
            session.add(
                AttemptRow(
                    learner_id=lid, course=self.course.id, item=item.id, answer=answer, correct=correct,
                    hints_used=hints_used, seconds=seconds, created_at=now,
                )
            )  # fmt: skip
            before = self._mastery(session, lid, params)
            after = tracing.update_skills(before, item.skills, correct and hints_used == 0, params)
            for skill in item.skills:
                row = session.get(MasteryRow, (lid, self.course.id, skill))
                if row is None:
                    row = MasteryRow(learner_id=lid, course=self.course.id, skill=skill, attempts=0)
                    session.add(row)
                row.p_mastery, row.attempts, row.updated_at = after[skill], row.attempts + 1, now
            card_row = session.get(ReviewCardRow, (lid, self.course.id, item.id))
            card = scheduling.card_from_json(card_row.card) if card_row else None
            card = scheduling.review(self.scheduler, card, correct, hints_used, now)
            if card_row is None:
                card_row = ReviewCardRow(learner_id=lid, course=self.course.id, item=item.id)
                session.add(card_row)
            card_row.card, card_row.due = scheduling.card_to_json(card), card.due
        return AttemptResult(item.id, correct, item.answer.accept[0], item.solution, after, card.due)

    def fit(self, tenant: str, *, seed: int = 0, num_fits: int = 5) -> dict[str, tracing.BktParams]:
        """Fit every practised skill's BKT parameters to ``tenant``'s logged attempts (pyBKT,
        ``tracing.fit_parameters``), store them, and recompute each learner's mastery with them.

        Raises:
            InvalidInputError: no attempts logged for this course and tenant.
        """
        with self.db.session() as session:
            attempts = session.execute(
                select(AttemptRow.learner_id, AttemptRow.item, AttemptRow.correct, AttemptRow.hints_used)
                .join(LearnerRow, LearnerRow.id == AttemptRow.learner_id)
                .where(LearnerRow.tenant == tenant, AttemptRow.course == self.course.id)
                .order_by(AttemptRow.created_at, AttemptRow.id)
            ).all()
            rows = [
                (lid, skill, bool(correct) and hints == 0)
                for lid, item_id, correct, hints in attempts
                for skill in self.course.item(item_id).skills
            ]
        fitted = tracing.fit_parameters(rows, seed=seed, num_fits=num_fits)  # outside the write lock
        now = _utc(None)
        with self.db.writing() as session:
            for skill, p in fitted.items():
                row = session.get(SkillParamsRow, (tenant, self.course.id, skill)) or SkillParamsRow(
                    tenant=tenant, course=self.course.id, skill=skill
                )
                row.prior, row.learn, row.guess, row.slip = p.prior, p.learn, p.guess, p.slip
                row.n_attempts, row.fitted_at = sum(r[1] == skill for r in rows), now
                session.add(row)
            replayed: dict[tuple[int, str], float] = {}
            for lid, skill, outcome in rows:
                p = replayed.get((lid, skill), fitted[skill].prior)
                replayed[(lid, skill)] = tracing.update(p, outcome, fitted[skill])
            for (lid, skill), p in replayed.items():
                row = session.get(MasteryRow, (lid, self.course.id, skill))
                if row is not None:
                    row.p_mastery = p
        return fitted

    # -- helpers --

    def _learner(self, session: Session, tenant: str, learner: str, *, create: bool) -> int | None:
        if not learner or not learner.strip() or len(learner) > 128:
            raise InvalidInputError("a learner is named by a non-empty id of at most 128 characters")
        lid = session.scalar(
            select(LearnerRow.id).where(LearnerRow.tenant == tenant, LearnerRow.external_id == learner)
        )
        if lid is None and create:
            row = LearnerRow(tenant=tenant, external_id=learner, created_at=_utc(None))
            session.add(row)
            session.flush()
            lid = row.id
        return lid

    def _mastery(self, session: Session, lid: int | None, params: dict) -> dict[str, float]:
        out = {s.id: params[s.id].prior for s in self.course.skills}
        if lid is not None:
            rows = session.scalars(
                select(MasteryRow).where(MasteryRow.learner_id == lid, MasteryRow.course == self.course.id)
            )
            out.update({r.skill: r.p_mastery for r in rows if r.skill in out})
        return out

    def _due(self, session: Session, lid: int | None) -> dict[str, datetime]:
        if lid is None:
            return {}
        rows = session.execute(
            select(ReviewCardRow.item, ReviewCardRow.due).where(
                ReviewCardRow.learner_id == lid, ReviewCardRow.course == self.course.id
            )
        )
        known = {i.id for i in self.course.items}
        return {item: as_utc(due) for item, due in rows if item in known}


def _utc(when: datetime | None) -> datetime:
    if when is None:
        return datetime.now(UTC)
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
