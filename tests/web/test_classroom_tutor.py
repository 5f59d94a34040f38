"""The chat tutor on /classroom/practice and the learner's graded feedback on /classroom/feedback, in
headless Chromium against a real server (tiny model, packaged MiniLM, the example course and its notes):
a learner asks the tutor and gets a quoted answer whose [n] opens the cited passage with the quote
highlighted, kept after a reload; a learner sees their released grades only, each criterion's level,
points and feedback, the evidence highlighted in their answer, linked with the practice page; the teacher's
page of that learner shows the same; axe finds nothing serious."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from classroom_fixtures import CLOSER, DIRECT, EXAMPLES, TILT, add_grade, tutor_home_with_worked_example
from clearlm.apps.classroom.gradebook import Gradebook
from clearlm.apps.classroom.items import load_course
from clearlm.apps.classroom.tutor_chat import NUDGE

COURSE = load_course(EXAMPLES / "fractions.yaml")


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    """The example course and its notes, plus a worked example that states fa-1's answer (3/4)."""
    return tutor_home_with_worked_example(tmp_path_factory.mktemp("home"))


@pytest.fixture
def classroom(serve, tiny_backend, home, monkeypatch):
    from clearlm.knowledge.base import default_embedder

    monkeypatch.setenv("CLEARLM_HOME", str(home))
    server = serve(tiny_backend, embedder=default_embedder())
    ada, user = server.state.keys.create("ada", tenant="school", scope="user")
    _, admin = server.state.keys.create("teacher", tenant="school", scope="admin")
    return server, ada.id, user, admin


def test_a_learner_asks_the_tutor_and_reads_the_cited_passage(classroom, open_page):
    server, learner, user, _ = classroom
    page = open_page(server)
    page.sign_in(user, "/classroom/practice")
    tab = page.tab
    expect(tab.locator("#item-question")).to_have_attribute("data-item", "fa-1")
    expect(tab.locator("#tutor")).to_be_visible()
    expect(tab.locator("#tutor-kb")).to_have_text("fractions-kb")
    tab.get_by_label("Your question to the tutor").fill("How do I change grams to kilograms?")
    tab.get_by_role("button", name="Ask").click()
    turn = tab.locator(".tutor-turn")
    expect(turn).to_have_count(1)
    expect(turn.locator(".asked")).to_contain_text("How do I change grams to kilograms?")
    body = turn.locator(".msg-body")
    expect(body).to_contain_text("divide by a")
    assert turn.get_attribute("data-leaked") == "false"
    (logged,) = _history(server, learner)  # what the page shows is what was logged
    cited = logged["citations"]
    first = cited["citations"][0]
    passage = cited["passages"][first["number"] - 1]
    assert passage["path"].endswith("metric-units.md")

    # [n] in the answer opens the passage, the quoted words highlighted; the sources are listed
    button = body.locator("button.cite").first
    expect(button).to_have_text(str(first["number"]))
    expect(turn.locator(".citations-panel .sources li")).to_have_count(len(cited["passages"]))
    page.assert_accessible()
    button.click()
    dialog = tab.locator("dialog.citation-dialog")
    expect(dialog).to_be_visible()
    expect(dialog.locator("h2")).to_contain_text(f"Passage [{first['number']}]")
    quoted = passage["text"][first["quote_start"] : first["quote_end"]]
    expect(dialog.locator("mark.cited-span")).to_have_text(quoted)
    claim = cited["text"][: first["start"]].rstrip(" .").split(". ")[-1].split("] ")[-1]
    expect(dialog.locator("p.claim")).to_have_text(f"The answer: “{claim}”")
    page.assert_accessible()
    page.screenshot("classroom-tutor")
    dialog.get_by_role("button", name="Close").click()

    # a question whose answer would give the open item away: a hint instead, added to the item's hints
    tab.get_by_label("Your question to the tutor").fill("What is one quarter plus one half?")
    tab.get_by_role("button", name="Ask").click()
    expect(turn).to_have_count(2)
    nudged = turn.nth(1)
    hint = COURSE.item("fa-1").hints[0]
    expect(nudged.locator(".msg-body")).to_have_text(NUDGE.format(hint=hint))
    expect(nudged.locator(".badge")).to_have_text("a hint instead of the answer")
    assert nudged.get_attribute("data-leaked") == "true" and "3/4" not in nudged.inner_text()
    expect(tab.locator("#hints li")).to_have_text([hint])
    expect(tab.locator("#hint-count")).to_have_text("1 of 2 hints used")
    page.assert_accessible()

    # the conversation is kept: a reload shows it, citations and all
    tab.reload()
    expect(tab.locator(".tutor-turn")).to_have_count(2)
    expect(tab.locator(".tutor-turn .msg-body button.cite").first).to_be_visible()
    assert page.errors == []


