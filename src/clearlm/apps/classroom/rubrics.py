"""Rubrics in YAML: analytic rubrics for short-answer questions, scored on the classroom's 0-2 scale.

A rubric file holds one rubric::

    id: bio-photosynthesis          # letters, digits, '-' and '_'; unique in a folder
    version: 1                      # bump it when the criteria change: grades record it
    subject: biology
    question: What does a plant need for photosynthesis, and what does it make?
    reference_answer: >-
      Light, carbon dioxide and water; it makes glucose (sugar) and releases oxygen.
    key_points:                     # optional: short facts a full answer contains
      - light energy
      - carbon dioxide and water
      - glucose and oxygen
    max_points: 4                   # the sum of every criterion's top level
    criteria:
      - id: inputs
        description: Names what the plant takes in.
        levels:                     # at least two; points unique; the lowest is 0
          - {points: 2, descriptor: "Light, carbon dioxide and water."}
          - {points: 1, descriptor: One or two of the three.}
          - {points: 0, descriptor: None of them or wrong inputs.}
      - id: outputs
        description: Names what the plant makes.
        levels:
          - {points: 2, descriptor: Glucose (or sugar) and oxygen.}
          - {points: 1, descriptor: One of the two.}
          - {points: 0, descriptor: Neither.}
    scale: {0: 0, 1: 2, 2: 4}       # score -> the least total points that earns it

The shape is the analytic rubric (one row per criterion, each with levels that describe performance and
carry points) of Brookhart, *How to Create and Use Rubrics for Formative Assessment and Grading* (ASCD,
2013). The question, the scoring criteria and the reference answer are what the items of Khan Academy's
short-answer scoring study carry (``Khan/llm-saq-scoring``; Frohn, Burleigh & Chen, AIED 2025: question,
criteria for scoring, correct and incorrect answer examples; LLM graders agreed better with humans when
given the criteria), here with levels per criterion instead of their correct/incorrect label.
``scale`` maps a total to the 0-2 score of issue 16 (0: not shown, 1: partly shown, 2: fully shown).

Every check raises :class:`RubricError` (an InvalidInputError) naming the file, the criterion and what
to fix: points that do not add up to ``max_points``, two levels with the same points, a criterion with
fewer than two levels or no 0 level, duplicate criterion ids, a scale that is not 0 -> 0 and increasing.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from clearlm.apps.classroom.yaml_files import parse_model, read_text
from clearlm.errors import InvalidInputError

ID = r"^[A-Za-z0-9][A-Za-z0-9_-]*$"
SCORES = (0, 1, 2)


class RubricError(InvalidInputError):
    """A rubric that cannot be used: bad YAML, a missing or unknown field, points that do not add up, a
    bad level or scale. The message names the file, the criterion and what to fix."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Level(_Model):
    """One level of a criterion: ``points`` (an integer >= 0) and ``descriptor`` (what an answer at this
    level shows, in words a learner can read)."""

    points: int = Field(ge=0)
    descriptor: str = Field(min_length=1)


class Criterion(_Model):
    """One row of an analytic rubric: ``id``, ``description`` (what it judges), ``levels`` (at least
    two, unique points, one of them 0; kept highest first)."""

    id: str = Field(pattern=ID)
    description: str = Field(min_length=1)
    levels: tuple[Level, ...]

    @field_validator("levels")
    @classmethod
    def _levels(cls, levels: tuple[Level, ...]) -> tuple[Level, ...]:
        if len(levels) < 2:
            raise ValueError(
                f"has {len(levels)} level(s); give at least two (the top one and a 0-point one), "
                "each as {points: N, descriptor: ...}"
            )
        points = [lv.points for lv in levels]
        twice = sorted({p for p in points if points.count(p) > 1})
        if twice:
            raise ValueError(
                f"two levels give {twice[0]} points; each level of a criterion has its own points "
                f"(got {points})"
            )
        if 0 not in points:
            raise ValueError(
                f"has no 0-point level (got {points}); add one describing an answer that shows none of it"
            )
        return tuple(sorted(levels, key=lambda lv: -lv.points))

    @property
    def max_points(self) -> int:
        """The top level's points."""
        return self.levels[0].points

    def level(self, points: int) -> Level:
        """The level worth ``points`` (RubricError: no such level)."""
        for lv in self.levels:
            if lv.points == points:
                return lv
        raise RubricError(
            f"criterion {self.id!r} has no level worth {points} points "
            f"(levels: {[lv.points for lv in self.levels]})"
        )


