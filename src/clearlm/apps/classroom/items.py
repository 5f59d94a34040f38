"""Courses in YAML: the skills a course teaches and the items (questions) that exercise them.

A course file::

    id: fractions                     # letters, digits, '-' and '_'
    title: Fractions, percentages and units
    mastery_threshold: 0.95           # optional: P(mastery) at which a skill counts as mastered
    knowledge_base: fractions-kb      # optional: the knowledge base the chat tutor answers from
    knowledge_answer: extract         # optional: extract (quoted sentences, default) or generate
    skills:
      - id: frac-add
        name: Adding fractions
        bkt: {prior: 0.2, learn: 0.2, guess: 0.2, slip: 0.1}   # optional starting BKT parameters
    items:
      - id: fa-1
        question: What is 1/4 + 1/2?
        answer: {accept: ["3/4"], kind: number}    # or a bare number / text: `answer: 0.75`
        skills: [frac-add]            # one or more; every skill is traced (tracing.py)
        hints:                        # ordered, most general first; none may give the answer away
          - Write both fractions with the same denominator.
        solution: 1/2 = 2/4, so 1/4 + 2/4 = 3/4.

An answer is ``accept`` (one or more accepted answers), ``kind`` (``number``: values compared exactly, or
within ``tolerance``; ``3/4``, ``0.75``, ``1 1/2``, ``1,000`` and ``-2`` read as numbers, and the item's
``unit`` (``cm``, ``%``) may be written or left out; ``text``: compared after Unicode NFKC, case folding,
collapsing whitespace and dropping a final full stop). The items follow OATutor's content (a problem with
its knowledge components, ordered hints and a worked solution; Pardos et al., CHI 2023).

Loading checks the whole course and raises :class:`CourseError` (an InvalidInputError) naming the file,
the item and what to fix: unknown fields, an item's unknown skill, duplicate ids, a skill with no items,
an answer that is not a number for a number item, and a hint that gives the answer away (it contains an
accepted answer, normalised as the learner's answer would be, or for a number item any number of the
same value).
"""

from __future__ import annotations

import re
import unicodedata
from fractions import Fraction
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from clearlm.apps.classroom.tracing import BktParams
from clearlm.apps.classroom.yaml_files import parse_model, read_text
from clearlm.errors import InvalidInputError

ID = r"^[A-Za-z0-9][A-Za-z0-9_-]*$"
_NUMBER = r"[-+]?\d+(?:,\d{3})*(?:\.\d+)?(?:\s+\d+/\d+|/\d+)?|[-+]?\.\d+"
_NUMBER_IN_TEXT = re.compile(rf"(?<![\w./])(?:{_NUMBER})(?![\w/])")


class CourseError(InvalidInputError):
    """A course file that cannot be used; the message names the file, the item or skill, and the fix."""


def normalise_text(text: str) -> str:
    """``text`` as answers are compared: NFKC, case-folded, whitespace collapsed, a final '.' dropped."""
    text = " ".join(unicodedata.normalize("NFKC", text).casefold().split())
    return text.removesuffix(".").rstrip()


