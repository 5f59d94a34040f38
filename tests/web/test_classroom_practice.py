"""The classroom's tutoring pages in headless Chromium against a real server (tiny model, no generation;
the sample course of examples/classroom): a learner practises (answers wrong and sees the worked solution,
takes a hint, answers right several times), watches P(mastery) move and the reviews appear, and every
number on the page is the API's; the teacher's heatmap shows that learner's cells (number and colour),
sorts by a skill from the keyboard, and links to the learner's attempts with the hint logged; hostile
item text and answers stay text; axe finds nothing serious; a user key gets neither page nor route."""

from __future__ import annotations

import shutil
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import expect

from clearlm.apps.classroom.items import load_course

SAMPLE = Path(__file__).parents[2] / "examples" / "classroom" / "fractions.yaml"
HOSTILE_ANSWER = '<img src=x onerror="document.title=1">'
HOSTILE_COURSE = """id: hostile
title: "<b>Bold</b> course"
skills:
  - {id: s1, name: "<i>Skill</i> one"}
items:
  - id: h-1
    question: "What is <b>2</b> + <img src=x onerror=\\"document.title=2\\">2?"
    answer: {accept: ["4"], kind: number}
    skills: [s1]
    hints: ["<script>document.title=3</script>Count."]
    solution: "<b>4</b>"
"""


def ok(r: httpx.Response) -> dict:
    assert r.status_code == 200, r.text
    return r.json()


def pct(p: float) -> str:
    return f"{p * 100:.1f}%"


@pytest.fixture
def classroom(serve, tiny_backend, tmp_path, monkeypatch):
    home = tmp_path / "home"
    (home / "classroom").mkdir(parents=True)
    shutil.copy(SAMPLE, home / "classroom" / "fractions.yaml")
    (home / "classroom" / "hostile.yaml").write_text(HOSTILE_COURSE, encoding="utf-8")
    monkeypatch.setenv("CLEARLM_HOME", str(home))
    server = serve(tiny_backend)
    ada, user = server.state.keys.create("ada", tenant="school", scope="user")
    _, admin = server.state.keys.create("teacher", tenant="school", scope="admin")
    with httpx.Client(
        base_url=server.url + "/classroom/courses", headers={"Authorization": f"Bearer {admin}"}
    ) as api:
        yield server, ada.id, user, admin, api


def shown_skills(tab) -> dict[str, tuple[float, str, bool]]:
    """Each skill on the page: (its data-p, the percentage written, whether it says "mastered")."""
    out = {}
    for li in tab.locator("#skills li.skill").all():
        out[li.get_attribute("data-skill")] = (
            float(li.get_attribute("data-p")),
            li.locator(".pct").inner_text(),
            li.locator(".badge.mastered").count() == 1,
        )
    return out


def assert_matches_api(tab, progress: dict, threshold: float) -> None:
    shown = shown_skills(tab)
    assert set(shown) == set(progress["mastery"])
    for skill, p in progress["mastery"].items():
        assert shown[skill] == (p, pct(p), p >= threshold), skill
    assert sorted(s for s, v in shown.items() if v[2]) == sorted(progress["mastered"])


