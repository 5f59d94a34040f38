"""/v1/classroom/quiz on a real server (the tiny model, the packaged MiniLM) with a real HTTP client:
generate from a tenant's knowledge base (every draft accounted for), list, approve with an edit (the
request's audit record holds the decision), decide once (409), the rubric file, admin only, another
tenant's question 404, bad input 4xx with an OpenAI-style body; and ``clearlm classroom quiz`` (generate,
list, approve, reject, export; bad input before any model is loaded)."""

from __future__ import annotations

import json

import httpx
import pytest
from typer.testing import CliRunner

from clearlm.apps.classroom import load_rubrics
from clearlm.apps.classroom.quiz import EmptyKnowledgeBaseError, QuizResult
from clearlm.apps.classroom.quiz_checks import Checked, check_draft
from clearlm.apps.classroom.quiz_store import QuizBook
from clearlm.apps.classroom.rubrics import parse_rubric
from clearlm.cli import app
from clearlm.cli import classroom_quiz as quiz_cmd
from clearlm.errors import InvalidInputError
from clearlm.knowledge import KnowledgeBase, KnowledgeBaseNotFoundError, Passage
from clearlm.store import Database

TEXT = (
    "Brisk Harbour is a fishing port on the north coast of Veldmark. Its lighthouse was designed by the "
    "engineer Anika Brandt and first lit in 1931. The harbour freezes over in February."
)
PASSAGE = Passage("c1", TEXT, "/docs/harbour.md", "Brisk Harbour", (), 0, len(TEXT))


def seeded(db, tenant: str, *pairs: tuple[str, str]):
    result = QuizResult(
        "qzr_" + tenant[:4].ljust(4, "0") + "0001", "towns", None, len(pairs), "tiny-random-qwen2"
    )
    for question, answer in pairs:
        out = check_draft(json.dumps({"question": question, "answer": answer, "quote": ""}), PASSAGE, "towns")
        assert isinstance(out, Checked)
        result.questions.append(out)
    return QuizBook(db).save(tenant, result)


@pytest.fixture(scope="module")
def embedder():
    from clearlm.knowledge.base import default_embedder

    return default_embedder()


@pytest.fixture
def backend(tiny_tokenizer):
    from clearlm.models.backends.torch_backend import TorchBackend
    from conftest import make_model

    return TorchBackend(make_model(tiny_tokenizer, context=2048), tiny_tokenizer, "tiny-random-qwen2")


@pytest.fixture
def docs(tmp_path):
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "harbour.md").write_text(f"# Brisk Harbour\n\n{TEXT}\n")
    return folder


@pytest.fixture
def server(serve, backend, embedder, docs, tmp_path, monkeypatch):
    monkeypatch.setenv("CLEARLM_HOME", str(tmp_path / "home"))
    live = serve(backend, embedder=embedder)
    with KnowledgeBase.create("towns", store=live.state.kb_store("acme"), embedder=embedder) as kb:
        kb.add(docs)
    KnowledgeBase.create("empty", store=live.state.kb_store("acme"), embedder=embedder).close()
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


def test_generate_list_decide_over_http(server):
    live, c = server
    r = c["admin"].post("/classroom/quiz/generate", json={"kb": "towns", "n": 1})
    assert r.status_code == 200, r.text
    run = r.json()
    assert (
        run["object"] == "classroom.quiz_run" and run["kb"] == "towns" and run["model"] == "tiny-random-qwen2"
    )
    assert run["tried"] in (1, 2) and run["kept"] + sum(run["dropped"].values()) == run["tried"]
    assert run["kept"] == len(run["questions"])

    first, second = seeded(live.state.db, "acme", ("Who designed the lighthouse?", "Anika Brandt"),
                           ("When does the harbour freeze over?", "in February"))  # fmt: skip
    listed = (
        c["admin"]
        .get("/classroom/quiz/questions", params={"status": "pending", "kb": "towns"})
        .json()["data"]
    )
    assert [q["id"] for q in listed][-2:] == [first.id, second.id]
    assert listed[-1]["citation"]["quote"] == "The harbour freezes over in February."
    assert c["user"].get("/classroom/quiz/questions").status_code == 403
    assert c["other"].get("/classroom/quiz/questions").json()["data"] == []

    body = {"action": "approve", "question": "Which engineer designed the lighthouse?", "note": "clearer"}
    r = c["admin"].post(f"/classroom/quiz/questions/{first.id}/decision", json=body)
    assert r.status_code == 200, r.text
    done = r.json()
    assert (
        done["status"] == "approved"
        and done["question"] == body["question"]
        and done["answer"] == "Anika Brandt"
    )
    assert done["rubric"]["question"] == body["question"] and done["decision"]["edited"] == ["question"]
    again = c["admin"].post(f"/classroom/quiz/questions/{first.id}/decision", json={"action": "reject"})
    assert again.status_code == 409 and again.json()["error"]["code"] == "quiz_question_decided"
    other = c["other"].post(f"/classroom/quiz/questions/{second.id}/decision", json={"action": "reject"})
    assert other.status_code == 404 and other.json()["error"]["type"] == "not_found_error"
    records = live.state.audit.records(tenant="acme")
    [record] = [r for r in records if r.endpoint.endswith("/decision") and r.status_code == 200]
    assert record.output["status"] == "approved" and record.output["decision"]["note"] == "clearer"
    assert record.prompt["question"] == "Who designed the lighthouse?"

    yaml_text = c["admin"].get(f"/classroom/quiz/questions/{first.id}/rubric.yaml")
    assert yaml_text.status_code == 200
    assert parse_rubric(yaml_text.text).reference_answer == "Anika Brandt"
    pending = c["admin"].get(f"/classroom/quiz/questions/{second.id}/rubric.yaml")
    assert pending.status_code == 400 and "only an approved question" in pending.json()["error"]["message"]