def parse_number(text: str, unit: str | None = None) -> Fraction | None:
    """The value of ``text`` (``3/4``, ``0.75``, ``1 1/2``, ``1,000``, ``-2``; ``unit`` may follow), or
    None when it is not one number."""
    text = normalise_text(text)
    if unit:
        text = text.removesuffix(normalise_text(unit)).rstrip()
    if not re.fullmatch(_NUMBER, text):
        return None
    text = text.replace(",", "")
    whole, _, frac = text.partition(" ")
    try:
        if frac:
            value = Fraction(frac)
            return Fraction(whole) - value if whole.startswith("-") else Fraction(whole) + value
        return Fraction(text)
    except (ValueError, ZeroDivisionError):
        return None


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Answer(_Model):
    """What counts as right: ``accept`` (accepted answers), ``kind`` (``number`` or ``text``), for numbers
    an optional ``unit`` and an absolute ``tolerance`` (0: exact)."""

    accept: tuple[str, ...] = Field(min_length=1)
    kind: str = Field("text", pattern="^(number|text)$")
    unit: str | None = None
    tolerance: float = Field(0.0, ge=0)

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data):  # `answer: 0.75` / `answer: metre`; YAML numbers in accept as text
        if isinstance(data, int | float | str) and not isinstance(data, bool):
            data = {"accept": [data], "kind": "text" if isinstance(data, str) else "number"}
        if isinstance(data, dict) and not isinstance(data.get("accept", []), list):
            data = {**data, "accept": [data["accept"]]}
        if isinstance(data, dict) and isinstance(data.get("accept"), list):
            num = [
                str(a) if isinstance(a, int | float) and not isinstance(a, bool) else a
                for a in data["accept"]
            ]
            data = {**data, "accept": num}
        return data

    @model_validator(mode="after")
    def _check(self) -> Answer:
        if any(not normalise_text(a) for a in self.accept):
            raise ValueError("an accepted answer is blank; remove it or write the answer")
        if self.kind == "number":
            bad = [a for a in self.accept if parse_number(a, self.unit) is None]
            if bad:
                raise ValueError(
                    f"{bad[0]!r} is not a number; a number item accepts numbers such as 3/4, 0.75 or "
                    "1 1/2 (give the unit in `unit`), or use kind: text"
                )
        elif self.unit is not None or self.tolerance:
            raise ValueError("unit and tolerance apply to kind: number only; remove them or set kind: number")
        return self

    def values(self) -> list[Fraction]:
        """The accepted numbers (kind number)."""
        return [v for a in self.accept if (v := parse_number(a, self.unit)) is not None]

    def matches(self, response: str) -> bool:
        """Whether the learner's ``response`` is one of the accepted answers (see the module docstring)."""
        if self.kind == "number":
            value = parse_number(response, self.unit)
            return value is not None and any(abs(float(value - v)) <= self.tolerance for v in self.values())
        return normalise_text(response) in {normalise_text(a) for a in self.accept}

    def given_away_by(self, text: str) -> str | None:
        """The accepted answer that ``text`` (a hint) contains, or None: the normalised answer as a whole
        phrase, or for numbers any number in ``text`` of an accepted value."""
        norm = normalise_text(text)
        for a in self.accept:
            if re.search(rf"(?<!\w){re.escape(normalise_text(a))}(?!\w)", norm):
                return a
        if self.kind == "number":
            for token in _NUMBER_IN_TEXT.findall(norm):
                value = parse_number(token)
                if value is not None and self.matches(str(value)):
                    return token
        return None


class Skill(_Model):
    """A skill (knowledge component): ``id``, ``name``, optional starting ``bkt`` parameters."""

    id: str = Field(pattern=ID, max_length=64)
    name: str = Field(min_length=1)
    bkt: BktParams = BktParams()


class Item(_Model):
    """A question: ``id``, ``question``, ``answer``, ``skills`` (ids, one or more), ``hints`` (ordered),
    ``solution`` (a worked solution, shown after the attempt)."""

    id: str = Field(pattern=ID, max_length=64)
    question: str = Field(min_length=1)
    answer: Answer
    skills: tuple[str, ...] = Field(min_length=1)
    hints: tuple[str, ...] = ()
    solution: str = Field(min_length=1)

    @field_validator("skills")
    @classmethod
    def _skills(cls, skills: tuple[str, ...]) -> tuple[str, ...]:
        if len(set(skills)) != len(skills):
            raise ValueError(f"lists a skill twice ({list(skills)}); list each skill once")
        return skills

    @model_validator(mode="after")
    def _hints(self) -> Item:
        for n, hint in enumerate(self.hints, 1):
            if not hint.strip():
                raise ValueError(f"hint {n} is blank; remove it or write the hint")
            leak = self.answer.given_away_by(hint)
            if leak is not None:
                raise ValueError(
                    f"hint {n} gives the answer away (it contains {leak!r}); a hint leads the learner "
                    "toward the answer without stating it: reword it"
                )
        return self

    def check(self, response: str) -> bool:
        """Whether ``response`` is right (Answer.matches)."""
        return self.answer.matches(response)