def test_a_learner_practises_and_the_teacher_sees_the_heatmap(classroom, open_page):
    server, learner, user, admin, api = classroom
    course = load_course(SAMPLE)
    page = open_page(server)
    page.sign_in(user, "/classroom/practice")
    tab = page.tab
    question = tab.locator("#item-question")
    expect(question).to_have_attribute("data-item", "fa-1")
    assert question.inner_text() == course.item("fa-1").question
    expect(tab.locator("#item-reason")).to_have_text("Practising: Adding fractions")
    expect(tab.locator('#skills li[data-skill="frac-add"] .pct')).to_have_text("20.0%")  # the prior
    assert tab.get_by_role("link", name="Class mastery").count() == 0  # a user key: no teacher's page

    # wrong (a hostile answer): the expected answer and the worked solution, mastery down
    tab.get_by_label("Your answer").fill(HOSTILE_ANSWER)
    tab.get_by_role("button", name="Check answer").click()
    feedback = tab.locator("#feedback")
    expect(feedback).to_contain_text("Not quite. The answer is 3/4.")
    expect(feedback).to_contain_text("Worked solution: " + course.item("fa-1").solution)
    assert feedback.get_attribute("role") == "status"
    after_wrong = ok(api.get(f"/fractions/learners/{learner}/progress"))
    assert after_wrong["mastery"]["frac-add"] == pytest.approx(0.17576, abs=1e-5)  # BKT: 0.2 -> 0.176
    expect(tab.locator('#skills li[data-skill="frac-add"] .move')).to_have_text("▼ −2.4 points")
    expect(feedback.locator(".moved")).to_have_text("Mastery now: Adding fractions 17.6% (−2.4 points).")
    assert_matches_api(tab, after_wrong, course.mastery_threshold)
    expect(tab.locator('#reviews li[data-item="fa-1"]')).to_be_visible()  # FSRS scheduled a review
    page.assert_accessible()

    # the next item: one hint (then the hint count), right with the hint: practice, not yet mastery
    tab.get_by_role("button", name="Next question").click()
    expect(question).to_have_attribute("data-item", "fa-2")
    tab.get_by_role("button", name="Show a hint").click()
    expect(tab.locator("#hints li")).to_have_text([course.item("fa-2").hints[0]])
    expect(tab.locator("#hint-count")).to_have_text("1 of 2 hints used")
    tab.get_by_label("Your answer").fill("1/2")
    tab.get_by_role("button", name="Check answer").click()
    expect(feedback).to_contain_text("Right. You used a hint")
    with_hint = ok(api.get(f"/fractions/learners/{learner}/progress"))["mastery"]["frac-add"]
    assert with_hint < 0.5  # a hinted answer counts as wrong for BKT (ASSISTments' correct)

    # right several times without a hint (whatever the tutor chooses: a due review or the next item)
    seen = []
    for _ in range(4):
        tab.get_by_role("button", name="Next question").click()
        expect(tab.locator("#answer")).to_be_enabled()
        item = question.get_attribute("data-item")
        seen.append(item)
        tab.get_by_label("Your answer").fill(course.item(item).answer.accept[0])
        tab.get_by_role("button", name="Check answer").click()
        expect(feedback).to_contain_text("Right.")
        assert "null" not in feedback.inner_text() and "Worked solution" not in feedback.inner_text()
        expect(tab.get_by_role("button", name="Next question")).to_be_focused()
    progress = ok(api.get(f"/fractions/learners/{learner}/progress"))
    assert progress["mastery"]["frac-add"] > 0.9 > with_hint  # mastery rose with each right answer
    assert_matches_api(tab, progress, course.mastery_threshold)
    assert {r["item_id"] for r in progress["reviews"]} >= {"fa-1", "fa-2", *seen}
    assert page.errors == []

    # another learner (over the API) for the heatmap to sort
    ok(api.post("/fractions/learners/bo/attempts", json={"item_id": "un-1", "answer": "no"}))
    klass = ok(api.get("/fractions/mastery"))
    assert [r["learner"] for r in klass["learners"]] == sorted([learner, "bo"])
    rows = {r["learner"]: r for r in klass["learners"]}
    assert rows[learner]["mastery"] == progress["mastery"] and rows[learner]["attempts"] == 6

    teacher = open_page(server)
    teacher.sign_in(admin, "/classroom/class")
    t = teacher.tab
    cells = t.locator(f'tr[data-learner="{learner}"] td[data-skill]')
    expect(cells).to_have_count(4)
    for skill, p in progress["mastery"].items():
        cell = t.locator(f'tr[data-learner="{learner}"] td[data-skill="{skill}"]')
        assert float(cell.get_attribute("data-p")) == p
        assert cell.inner_text().startswith(pct(p))  # the number, not colour alone
        band = 5 if p >= course.mastery_threshold else min(4, int(p * 5))
        assert f"heat-{band}" in cell.get_attribute("class")
    teacher.assert_accessible()

    # sort by a skill from the keyboard: high to low, then low to high
    t.locator('button.sort[data-key="units"]').focus()
    t.keyboard.press("Enter")
    header = t.locator("#heat-head th").nth(4)
    expect(header).to_have_attribute("aria-sort", "descending")
    by_units = sorted(rows, key=lambda n: -rows[n]["mastery"]["units"])
    expect(t.locator("#heat-body tr")).to_have_count(2)
    assert [r.get_attribute("data-learner") for r in t.locator("#heat-body tr").all()] == by_units
    expect(t.locator('button.sort[data-key="units"]')).to_be_focused()
    t.keyboard.press("Enter")
    expect(header).to_have_attribute("aria-sort", "ascending")
    assert [r.get_attribute("data-learner") for r in t.locator("#heat-body tr").all()] == by_units[::-1]

    # the learner's attempts: newest first, the hint logged, the hostile answer as text
    t.get_by_role("link", name=f"ada ({learner})").click()
    t.wait_for_url(f"**/classroom/class/fractions/learners/{learner}")
    assert t.get_by_role("heading", level=1).inner_text() == f"Attempts of ada ({learner})"
    body = t.locator("#attempts-body tr")
    expect(body).to_have_count(6)
    assert body.nth(5).locator("td").all_inner_texts()[1:5] == ["fa-1", HOSTILE_ANSWER, "wrong", "0"]
    assert body.nth(4).locator("td").all_inner_texts()[1:5] == ["fa-2", "1/2", "right", "1"]
    assert t.locator("#attempts img").count() == 0
    teacher.assert_accessible()
    assert t.title() != "1" and teacher.errors == []


