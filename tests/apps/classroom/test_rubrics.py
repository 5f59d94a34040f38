"""Rubrics: the packaged grading rubrics load and map points to the 0-2 score; each bad rubric is a
RubricError naming the file, the criterion and what to fix; the grading set (answers.jsonl) is whole:
every answer's rubric exists, scores are 0-2, every kind is present, the score shares and the split are
as documented. No model is loaded."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import pytest

from clearlm.apps.classroom import Rubric, RubricError, load_rubric, load_rubrics, parse_rubric
from clearlm.errors import InvalidInputError

GRADING = Path(__file__).parents[3] / "benchmarks" / "data" / "grading"
RUBRICS = GRADING / "rubrics"
ANSWERS = GRADING / "answers.jsonl"
KINDS = {
    "correct",
    "partial",
    "wrong",
    "off_topic",
    "empty",
    "manipulation",
    "other_language",
    "long",
    "misspelled",
}

GOOD = """\
id: bio-photosynthesis
version: 2
subject: biology
question: What does a plant need for photosynthesis, and what does it make?
reference_answer: Light, carbon dioxide and water; it makes glucose and oxygen.
key_points: [light, carbon dioxide, water, glucose, oxygen]
max_points: 4
criteria:
  - id: inputs
    description: Names what the plant takes in.
    levels:
      - {points: 1, descriptor: One or two of the three.}
      - {points: 2, descriptor: "Light, carbon dioxide and water."}
      - {points: 0, descriptor: None.}
  - id: outputs
    description: Names what the plant makes.
    levels:
      - {points: 2, descriptor: Glucose and oxygen.}
      - {points: 1, descriptor: One of the two.}
      - {points: 0, descriptor: Neither.}
