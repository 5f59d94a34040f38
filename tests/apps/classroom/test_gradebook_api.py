"""/v1/classroom/grades on a real server (the tiny model, the packaged MiniLM): grade one answer (again:
from the gradebook), list by rubric and status, decide once (audited with the model, rubric version,
evidence and decision), export CSV; admin routes refuse a user key, another tenant's grade is 404, bad
input is 400 with an OpenAI-style body."""

from __future__ import annotations

import csv
import io
import shutil
from pathlib import Path

import httpx
import pytest

from clearlm.apps.classroom.grading_calibration import Calibration
from clearlm.server import classroom_grades

RUBRIC = Path(__file__).parents[3] / "benchmarks" / "data" / "grading" / "rubrics" / "bio-photosynthesis.yaml"
ENTRY = {"mean": [0] * 10, "scale": [1] * 10, "coef": [[0] * 10] * 3, "intercept": [0, 0, 10]}  # score 2
GOOD = "Plants need sunlight, water and carbon dioxide. They make glucose and give off oxygen."


@pytest.fixture
def server(serve, tiny_tokenizer, tmp_path, monkeypatch):
    from clearlm.models.backends.torch_backend import TorchBackend
    from conftest import make_model

    folder = tmp_path / "rubrics"
    folder.mkdir()
    shutil.copy(RUBRIC, folder)
    monkeypatch.setattr(classroom_grades, "rubrics_folder", lambda: folder)
    # the tiny model has no packaged calibration: a fixed one, uncalibrated, so every grade is in review
    monkeypatch.setattr(
        Calibration, "for_model", classmethod(lambda cls, m, d=None: cls(ENTRY, calibrated=False))
    )
    backend = TorchBackend(make_model(tiny_tokenizer, context=2048), tiny_tokenizer, "tiny-random-qwen2")
    live = serve(backend)
    clients = {}
    for name, tenant, scope in [
        ("admin", "acme", "admin"),
        ("user", "acme", "user"),
        ("other", "zeta", "admin"),
    ]:
        _, secret = live.state.keys.create(name, tenant=tenant, scope=scope)
        clients[name] = httpx.Client(
            base_url=live.url, headers={"Authorization": f"Bearer {secret}"}, timeout=120
        )
    yield live, clients
    for c in clients.values():
        c.close()


def test_grade_list_decide_export(server):
    live, c = server
    body = {"rubric": "bio-photosynthesis", "answer_id": "a1", "learner": "ann", "answer": GOOD}
    r = c["user"].post("/classroom/grades", json=body)
    assert r.status_code == 200, r.text
    g = r.json()
    assert g["created"] is True and g["status"] == "in_review" and g["score"] == 2 and g["tenant"] == "acme"
    assert (
        "uncalibrated model tiny-random-qwen2" in g["grade"]["review_reasons"] and "rubric" not in g["grade"]
    )
    spans = [s for crit in g["grade"]["criteria"] for s in crit["evidence"]]
    assert spans and all(GOOD[s["start"] : s["end"]] == s["text"] for s in spans)
    again = c["user"].post("/classroom/grades", json={**body, "answer": "changed"}).json()
    assert again["created"] is False and again["id"] == g["id"] and again["answer"] == GOOD

    assert c["user"].get("/classroom/grades").status_code == 403
    listed = c["admin"].get(
        "/classroom/grades", params={"rubric": "bio-photosynthesis", "status": "in_review"}
    )
    assert [x["id"] for x in listed.json()["data"]] == [g["id"]]
    assert c["admin"].get("/classroom/grades", params={"status": "accepted"}).json()["data"] == []
    assert c["other"].get("/classroom/grades").json()["data"] == []
    review = c["admin"].get("/review", params={"kind": "grade_review"}).json()["data"]
    assert [i["id"] for i in review] == [g["review_id"]]

    decision = f"/classroom/grades/{g['id']}/decision"
    bad = c["admin"].post(decision, json={"action": "override", "criteria": {"inputs": 5}})
    assert bad.status_code == 400 and bad.json()["error"]["type"] == "invalid_request_error"
    assert c["other"].post(decision, json={"action": "accept"}).status_code == 404
    assert c["user"].post(decision, json={"action": "accept"}).status_code == 403
    done = c["admin"].post(decision, json={"action": "override", "criteria": {"inputs": 1}, "note": "half"})
    assert done.status_code == 200, done.text
    assert (done.json()["status"], done.json()["final_score"]) == ("overridden", 1)  # 1 + 2 = 3 points: 1
    assert c["admin"].post(decision, json={"action": "accept"}).status_code == 409
    assert c["admin"].get(f"/review/{g['review_id']}").json()["status"] == "answered"
    [record] = [
        r
        for r in live.state.audit.records(tenant="acme")
        if r.endpoint.endswith("/decision") and r.status_code == 200
    ]
    assert record.model == "tiny-random-qwen2" and record.parameters["rubric_version"] == 1
    assert record.output["decision"] == {
        "action": "override",
        "score": 1,
        "criteria": {"inputs": 1},
        "note": "half",
    }
    assert record.output["evidence"]["inputs"] == g["grade"]["criteria"][0]["evidence"]

    exported = c["admin"].get("/classroom/grades.csv", params={"rubric": "bio-photosynthesis"})
    assert exported.status_code == 200 and exported.headers["content-type"].startswith("text/csv")
    [row] = list(csv.DictReader(io.StringIO(exported.text)))
    assert (row["answer_id"], row["score"], row["model_score"], row["points_inputs"]) == ("a1", "1", "2", "1")


def test_unknown_rubric_and_bad_answers_are_4xx(server):
    _, c = server
    missing = c["user"].post(
        "/classroom/grades", json={"rubric": "nope", "answer_id": "a", "learner": "l", "answer": "x"}
    )
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "rubric_not_found"
    nul = c["user"].post(
        "/classroom/grades",
        json={"rubric": "bio-photosynthesis", "answer_id": "a", "learner": "l", "answer": "a\x00b"},
    )
    assert nul.status_code == 400 and "NUL" in nul.json()["error"]["message"]
    blank = c["user"].post(
        "/classroom/grades",
        json={"rubric": "bio-photosynthesis", "answer_id": " ", "learner": "l", "answer": "x"},
    )
    assert blank.status_code == 400