class Course(_Model):
    """A course: ``id``, ``title``, ``mastery_threshold`` (0.95: Corbett & Anderson's mastery criterion),
    ``skills`` and ``items`` (in the file's order); ``knowledge_base`` (a knowledge base's name, None:
    no chat tutor) and ``knowledge_answer`` (how the chat tutor answers from it: ``extract`` or
    ``generate``, as ``clearlm.pipeline.Retrieval.answer``; ``tutor_chat.py``)."""

    id: str = Field(pattern=ID, max_length=64)
    title: str = Field(min_length=1)
    mastery_threshold: float = Field(0.95, gt=0, lt=1)
    knowledge_base: str | None = Field(None, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
    knowledge_answer: str = Field("extract", pattern="^(extract|generate)$")
    skills: tuple[Skill, ...] = Field(min_length=1)
    items: tuple[Item, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _whole(self) -> Course:
        for kind, ids in (("skill", [s.id for s in self.skills]), ("item", [i.id for i in self.items])):
            twice = sorted({i for i in ids if ids.count(i) > 1})
            if twice:
                raise ValueError(f"{kind} {twice[0]!r} is defined twice; {kind} ids are unique")
        known = {s.id for s in self.skills}
        for item in self.items:
            unknown = [s for s in item.skills if s not in known]
            if unknown:
                raise ValueError(
                    f"item {item.id!r} exercises the unknown skill {unknown[0]!r}; define it under "
                    f"skills or use one of {sorted(known)}"
                )
        used = {s for item in self.items for s in item.skills}
        idle = [s.id for s in self.skills if s.id not in used]
        if idle:
            raise ValueError(f"skill {idle[0]!r} has no items; add an item that exercises it or remove it")
        return self

    def item(self, item_id: str) -> Item:
        """The item ``item_id`` (CourseError: none by that id)."""
        for item in self.items:
            if item.id == item_id:
                return item
        raise CourseError(f"course {self.id!r} has no item {item_id!r}; use one of its item ids")

    def skill(self, skill_id: str) -> Skill:
        """The skill ``skill_id`` (CourseError: none by that id)."""
        for skill in self.skills:
            if skill.id == skill_id:
                return skill
        raise CourseError(f"course {self.id!r} has no skill {skill_id!r}; use one of its skill ids")


def parse_course(text: str, source: str = "<course>") -> Course:
    """A checked :class:`Course` from YAML text; ``source`` (a path) names it in errors.

    Raises:
        CourseError: bad YAML, not a mapping, a schema error or a failed check (naming the item).
    """
    shape = "a course file is a mapping with id, title, skills and items"
    return parse_model(text, source, Course, CourseError, shape, {"items": "item", "skills": "skill"})


def load_course(path: str | Path) -> Course:
    """The course in the YAML file ``path`` (CourseError: unreadable or invalid, naming the file)."""
    return parse_course(read_text(path, CourseError, "course"), str(path))


def load_courses(folder: str | Path) -> dict[str, Course]:
    """Every ``*.yaml``/``*.yml`` course in ``folder``, by id, in file-name order; an empty dict for a
    missing folder (CourseError: a bad file, two courses with one id)."""
    courses: dict[str, Course] = {}
    for path in sorted([*Path(folder).glob("*.yaml"), *Path(folder).glob("*.yml")]):
        course = load_course(path)
        if course.id in courses:
            raise CourseError(f"{path}: a second course with id {course.id!r}; course ids are unique")
        courses[course.id] = course
    return courses
