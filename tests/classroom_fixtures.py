"""What the classroom's tutor and feedback tests share: a server home with the example course and its
knowledge base built (:func:`tutor_home`), and grades stored as ``Gradebook.grade`` stores them (a
GradeRow with the Grade's JSON and the rubric; :func:`add_grade`), to test what a learner sees without
running the grader: the rubric is a real one of the benchmark (geo-seasons), the evidence spans are
offsets into the answer."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from pathlib import Path

from clearlm.apps.classroom.items import load_course
from clearlm.apps.classroom.rubrics import load_rubric
from clearlm.store.tables import GradeRow

EXAMPLES = Path(__file__).parents[1] / "examples" / "classroom"
NO_KB_COURSE = """id: plain
title: Plain
skills: [{id: s, name: S}]
items:
  - {id: two, question: "What is 1 + 1?", answer: 2, skills: [s], solution: "1 + 1 = 2"}
"""
RUBRIC = load_rubric(
    Path(__file__).parents[1] / "benchmarks" / "data" / "grading" / "rubrics" / "geo-seasons.yaml"
)
ANSWER = "The Earth's axis is tilted. In summer we get more direct sunlight. It is closer to the Sun."
TILT = "The Earth's axis is tilted."
DIRECT = "In summer we get more direct sunlight."
CLOSER = "It is closer to the Sun."


def span(text: str, effect: float) -> dict:
    start = ANSWER.index(text)
    return {"text": text, "start": start, "end": start + len(text), "effect": effect}


def add_grade(
    db, learner: str, status: str, *, tenant: str = "school", answer_id: str | None = None, minutes: int = 0
) -> str:
    """Store a grade of ANSWER for ``learner`` with ``status`` (``in_review`` gets a review id); returns
    its id. Criterion tilt: 1 point (evidence: TILT +0.6, CLOSER -0.4); effect: 1 point (DIRECT +0.5)."""
    grade_id = "grd_" + secrets.token_hex(8)
    criteria = [
        {
            "criterion_id": "tilt", "points": 1, "descriptor": RUBRIC.criterion("tilt").level(1).descriptor,
            "probabilities": {"2": 0.2, "1": 0.7, "0": 0.1}, "expected_points": 1.1,
            "feedback": "You name the tilt; link it to the yearly orbit.",
            "evidence": [span(TILT, 0.6), span(CLOSER, -0.4)],
        },
        {
            "criterion_id": "effect", "points": 1, "descriptor": RUBRIC.criterion("effect").level(1).descriptor,
            "probabilities": {"1": 0.8, "0": 0.2}, "expected_points": 0.8,
            "feedback": "Right: more direct sunlight in summer.",
            "evidence": [span(DIRECT, 0.5)],
        },
    ]  # fmt: skip
    grade = {
        "rubric_id": RUBRIC.id, "rubric_version": RUBRIC.version, "model": "tiny", "grading_id": "g1",
        "score": 1, "probabilities": [0.1, 0.7, 0.2], "confidence": 0.7, "criteria": criteria,
        "findings": [], "needs_review": status == "in_review", "review_reasons": ["partial score"],
        "rubric": RUBRIC.model_dump(mode="json"),
    }  # fmt: skip
    row = GradeRow(
        id=grade_id, tenant=tenant, rubric_id=RUBRIC.id, rubric_version=RUBRIC.version,
        answer_id=answer_id or grade_id, learner=learner, answer=ANSWER, score=1, final_score=1,
        confidence=0.7, grade=grade, status=status, model="tiny", grading_id="g1",
        review_id="rev_x" if status == "in_review" else None,
        created_at=datetime(2026, 12, 1, tzinfo=UTC) + timedelta(minutes=minutes),
    )  # fmt: skip
    with db.session.begin() as session:
        session.add(row)
    return grade_id


_BUILT: list[Path] = []  # the knowledge folder built once per test process, copied for each home


def tutor_home(home: Path, tenant: str = "school") -> Path:
    """``home`` (set it as CLEARLM_HOME) with the example course, a course without a knowledge base
    (``plain``) and one whose knowledge base is missing (``lost``), in ``home/classroom``; the example
    course's knowledge base built from its notes in ``tenant`` (the packaged MiniLM; built once per
    process with ``build_knowledge_base``, then copied)."""
    import os
    import shutil
    import tempfile

    from clearlm.apps.classroom.tutor_chat import build_knowledge_base

    folder = home / "classroom"
    folder.mkdir(parents=True)
    text = (EXAMPLES / "fractions.yaml").read_text(encoding="utf-8")
    (folder / "fractions.yaml").write_text(text, encoding="utf-8")
    (folder / "plain.yaml").write_text(NO_KB_COURSE, encoding="utf-8")
    lost = NO_KB_COURSE.replace("id: plain", "id: lost").replace(
        "title: Plain", "title: Lost\nknowledge_base: gone"
    )
    (folder / "lost.yaml").write_text(lost, encoding="utf-8")
    if not _BUILT or tenant != "school":
        built = Path(tempfile.mkdtemp(prefix="clearlm-tutor-kb-"))
        before = os.environ.get("CLEARLM_HOME")
        os.environ["CLEARLM_HOME"] = str(built)
        try:
            build_knowledge_base(
                load_course(folder / "fractions.yaml"), [EXAMPLES / "fractions-kb"], tenant=tenant
            )
        finally:
            if before is None:
                del os.environ["CLEARLM_HOME"]
            else:
                os.environ["CLEARLM_HOME"] = before
        if tenant != "school":
            shutil.copytree(built / "knowledge", home / "knowledge")
            return home
        _BUILT.append(built)
    shutil.copytree(_BUILT[0] / "knowledge", home / "knowledge")
    return home


def tutor_home_with_worked_example(home: Path) -> Path:
    """:func:`tutor_home` plus a worked example in the knowledge base that states fa-1's answer (3/4):
    a passage the tutor's leak check must catch."""
    from clearlm.knowledge import KnowledgeBase

    home = tutor_home(home)
    worked = home / "worked.md"
    worked.write_text(
        "# Worked examples\n\nOne quarter plus one half is 1/4 + 2/4 = 3/4.\n", encoding="utf-8"
    )
    with KnowledgeBase.open("fractions-kb", root=home / "knowledge", tenant="school") as kb:
        kb.add([worked])
    return home
