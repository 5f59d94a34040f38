"""The teacher's quiz page in headless Chromium against a real server: pending questions show their answer
key and the cited passage with the quoted sentence marked (a hostile passage stays text), the teacher
edits a key and approves, rejects another, and the decisions reach the store and the review queue; axe
finds nothing serious. The questions are stored through the quiz book (generation itself is tested in
tests/apps/classroom)."""

from __future__ import annotations

import json

import pytest
from playwright.sync_api import expect

from clearlm.apps.classroom.quiz import QuizResult
from clearlm.apps.classroom.quiz_checks import Checked, check_draft
from clearlm.apps.classroom.quiz_store import QuizBook
from clearlm.knowledge import Passage
from clearlm.store.review import ReviewQueue

XSS = '<img src=x onerror="document.title=1">'
TEXT = (
    "Brisk Harbour is a fishing port on the north coast. Its lighthouse was designed by the engineer "
    f"Anika Brandt and first lit in 1931. The harbour freezes over in February.\n{XSS}"
)


@pytest.fixture
def quizzes(serve, tiny_backend, tmp_path, monkeypatch):
    monkeypatch.setenv("CLEARLM_HOME", str(tmp_path / "home"))  # no knowledge base: the form says so
    server = serve(tiny_backend)
    _, admin = server.state.keys.create("teacher", tenant="acme", scope="admin")
    passage = Passage("c1", TEXT, "/docs/harbour.md", "Brisk Harbour", ("Ports",), 0, len(TEXT))
    result = QuizResult("qzr_web00001", "towns", None, 2, "tiny-random-qwen2", tried=3)
    for question, answer in [
        ("Who designed the lighthouse?", "Anika Brandt"),
        ("When was it first lit?", "1931"),
    ]:
        out = check_draft(json.dumps({"question": question, "answer": answer, "quote": ""}), passage, "towns")
        assert isinstance(out, Checked)
        result.questions.append(out)
    stored = QuizBook(server.state.db).save("acme", result)
    return server, admin, stored


def test_a_teacher_approves_with_an_edit_and_rejects(quizzes, open_page):
    server, admin, (first, second) = quizzes
    page = open_page(server)
    page.sign_in(admin, "/classroom/quizzes")
    tab = page.tab
    items = tab.locator("article.quiz-item")
    expect(items).to_have_count(2)
    item = items.first
    assert item.get_by_role("heading", level=2).inner_text() == "Who designed the lighthouse?"
    assert "Anika Brandt" in item.locator(".key").inner_text()
    quote = "Its lighthouse was designed by the engineer Anika Brandt and first lit in 1931."
    assert item.locator("mark.quote").inner_text() == quote
    assert XSS in item.locator(".passage").inner_text()  # the hostile passage, shown as text
    assert tab.locator("#quiz-items img, #quiz-items script").count() == 0
    assert "Brisk Harbour > Ports" in item.locator(".source").inner_text()
    assert tab.get_by_role("link", name="Quizzes").get_attribute("aria-current") == "page"
    assert tab.title() == "Quizzes · clearlm"
    page.assert_accessible()
    page.screenshot("classroom-quizzes")

    item.get_by_label("Answer key").fill("the engineer Anika Brandt")
    item.get_by_label("Note").fill("fuller key")
    item.get_by_role("button", name="Approve").click()
    expect(tab.locator("#status")).to_contain_text(f"{first.id}: approved")
    expect(items).to_have_count(1)
    items.first.get_by_role("button", name="Reject").click()
    expect(tab.locator("#status")).to_contain_text(f"{second.id}: rejected")
    expect(tab.locator("#quiz-items")).to_contain_text("No question waits for approval.")

    book = QuizBook(server.state.db)
    done = book.get(first.id, "acme")
    assert (done.status, done.answer, done.decision["edited"], done.decision["note"]) == (
        "approved",
        "the engineer Anika Brandt",
        ["answer"],
        "fuller key",
    )
    assert done.decided_by.startswith("key_") and book.get(second.id, "acme").status == "rejected"
    queue = ReviewQueue(server.state.db)
    assert [queue.get(q.review_id, "acme").status for q in (first, second)] == ["approved", "dismissed"]

    tab.get_by_label("Show").select_option("")
    expect(items).to_have_count(2)
    expect(items.first.get_by_role("link", name="Rubric (YAML)")).to_be_visible()
    page.assert_accessible()
    assert page.errors == []