def test_bad_generation_requests(server):
    _, c = server
    for body, status, message in [
        ({"kb": "towns", "n": 0}, 400, "greater than or equal to 1"),
        ({"kb": "towns", "n": 21}, 400, "less than or equal to 20"),
        ({"kb": "nosuch", "n": 2}, 404, "no knowledge base named 'nosuch'"),
        ({"kb": "empty", "n": 2}, 400, "holds no documents"),
        ({"kb": "towns", "topic": "x" * 501}, 400, "topic"),
    ]:
        r = c["admin"].post("/classroom/quiz/generate", json=body)
        assert r.status_code == status and message in r.json()["error"]["message"], r.text
    assert c["user"].post("/classroom/quiz/generate", json={"kb": "towns"}).status_code == 403


def test_the_cli(tmp_path, monkeypatch, backend, embedder, docs):
    monkeypatch.setenv("CLEARLM_HOME", str(tmp_path / "home"))
    with KnowledgeBase.create("towns", embedder=embedder) as kb:
        kb.add(docs)
    KnowledgeBase.create("empty", embedder=embedder).close()
    loaded = []
    monkeypatch.setattr(quiz_cmd, "_load", lambda model: loaded.append(model) or backend)
    db = f"sqlite:///{tmp_path / 'c.db'}"
    run = CliRunner().invoke(app, ["classroom", "quiz", "generate", "towns", "-n", "1", "--db", db])
    assert run.exit_code == 0, run.output
    assert "question(s) kept from" in run.output and loaded == ["qwen2.5-0.5b-instruct"]

    for args, error, message in [
        (["generate", "nosuch"], KnowledgeBaseNotFoundError, "clearlm kb create nosuch"),
        (["generate", "empty"], EmptyKnowledgeBaseError, "holds no documents"),
        (["generate", "towns", "-n", "0"], InvalidInputError, "1 to 20 questions"),
        (["export", "--out", str(tmp_path / "out")], InvalidInputError, "no approved quiz question"),
    ]:
        bad = CliRunner().invoke(app, ["classroom", "quiz", *args, "--db", db])
        assert isinstance(bad.exception, error) and message in str(bad.exception)
    assert loaded == ["qwen2.5-0.5b-instruct"]  # bad input fails before a model is loaded

    a, b = seeded(Database(db), "default", ("Who designed the lighthouse?", "Anika Brandt"),
                  ("When does the harbour freeze over?", "in February"))  # fmt: skip
    ok = CliRunner().invoke(
        app, ["classroom", "quiz", "approve", a.id, "--answer", "the engineer Anika Brandt", "--db", db]
    )
    assert ok.exit_code == 0 and "approved (edited: answer)" in ok.output
    assert CliRunner().invoke(app, ["classroom", "quiz", "reject", b.id, "--db", db]).exit_code == 0
    listed = CliRunner().invoke(app, ["classroom", "quiz", "list", "--status", "approved", "--db", db])
    assert a.id in listed.output and b.id not in listed.output
    out = tmp_path / "rubrics"
    exported = CliRunner().invoke(app, ["classroom", "quiz", "export", "--out", str(out), "--db", db])
    assert exported.exit_code == 0 and "1 rubric file(s)" in exported.output
    assert load_rubrics(out)[a.id].reference_answer == "the engineer Anika Brandt"
