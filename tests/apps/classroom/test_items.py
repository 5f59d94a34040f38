"""Courses: the sample course loads (4 skills, 21 items, every accepted answer checks as right); answers
are normalised as documented (numbers, units, case, whitespace); a hint that gives the answer away, an
unknown skill, a skill with no items and other bad files are CourseErrors naming the file and item. No
model is loaded."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import pytest

from clearlm.apps.classroom.items import CourseError, load_course, parse_course, parse_number
from clearlm.errors import InvalidInputError

SAMPLE = Path(__file__).parents[3] / "examples" / "classroom" / "fractions.yaml"

BASE = """
id: demo
title: Demo
skills:
  - {id: add, name: Adding}
items:
  - id: q1
    question: What is 1/4 + 1/2?
    answer: {accept: ["3/4"], kind: number}
    skills: [add]
    hints: [HINT]
    solution: 1/2 = 2/4, so 3/4.
"""


def course_with(hint: str = "Use quarters.", **replace: str):
    text = BASE.replace("HINT", repr(hint))
    for old, new in replace.items():
        text = text.replace(old, new)
    return parse_course(text, "demo.yaml")


def test_the_sample_course_loads_and_its_answers_check():
    course = load_course(SAMPLE)
    assert [s.id for s in course.skills] == ["frac-add", "frac-percent", "percent-of", "units"]
    assert len(course.items) == 21
    assert course.mastery_threshold == 0.95
    assert all(item.check(a) for item in course.items for a in item.answer.accept)
    assert sum(len(item.skills) > 1 for item in course.items) == 3  # multi-skill items
    for skill in course.skills:  # at least three items per skill
        assert sum(skill.id in item.skills for item in course.items) >= 3, skill.id


def test_no_hint_of_the_sample_course_contains_its_answer():
    course = load_course(SAMPLE)
    assert sum(len(item.hints) for item in course.items) >= 30
    for item in course.items:
        for hint in item.hints:
            assert item.answer.given_away_by(hint) is None, (item.id, hint)


@pytest.mark.parametrize(
    ("text", "unit", "value"),
    [
        ("3/4", None, Fraction(3, 4)),
        (" 0.75 ", None, Fraction(3, 4)),
        ("1 1/2", None, Fraction(3, 2)),
        ("-1 1/2", None, Fraction(-3, 2)),
        ("1,200", None, Fraction(1200)),
        ("250 cm", "cm", Fraction(250)),
        ("250CM", "cm", Fraction(250)),
        ("12.5%", "%", Fraction(25, 2)),
        ("seventy", None, None),
        ("1/0", None, None),
        ("250 m", "cm", None),
        ("", None, None),
    ],
)
def test_numbers_are_read_as_documented(text, unit, value):
    assert parse_number(text, unit) == value


def test_answers_are_normalised_before_comparison():
    course = load_course(SAMPLE)
    assert course.item("fa-1").check("0.75") and course.item("fa-1").check(" 3/4 ")
    assert not course.item("fa-1").check("3/5") and not course.item("fa-1").check("")
    assert course.item("fp-1").check("75%") and course.item("fp-1").check("75")
    assert course.item("un-1").check("250 cm") and not course.item("un-1").check("2.5")
    assert course.item("un-5").check("  MilliMetre. ") and course.item("un-5").check("mm")
    assert not course.item("un-5").check("centimetre")
    tolerant = course_with(**{"kind: number}": "kind: number, tolerance: 0.01}"})
    assert tolerant.items[0].check("0.745") and not tolerant.items[0].check("0.7")


@pytest.mark.parametrize(
    "hint",
    ["The answer is 3/4.", "It is 0.75 of the whole.", "Three quarters: 3/4!", "you get 6/8"],
)
def test_a_hint_that_gives_the_answer_away_is_an_error(hint):
    with pytest.raises(CourseError) as err:
        course_with(hint)
    msg = str(err.value)
    assert msg.startswith("demo.yaml: item 'q1' (items[0]): hint 1 gives the answer away (it contains ")
    assert msg.endswith("without stating it: reword it")


def test_a_text_hint_that_names_the_answer_is_an_error_but_a_part_of_a_word_is_not():
    text = BASE.replace('{accept: ["3/4"], kind: number}', "{accept: [metre]}")
    with pytest.raises(CourseError, match="hint 1 gives the answer away .*'metre'"):
        parse_course(text.replace("HINT", "'It is the METRE.'"), "t.yaml")
    assert parse_course(text.replace("HINT", "'Think of the kilometres.'"), "t.yaml")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"skills: [add]": "skills: [subtract]"}, "item 'q1' exercises the unknown skill 'subtract'"),
        (
            {"  - {id: add, name: Adding}": "  - {id: add, name: Adding}\n  - {id: mul, name: Times}"},
            "skill 'mul' has no items",
        ),
        ({'accept: ["3/4"]': 'accept: ["three quarters"]'}, "'three quarters' is not a number"),
        ({"    solution: 1/2 = 2/4, so 3/4.\n": ""}, "item 'q1' (items[0]), field solution: missing"),
        ({"skills: [add]": "skills: [add]\n    difficulty: 3"}, "field difficulty: unknown field"),
        ({"skills: [add]": "skills: [add, add]"}, "lists a skill twice"),
        ({"title: Demo": "title: Demo\nmastery_threshold: 1.5"}, "mastery_threshold"),
        ({"{id: add, name: Adding}": "{id: add, name: Adding, bkt: {guess: 0.7}}"}, "skill 'add'"),
    ],
)
def test_bad_courses_name_the_file_the_item_and_the_fix(change, message):
    with pytest.raises(CourseError) as err:
        course_with(**change)
    assert str(err.value).startswith("demo.yaml: ")
    assert message in str(err.value)
    assert isinstance(err.value, InvalidInputError)


def test_unreadable_and_non_mapping_files(tmp_path):
    with pytest.raises(CourseError, match="cannot read the course file"):
        load_course(tmp_path / "missing.yaml")
    with pytest.raises(CourseError, match="x.yaml: a course file is a mapping"):
        parse_course("- a list", "x.yaml")
    with pytest.raises(CourseError, match="not valid YAML"):
        parse_course("id: [unclosed", "x.yaml")
    with pytest.raises(CourseError, match="has no item 'nope'"):
        load_course(SAMPLE).item("nope")