def test_hostile_course_text_stays_text(classroom, open_page):
    server, _, user, _, _ = classroom
    page = open_page(server)
    page.sign_in(user, "/classroom/practice?course=hostile")
    tab = page.tab
    question = tab.locator("#item-question")
    expect(question).to_have_attribute("data-item", "h-1")
    assert question.inner_text() == 'What is <b>2</b> + <img src=x onerror="document.title=2">2?'
    assert tab.locator("#course option:checked").inner_text() == "<b>Bold</b> course"
    tab.get_by_role("button", name="Show a hint").click()
    expect(tab.locator("#hints li")).to_have_text(["<script>document.title=3</script>Count."])
    tab.get_by_label("Your answer").fill("5")
    tab.get_by_role("button", name="Check answer").click()
    expect(tab.locator("#feedback")).to_contain_text("Worked solution: <b>4</b>")
    expect(tab.locator('#skills li[data-skill="s1"] .skill-name')).to_have_text("<i>Skill</i> one")
    assert tab.locator("main img, main b, main i, main script").count() == 0
    assert tab.title() == "Practice · clearlm" and page.errors == []


def test_a_user_key_gets_no_class_page_nor_route(classroom, open_page):
    server, learner, user, _, _ = classroom
    r = httpx.get(
        server.url + "/classroom/courses/fractions/mastery", headers={"Authorization": f"Bearer {user}"}
    )
    assert r.status_code == 403 and "admin key" in r.json()["error"]["message"]
    r = httpx.get(
        server.url + f"/classroom/courses/fractions/learners/{learner}/attempts",
        headers={"Authorization": f"Bearer {user}"},
    )
    assert r.status_code == 403
    page = open_page(server)
    page.sign_in(user, "/classroom/practice")
    page.goto("/classroom/class")
    page.tab.wait_for_url("**/signin?next=/classroom/class")
    assert "needs an admin key" in page.tab.get_by_role("alert").inner_text()