class Rubric(_Model):
    """A rubric (see the module docstring for the file format). ``key_points`` may be empty; ``scale``:
    ``{0: 0, 1: p1, 2: p2}``, the least total points for each score, with 0 < p1 < p2 <= max_points."""

    id: str = Field(pattern=ID)
    version: int = Field(ge=1)
    subject: str = Field(min_length=1)
    question: str = Field(min_length=1)
    reference_answer: str = Field(min_length=1)
    key_points: tuple[str, ...] = ()
    max_points: int = Field(ge=1)
    criteria: tuple[Criterion, ...] = Field(min_length=1)
    scale: dict[int, int]

    @field_validator("key_points")
    @classmethod
    def _key_points(cls, points: tuple[str, ...]) -> tuple[str, ...]:
        if any(not p.strip() for p in points):
            raise ValueError("a key point is blank; remove it or write the fact it stands for")
        return points

    @model_validator(mode="after")
    def _whole(self) -> Rubric:
        ids = [c.id for c in self.criteria]
        twice = sorted({i for i in ids if ids.count(i) > 1})
        if twice:
            raise ValueError(f"criterion {twice[0]!r} is defined twice; criterion ids are unique")
        total = sum(c.max_points for c in self.criteria)
        if total != self.max_points:
            parts = " + ".join(f"{c.id} {c.max_points}" for c in self.criteria)
            raise ValueError(
                f"the points do not add up: max_points is {self.max_points} but the criteria's top "
                f"levels sum to {total} ({parts}); set max_points: {total} or change a criterion's levels"
            )
        self._check_scale()
        return self

    def _check_scale(self) -> None:
        s = self.scale
        if sorted(s) != list(SCORES):
            raise ValueError(
                f"scale maps the scores {sorted(s)}; give exactly 0, 1 and 2, each with the least total "
                f"points that earns it, e.g. {{0: 0, 1: {max(1, self.max_points // 2)}, 2: {self.max_points}}}"
            )
        if not (s[0] == 0 < s[1] < s[2] <= self.max_points):
            raise ValueError(
                f"scale {{0: {s[0]}, 1: {s[1]}, 2: {s[2]}}} is not 0 -> 0 and increasing up to max_points "
                f"{self.max_points}; score 0 starts at 0 points and each higher score needs more points"
            )

    @property
    def criterion_ids(self) -> tuple[str, ...]:
        return tuple(c.id for c in self.criteria)

    def criterion(self, criterion_id: str) -> Criterion:
        """The criterion ``criterion_id`` (RubricError: none by that id)."""
        for c in self.criteria:
            if c.id == criterion_id:
                return c
        raise RubricError(
            f"rubric {self.id!r} has no criterion {criterion_id!r} (criteria: {self.criterion_ids})"
        )

    def score(self, total_points: int) -> int:
        """The 0-2 score for ``total_points`` (the sum of the levels given): the highest score whose
        threshold in ``scale`` it reaches. RubricError: a total outside 0..max_points."""
        if not 0 <= total_points <= self.max_points:
            raise RubricError(
                f"rubric {self.id!r}: a total of {total_points} points is outside 0..{self.max_points}"
            )
        return max(score for score, least in self.scale.items() if total_points >= least)

    def grade(self, points: dict[str, int]) -> int:
        """The 0-2 score for one level per criterion, ``{criterion_id: points}`` (every criterion, each a
        level's points). RubricError: a missing or unknown criterion, points that are no level."""
        missing = [c for c in self.criterion_ids if c not in points]
        unknown = sorted(set(points) - set(self.criterion_ids))
        if missing or unknown:
            raise RubricError(
                f"rubric {self.id!r}: give points for exactly its criteria {self.criterion_ids} "
                f"(missing {missing}, unknown {unknown})"
            )
        return self.score(sum(self.criterion(c).level(p).points for c, p in points.items()))


def parse_rubric(text: str, source: str = "<rubric>") -> Rubric:
    """A checked :class:`Rubric` from YAML text; ``source`` (a path) names it in errors.

    Raises:
        RubricError: bad YAML, not a mapping, a schema error or a failed check (naming the criterion).
    """
    shape = "a rubric file is a mapping with id, version, question, criteria, ..."
    return parse_model(text, source, Rubric, RubricError, shape, {"criteria": "criterion"})


def load_rubric(path: str | Path) -> Rubric:
    """The rubric in the YAML file ``path`` (RubricError: unreadable or invalid, naming the file)."""
    return parse_rubric(read_text(path, RubricError, "rubric"), str(path))


def load_rubrics(folder: str | Path) -> dict[str, Rubric]:
    """Every ``*.yaml``/``*.yml`` rubric in ``folder``, by id, in file-name order (RubricError: a bad
    file, two rubrics with one id, no rubric at all)."""
    rubrics: dict[str, Rubric] = {}
    paths = sorted([*Path(folder).glob("*.yaml"), *Path(folder).glob("*.yml")])
    if not paths:
        raise RubricError(f"no rubric files (*.yaml, *.yml) in {folder}")
    for path in paths:
        rubric = load_rubric(path)
        if rubric.id in rubrics:
            raise RubricError(f"{path}: a second rubric with id {rubric.id!r}; rubric ids are unique")
        rubrics[rubric.id] = rubric
    return rubrics
