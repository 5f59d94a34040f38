"""The teacher's grading page in headless Chromium against a real server: a grade in review shows its
answer with each criterion's evidence spans highlighted (effect in points), a hostile answer stays text,
the teacher overrides a criterion's points with the form (the rubric's scale gives the score), the CSV
link downloads the rubric's grades; axe finds nothing serious. The grades are made by a stand-in grader
with known evidence (the grader itself is tested in tests/apps/classroom)."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from types import SimpleNamespace

import pytest
from playwright.sync_api import expect

from clearlm.apps.classroom import load_rubric
from clearlm.apps.classroom.gradebook import Gradebook
from clearlm.apps.classroom.gradebook_io import AnswerIn
from clearlm.apps.classroom.grading import CriterionGrade, Grade

RUBRIC = load_rubric(
    Path(__file__).parents[2] / "benchmarks" / "data" / "grading" / "rubrics" / "bio-photosynthesis.yaml"
)
XSS = '<img src=x onerror="document.title=1">'
ANSWER = f"Plants need sunlight and water. They make glucose. {XSS}"


class StandIn:
    """Grades every answer 2 with evidence at fixed places; ``review`` says whether it asks for review."""

    def __init__(self, review: bool) -> None:
        self.review = review
        self.reader = SimpleNamespace(tenant="default")

    def grade(self, rubric, answer: str, evidence: bool = False) -> Grade:
        def span(text: str, effect: float) -> dict:
            at = answer.index(text)
            return {"text": text, "start": at, "end": at + len(text), "effect": effect}

        probs = {2: 0.7, 1: 0.2, 0: 0.1}
        criteria = [
            CriterionGrade("inputs", 2, "all three", probs, 1.6, "Good.", [span("sunlight and water", 0.8)]),
            CriterionGrade(
                "outputs",
                2,
                "both",
                probs,
                1.4,
                "Good.",
                [span(XSS, -0.25) if XSS in answer else span("glucose", 0.5)],
            ),
        ]
        reasons = ["partial score"] if self.review else []
        return Grade(rubric.id, rubric.version, "stand-in", "grade-0", 2, (0.1, 0.2, 0.7), 0.7, criteria,
                     needs_review=self.review, review_reasons=reasons)  # fmt: skip


@pytest.fixture
def classroom(serve, tiny_backend):
    server = serve(tiny_backend)
    _, admin = server.state.keys.create("teacher", tenant="acme", scope="admin")
    Gradebook(server.state.db, StandIn(review=True)).grade("acme", RUBRIC, AnswerIn("a1", "ann", ANSWER))
    Gradebook(server.state.db, StandIn(review=False)).grade(
        "acme", RUBRIC, AnswerIn("a2", "bob", "Plants need sunlight and water. It makes glucose.")
    )
    return server, admin


def test_a_teacher_sees_evidence_overrides_a_grade_and_exports(classroom, open_page):
    server, admin = classroom
    page = open_page(server)
    page.sign_in(admin, "/classroom/grading")
    tab = page.tab
    items = tab.locator("article.grade-item")
    items.first.wait_for()
    assert items.count() == 1  # the review queue's grades only
    item = items.first
    assert item.get_by_role("heading", level=2).inner_text() == "ann · a1"
    inputs = item.locator('section[data-criterion="inputs"]')
    assert inputs.locator("mark.up").inner_text().startswith("sunlight and water")
    assert "+0.80 points" in inputs.locator("mark.up").inner_text()
    outputs = item.locator('section[data-criterion="outputs"]')
    assert outputs.locator("mark.down").inner_text().startswith(XSS)  # the hostile span, shown as text
    assert "−0.25 points" in outputs.locator("mark.down").inner_text()
    assert tab.locator("#grading-items img, #grading-items script").count() == 0
    assert tab.title() == "Grading · clearlm"
    page.assert_accessible()
    page.screenshot("classroom-grading")

    # Override without choosing anything: refused on the page; then inputs -> 1 point (1 + 2 = 3: score 1).
    item.get_by_role("button", name="Override").click()
    expect(tab.locator("#status")).to_contain_text("Choose a new score")
    item.get_by_label("Points for inputs").select_option("1")
    item.get_by_label("Note").fill("only two inputs named")
    item.get_by_role("button", name="Override").click()
    expect(tab.locator("#status")).to_contain_text("ann (a1): overridden, score 1")
    expect(tab.locator("#grading-items")).to_contain_text("No grade waits for a teacher.")
    [g] = Gradebook(server.state.db).list("acme", status="overridden")
    assert (g.answer_id, g.final_score, g.decision["criteria"], g.decided_by) == (
        "a1",
        1,
        {"inputs": 1},
        g.decided_by,
    )
    assert g.decided_by and g.decided_by.startswith("key_")

    # Every grade of the rubric, and its CSV.
    tab.get_by_label("Show").select_option("")
    tab.get_by_label("Rubric").select_option("bio-photosynthesis")
    expect(items).to_have_count(2)
    link = tab.get_by_role("link", name="Export CSV")
    href = link.get_attribute("href")
    assert href == "/v1/classroom/grades.csv?rubric=bio-photosynthesis"
    response = page.context.request.get(server.base + href)
    assert response.status == 200 and response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text())))
    assert [(r["answer_id"], r["score"], r["status"]) for r in rows] == [
        ("a1", "1", "overridden"),
        ("a2", "2", "released"),
    ]
    page.assert_accessible()
    assert page.errors == []
