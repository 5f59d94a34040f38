"""/v1/classroom over a real server (tiny model, no generation): the sample course from
$CLEARLM_HOME/classroom; a learner gets the next item without its answer, answers it and sees mastery and
the review schedule move; learners of two tenants are apart; an unknown course is 404, an unknown item or
a bad hint count 400, all with OpenAI-style bodies."""

from __future__ import annotations

import shutil
from pathlib import Path

import httpx
import pytest

SAMPLE = Path(__file__).parents[2] / "examples" / "classroom" / "fractions.yaml"


@pytest.fixture
def classroom(serve, tiny_backend, tmp_path, monkeypatch):
    home = tmp_path / "home"
    (home / "classroom").mkdir(parents=True)
    shutil.copy(SAMPLE, home / "classroom" / "fractions.yaml")
    monkeypatch.setenv("CLEARLM_HOME", str(home))
    server = serve(tiny_backend)
    clients = {}
    for tenant in ("acme", "zeta"):
        _, secret = server.state.keys.create(tenant, tenant=tenant, scope="user")
        clients[tenant] = httpx.Client(
            base_url=server.url + "/classroom", headers={"Authorization": f"Bearer {secret}"}
        )
    yield clients
    for c in clients.values():
        c.close()


def test_a_learner_practises_over_http(classroom):
    acme = classroom["acme"]
    listed = acme.get("/courses").json()["data"]
    assert [(c["id"], c["n_items"], len(c["skills"])) for c in listed] == [("fractions", 21, 4)]
    nxt = acme.get("/courses/fractions/learners/ada/next").json()
    assert (nxt["reason"], nxt["skill"], nxt["due"]) == ("practice", "frac-add", None)
    assert set(nxt["item"]) == {"id", "question", "skills", "hints"}  # no answer, no solution
    assert nxt["item"]["id"] == "fa-1" and len(nxt["item"]["hints"]) == 2
    r = acme.post("/courses/fractions/learners/ada/attempts", json={"item_id": "fa-1", "answer": "0.75"})
    assert r.status_code == 200, r.text
    result = r.json()
    assert result["correct"] is True and result["expected"] == "3/4" and "3/4" in result["solution"]
    assert result["mastery"]["frac-add"] == pytest.approx(0.6)
    assert result["mastery"]["units"] == 0.15
    wrong = acme.post(
        "/courses/fractions/learners/ada/attempts", json={"item_id": "un-4", "answer": "1 m", "hints_used": 2}
    ).json()
    assert wrong["correct"] is False and wrong["mastery"]["units"] == pytest.approx(0.1683, abs=1e-4)
    progress = acme.get("/courses/fractions/learners/ada/progress").json()
    assert progress["mastery"]["frac-add"] == pytest.approx(0.6) and progress["mastered"] == []
    assert [r["item_id"] for r in progress["reviews"]] == ["un-4", "fa-1"]  # Again (1 min), Good (10)
    other = classroom["zeta"].get("/courses/fractions/learners/ada/progress").json()
    assert other["reviews"] == [] and other["mastery"]["frac-add"] == 0.2


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "message"),
    [
        ("GET", "/courses/algebra/learners/ada/next", None, 404, "no course 'algebra'"),
        ("POST", "/courses/fractions/learners/ada/attempts", {"item_id": "zz", "answer": "1"}, 400, "no item 'zz'"),
        ("POST", "/courses/fractions/learners/ada/attempts", {"item_id": "fa-1", "answer": "1", "hints_used": 5},
         400, "has 2 hint(s)"),
        ("GET", "/courses/fractions/learners/a%20b/next", None, 400, "learner"),
    ],
)  # fmt: skip
def test_bad_requests_get_openai_style_errors(classroom, method, path, body, status, message):
    r = classroom["acme"].request(method, path, json=body)
    assert r.status_code == status, r.text
    assert message in r.json()["error"]["message"]
    assert r.json()["error"]["type"] == ("not_found_error" if status == 404 else "invalid_request_error")