def _history(server, learner: str) -> list[dict]:
    from clearlm.apps.classroom.items import load_course
    from clearlm.apps.classroom.tutor import Tutor
    from clearlm.apps.classroom.tutor_chat import TutorChat
    from clearlm.paths import clearlm_home

    course = load_course(clearlm_home() / "classroom" / "fractions.yaml")
    chat = TutorChat(Tutor(server.state.db, course), server.state.backend)
    return [t.to_dict() for t in chat.history("school", learner)]


def test_a_learner_sees_graded_feedback_with_the_evidence_highlighted(classroom, open_page):
    server, learner, user, admin = classroom
    db = server.state.db
    add_grade(db, learner, "released", minutes=1)
    add_grade(db, learner, "in_review", minutes=2)
    changed = add_grade(db, learner, "released", minutes=3)
    Gradebook(db).decide(changed, "school", "override", "teacher", criteria={"tilt": 2}, note="fine")
    add_grade(db, "someone-else", "released", minutes=4)

    page = open_page(server)
    page.sign_in(user, "/classroom/practice")
    page.tab.get_by_role("link", name="Your graded answers, with feedback").click()
    page.tab.wait_for_url("**/classroom/feedback")
    tab = page.tab
    cards = tab.locator("article.grade-feedback")
    expect(cards).to_have_count(2)  # the grade in review and another learner's are not shown
    expect(tab.locator("#feedback-count")).to_have_text("2 graded answers")
    newest = cards.nth(0)
    assert newest.get_attribute("data-id") == changed
    expect(newest.locator("h3")).to_have_text("Why does the Earth have seasons?")
    expect(newest.locator(".score")).to_have_text("Score 2 of 2")
    expect(newest).to_contain_text("reviewed by your teacher")
    tilt = newest.locator('section.criterion[data-criterion="tilt"]')
    expect(tilt.locator(".points")).to_have_text("2 of 2 points")
    expect(tilt).to_contain_text("set by your teacher")
    expect(tilt.locator(".criterion-feedback")).to_have_text(
        "Feedback: You name the tilt; link it to the yearly orbit."
    )
    expect(tilt.locator("mark.up")).to_have_text(TILT + " (+0.60 points)")
    expect(tilt.locator("mark.down")).to_have_text(CLOSER + " (−0.40 points)")
    effect = cards.nth(1).locator('section.criterion[data-criterion="effect"]')
    expect(effect.locator(".points")).to_have_text("1 of 1 point")
    expect(effect.locator(".level")).to_contain_text("More direct (concentrated, higher) sunlight")
    expect(effect.locator("mark.up")).to_have_text(DIRECT + " (+0.50 points)")
    assert "fine" not in tab.locator("#feedback-grades").inner_text()  # the teacher's note is theirs
    page.assert_accessible()
    page.screenshot("classroom-feedback")
    tab.get_by_role("link", name="practice page").click()
    tab.wait_for_url("**/classroom/practice**")
    assert page.errors == []

    # the teacher's page of this learner shows the same released grades
    teacher = open_page(server)
    teacher.sign_in(admin, f"/classroom/class/fractions/learners/{learner}")
    expect(teacher.tab.locator("#learner-grades article.grade-feedback")).to_have_count(2)
    expect(teacher.tab.locator("#learner-grades mark.down").first).to_contain_text(CLOSER)
    teacher.assert_accessible()
    assert teacher.errors == []