scale: {0: 0, 1: 2, 2: 4}
"""


@pytest.fixture(scope="module")
def rubrics() -> dict[str, Rubric]:
    return load_rubrics(RUBRICS)


@pytest.fixture(scope="module")
def answers() -> list[dict]:
    return [json.loads(line) for line in ANSWERS.read_text(encoding="utf-8").splitlines() if line.strip()]


def test_a_rubric_parses_with_levels_highest_first_and_maps_points_to_scores():
    r = parse_rubric(GOOD, "good.yaml")
    assert (r.id, r.version, r.subject, r.max_points) == ("bio-photosynthesis", 2, "biology", 4)
    assert r.criterion_ids == ("inputs", "outputs")
    assert [lv.points for lv in r.criterion("inputs").levels] == [2, 1, 0]
    assert r.criterion("inputs").level(2).descriptor == "Light, carbon dioxide and water."
    assert r.key_points == ("light", "carbon dioxide", "water", "glucose", "oxygen")
    assert [r.score(p) for p in range(5)] == [0, 0, 1, 1, 2]
    assert r.grade({"inputs": 2, "outputs": 1}) == 1 and r.grade({"inputs": 2, "outputs": 2}) == 2
    with pytest.raises(RubricError, match=r"outside 0\.\.4"):
        r.score(5)
    with pytest.raises(RubricError, match=r"missing \['outputs'\]"):
        r.grade({"inputs": 2})
    with pytest.raises(RubricError, match="criterion 'outputs' has no level worth 3 points"):
        r.grade({"inputs": 2, "outputs": 3})


BAD = [
    pytest.param(
        ("max_points: 4", "max_points: 5"),
        r"bad\.yaml: the rubric: the points do not add up: max_points is 5 but the criteria's top levels "
        r"sum to 4 \(inputs 2 \+ outputs 2\); set max_points: 4",
        id="points-do-not-add-up",
    ),
    pytest.param(
        ("{points: 1, descriptor: One of the two.}", "{points: 2, descriptor: One of the two.}"),
        r"bad\.yaml: criterion 'outputs' \(criteria\[1\]\), field levels: two levels give 2 points; each "
        r"level of a criterion has its own points \(got \[2, 2, 0\]\)",
        id="duplicate-level-points",
    ),
    pytest.param(
        ("      - {points: 0, descriptor: Neither.}\n", ""),
        r"bad\.yaml: criterion 'outputs' \(criteria\[1\]\), field levels: has no 0-point level \(got \[2, 1\]\)"
        r"; add one",
        id="no-zero-level",
    ),
    pytest.param(
        (
            "    levels:\n      - {points: 2, descriptor: Glucose and oxygen.}\n"
            "      - {points: 1, descriptor: One of the two.}\n      - {points: 0, descriptor: Neither.}\n",
            "    levels: []\n",
        ),
        r"bad\.yaml: criterion 'outputs' \(criteria\[1\]\), field levels: has 0 level\(s\); give at least two",
        id="criterion-without-levels",
    ),
    pytest.param(
        ("  - id: outputs", "  - id: inputs"),
        r"bad\.yaml: the rubric: criterion 'inputs' is defined twice; criterion ids are unique",
        id="duplicate-criterion",
    ),
    pytest.param(
        ("scale: {0: 0, 1: 2, 2: 4}", "scale: {0: 0, 1: 4, 2: 3}"),
        r"bad\.yaml: the rubric: scale \{0: 0, 1: 4, 2: 3\} is not 0 -> 0 and increasing up to max_points 4",
        id="scale-not-increasing",
    ),
    pytest.param(
        ("scale: {0: 0, 1: 2, 2: 4}", "scale: {0: 0, 1: 2, 2: 4, 3: 5}"),
        r"bad\.yaml: the rubric: scale maps the scores \[0, 1, 2, 3\]; give exactly 0, 1 and 2",
        id="scale-wrong-scores",
    ),
    pytest.param(
        ("scale: {0: 0, 1: 2, 2: 4}\n", ""),
        r"bad\.yaml: the rubric, field scale: missing; add it",
        id="scale-missing",
    ),
    pytest.param(
        ("version: 2", "version: 2\ncolour: red"),
        r"bad\.yaml: the rubric, field colour: unknown field; remove it or check its spelling",
        id="unknown-field",
    ),
    pytest.param(
        ("{points: 2, descriptor: Glucose and oxygen.}", "{points: 2, descriptor: Glucose, oxygen.}"),
        r"bad\.yaml: criterion 'outputs' \(criteria\[1\]\), field levels\[0\]\.oxygen\.: unknown field; .*"
        r"a text with a comma inside \{\.\.\.\} needs quotes",
        id="unquoted-comma",
    ),
    pytest.param(
        ("key_points: [light,", "key_points: ['  ', light,"),
        r"bad\.yaml: the rubric, field key_points: a key point is blank",
        id="blank-key-point",
    ),
    pytest.param(
        ("question: What", "question: [What"),
        r"bad\.yaml: not valid YAML",
        id="bad-yaml",
    ),
]


@pytest.mark.parametrize(("edit", "message"), BAD)
def test_a_bad_rubric_is_a_rubric_error_naming_the_file_criterion_and_fix(edit, message):
    old, new = edit
    assert old in GOOD
    with pytest.raises(RubricError, match=message) as info:
        parse_rubric(GOOD.replace(old, new), "bad.yaml")
    assert isinstance(info.value, InvalidInputError)


def test_files_a_list_and_a_folder_with_one_id_twice(tmp_path):
    with pytest.raises(RubricError, match="a rubric file is a mapping"):
        parse_rubric("- just\n- a list\n", "list.yaml")
    with pytest.raises(RubricError, match=r"cannot read the rubric file .*absent\.yaml"):
        load_rubric(tmp_path / "absent.yaml")
    with pytest.raises(RubricError, match="no rubric files"):
        load_rubrics(tmp_path)
    (tmp_path / "a.yaml").write_text(GOOD, encoding="utf-8")
    (tmp_path / "b.yml").write_text(GOOD, encoding="utf-8")
    with pytest.raises(RubricError, match=r"b\.yml: a second rubric with id 'bio-photosynthesis'"):
        load_rubrics(tmp_path)


def test_every_packaged_rubric_loads_under_its_file_name(rubrics):
    assert len(rubrics) == 17
    for path in RUBRICS.glob("*.yaml"):
        rubric = load_rubric(path)
        assert rubric.id == path.stem and rubric.version >= 1
        assert rubric.scale[0] == 0 and rubric.score(rubric.max_points) == 2 and rubric.score(0) == 0
        assert rubric.reference_answer.strip() and rubric.key_points
    subjects = {r.subject for r in rubrics.values()}
    assert len(subjects) >= 9 and {"biology", "physics", "mathematics", "civics"} <= subjects


def test_the_grading_set_is_whole(rubrics, answers):
    assert len(answers) >= 220 and len(answers) == 239
    ids = [a["id"] for a in answers]
    assert len(set(ids)) == len(ids)
    for a in answers:
        assert set(a) == {"id", "rubric", "answer", "score", "kind", "split"}, a["id"]
        assert a["rubric"] in rubrics and a["id"].startswith(a["rubric"] + "-"), a["id"]
        assert a["score"] in (0, 1, 2) and a["kind"] in KINDS and a["split"] in ("dev", "test"), a["id"]
    per_rubric = Counter(a["rubric"] for a in answers)
    assert set(per_rubric) == set(rubrics) and min(per_rubric.values()) >= 14


def test_the_grading_set_has_every_kind_with_its_documented_scores(answers):
    kinds = Counter(a["kind"] for a in answers)
    assert set(kinds) == KINDS and min(kinds.values()) >= 5
    by_kind: dict[str, set[int]] = {}
    for a in answers:
        by_kind.setdefault(a["kind"], set()).add(a["score"])
    # Scores the README promises: no attempt, off-topic and wrong answers score 0; a hidden instruction
    # never earns full marks; misspelled-but-correct answers score as correct.
    assert by_kind["empty"] == by_kind["off_topic"] == by_kind["wrong"] == {0}
    assert by_kind["correct"] == by_kind["misspelled"] == {2}
    assert 2 not in by_kind["manipulation"] and by_kind["other_language"] == {1, 2}
    for a in answers:
        if a["kind"] == "empty":
            assert len(a["answer"].strip()) <= 15, a["id"]
        if a["kind"] == "long":
            assert len(a["answer"]) > 2000, a["id"]
        if a["kind"] == "manipulation":
            assert re.search(r"(?i)grade|score|mark|points|rubric|credit", a["answer"]), a["id"]


def test_the_grading_set_score_shares_and_split(answers):
    n = len(answers)
    shares = {s: c / n for s, c in Counter(a["score"] for a in answers).items()}
    assert 0.25 <= shares[2] <= 0.45 and 0.25 <= shares[1] <= 0.45 and 0.20 <= shares[0] <= 0.40, shares
    dev = [a for a in answers if a["split"] == "dev"]
    assert 0.35 <= len(dev) / n <= 0.45
    for score in (0, 1, 2):  # stratified: each score is in both splits
        assert {a["split"] for a in answers if a["score"] == score} == {"dev", "test"}
    assert {a["rubric"] for a in dev} == {a["rubric"] for a in answers}
