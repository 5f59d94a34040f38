"""/v1/kb over a real server: create, upload, list, search, delete, errors, and one audit record each."""

from __future__ import annotations

import base64
import json

import httpx2 as httpx
import pytest

from conftest import make_model

GUIDE = """# Clinic handbook

## Opening hours

The clinic opens at 8 am and closes at 6 pm on weekdays. On Saturdays it opens from 9 am to noon.

## Prescriptions

Repeat prescriptions are requested through the patient portal and are ready after two working days.
"""

BILLING = """# Billing

Invoices are sent by email at the end of each month. Payment is due within thirty days by bank transfer.
"""


@pytest.fixture(scope="module")
def long_backend(tiny_tokenizer):
    """The tiny random model with a context long enough for a prompt holding passages."""
    from clearlm.models.backends.torch_backend import TorchBackend

    return TorchBackend(make_model(tiny_tokenizer, context=4096), tiny_tokenizer, "tiny-random-qwen2")


@pytest.fixture
def server(serve, long_backend, tmp_path, monkeypatch):
    from clearlm.models.embeddings import load_embedder

    monkeypatch.setenv("CLEARLM_HOME", str(tmp_path / "home"))
    return serve(long_backend, embedder=load_embedder(), files_dir=str(tmp_path / "uploads"))


def test_create_upload_search_and_delete(server, tmp_path):
    c = httpx.Client(base_url=server.base, timeout=120)
    r = c.post("/v1/kb", json={"name": "clinic", "chunk_tokens": 64, "overlap": 8})
    assert r.status_code == 201 and r.json()["id"] == "clinic" and r.json()["files"] == []
    again = c.post("/v1/kb", json={"name": "clinic"})
    assert again.status_code == 409 and again.json()["error"]["code"] == "knowledge_base_exists"

    files = [
        {"filename": "handbook.md", "content": GUIDE},
        {
            "filename": "billing.md",
            "content": base64.b64encode(BILLING.encode()).decode(),
            "encoding": "base64",
        },
        {
            "filename": "scan.pdf",
            "content": base64.b64encode(b"%PDF-1.7 not really").decode(),
            "encoding": "base64",
        },
    ]
    r = c.post("/v1/kb/clinic/files", json={"files": files})
    assert r.status_code == 200, r.text
    body = r.json()
    assert sorted(body["added"]) == ["billing.md", "handbook.md"] and body["chunks"] >= 3
    assert [s["filename"] for s in body["skipped"]] == ["scan.pdf"] and body["skipped"][0]["reason"]
    assert (tmp_path / "uploads" / "clinic" / "handbook.md").read_text() == GUIDE

    r = c.post("/v1/kb/clinic/files", json={"files": files[:1]})
    assert r.json()["unchanged"] == ["handbook.md"] and r.json()["chunks"] == 0

    listed = c.get("/v1/kb").json()
    assert listed["object"] == "list" and [(b["id"], b["files"]) for b in listed["data"]] == [("clinic", 2)]
    info = c.get("/v1/kb/clinic").json()
    assert sorted(f["filename"] for f in info["files"]) == ["billing.md", "handbook.md"]
    assert info["chunks"] == sum(f["chunks"] for f in info["files"])

    hits = c.post("/v1/kb/clinic/search", json={"query": "When does the clinic open on Saturday?", "k": 2})
    top = hits.json()["data"][0]
    assert top["path"] == "handbook.md" and top["heading_path"][-1] == "Opening hours"
    assert "Saturdays" in top["text"] and set(top["ranks"]) == {"vector", "bm25"}
    bm25 = c.post("/v1/kb/clinic/search", json={"query": "invoices bank transfer", "mode": "bm25", "k": 1})
    assert bm25.json()["data"][0]["path"] == "billing.md"

    assert c.delete("/v1/kb/clinic/files/billing.md").json()["deleted"] is True
    assert not (tmp_path / "uploads" / "clinic" / "billing.md").exists()
    after = c.post("/v1/kb/clinic/search", json={"query": "invoices bank transfer", "k": 5}).json()["data"]
    assert {h["path"] for h in after} == {"handbook.md"}
    gone = c.delete("/v1/kb/clinic/files/billing.md")
    assert gone.status_code == 404 and gone.json()["error"]["code"] == "source_not_found"

    records = server.state.audit.records()
    assert len(records) == 11 and all(r.endpoint.startswith("/v1/kb") for r in records)
    assert [r.status_code for r in records].count(200) == 8


def test_bad_requests_get_openai_error_bodies(server):
    c = httpx.Client(base_url=server.base, timeout=60)
    missing = c.post("/v1/kb/nowhere/search", json={"query": "hello"})
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "knowledge_base_not_found"
    assert "clearlm kb create nowhere" in missing.json()["error"]["message"]
    assert c.post("/v1/kb", json={"name": "bad name!"}).status_code == 400
    c.post("/v1/kb", json={"name": "kb"})
    sneaky = c.post("/v1/kb/kb/files", json={"files": [{"filename": "../x.md", "content": "hi"}]})
    assert sneaky.status_code == 400 and "no folders" in sneaky.json()["error"]["message"]
    garbled = c.post(
        "/v1/kb/kb/files", json={"files": [{"filename": "a.pdf", "content": "%%%", "encoding": "base64"}]}
    )
    assert garbled.status_code == 400 and "base64" in garbled.json()["error"]["message"]
    assert c.post("/v1/kb/kb/files", json={"files": []}).status_code in (400, 422)
    empty = c.post("/v1/kb/kb/search", json={"query": "  "})
    assert empty.status_code == 400 and "empty" in empty.json()["error"]["message"]
    assert c.post("/v1/kb/kb/search", json={"query": "x", "k": 0}).status_code == 400


def _clinic(c) -> None:
    c.post("/v1/kb", json={"name": "clinic", "chunk_tokens": 64, "overlap": 8})
    files = [{"filename": "handbook.md", "content": GUIDE}, {"filename": "billing.md", "content": BILLING}]
    assert c.post("/v1/kb/clinic/files", json={"files": files}).status_code == 200


def test_chat_completion_answers_from_a_knowledge_base(server):
    c = httpx.Client(base_url=server.base, timeout=300)
    _clinic(c)
    question = "When is the clinic open on Saturdays?"
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": question}]
    plain = c.post(
        "/v1/chat/completions", json={"model": "tiny-random-qwen2", "messages": messages, "max_tokens": 6}
    )
    body = {
        "model": "tiny-random-qwen2",
        "messages": messages,
        "max_tokens": 6,
        "knowledge_base": {"name": "clinic", "k": 2, "ablations": 4},
    }
    r = c.post("/v1/chat/completions", json=body)
    assert r.status_code == 200, r.text
    out = r.json()
    cited = out["citations"]
    assert cited["question"] == question and cited["text"] == out["choices"][0]["message"]["content"]
    paths = [x["path"] for x in cited["passages"]]
    assert (
        len(paths) == 2 and paths[0].endswith("handbook.md") and "Saturdays" in cited["passages"][0]["text"]
    )
    # the passages went into the prompt the model saw, and every passage has an attribution
    assert out["usage"]["prompt_tokens"] > plain.json()["usage"]["prompt_tokens"] + 40
    assert len(cited["support"]) == 2 and len(cited["attribution"]["weights"]) == 2
    rec = server.state.audit.get(out["id"])
    assert rec.parameters["retrieval"]["knowledge_base"] == "clinic"
    assert rec.parameters["retrieval"]["passages"] == [x["chunk_id"] for x in cited["passages"]]

    streamed = c.post("/v1/chat/completions", json={**body, "stream": True})
    events = [line[6:] for line in streamed.text.splitlines() if line.startswith("data: ")]
    last = [json.loads(e) for e in events if e != "[DONE]" and json.loads(e).get("citations")]
    assert len(last) == 1 and last[0]["citations"]["attribution"] is None
    assert [x["chunk_id"] for x in last[0]["citations"]["passages"]] == [
        x["chunk_id"] for x in cited["passages"]
    ]


def test_an_extracted_answer_quotes_the_passage_and_cites_the_span(server):
    c = httpx.Client(base_url=server.base, timeout=300)
    _clinic(c)
    body = {
        "model": "tiny-random-qwen2",
        "messages": [{"role": "user", "content": "When is the clinic open on Saturdays?"}],
        "knowledge_base": {"name": "clinic", "k": 2, "answer": "extract", "attribute": False},
    }
    r = c.post("/v1/chat/completions", json=body)
    assert r.status_code == 200, r.text
    out = r.json()
    text = out["choices"][0]["message"]["content"]
    assert "On Saturdays it opens from 9 am to noon. [1]" in text
    # quoted, not generated: an ordinary end, and no generated tokens
    assert out["choices"][0]["finish_reason"] == "stop" and out["usage"]["completion_tokens"] == 0
    cited = out["citations"]
    quoted = [x for x in cited["citations"] if x["passage"] == 0]
    passage = cited["passages"][0]["text"]
    assert any(
        passage[x["quote_start"] : x["quote_end"]] == "On Saturdays it opens from 9 am to noon"
        for x in quoted
    )
    assert server.state.audit.get(out["id"]).parameters["answer"] == "extract"
    bad = c.post(
        "/v1/chat/completions", json={**body, "knowledge_base": {"name": "clinic", "answer": "guess"}}
    )
    assert bad.status_code == 400 and "answer" in bad.json()["error"]["message"]


def test_knowledge_base_errors_in_chat(server):
    c = httpx.Client(base_url=server.base, timeout=120)
    user = [{"role": "user", "content": "hello"}]
    missing = c.post(
        "/v1/chat/completions",
        json={"model": "tiny-random-qwen2", "messages": user, "knowledge_base": "nope"},
    )
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "knowledge_base_not_found"
    c.post("/v1/kb", json={"name": "empty"})
    empty = c.post(
        "/v1/chat/completions",
        json={"model": "tiny-random-qwen2", "messages": user, "knowledge_base": "empty"},
    )
    assert empty.status_code == 400 and "holds no documents" in empty.json()["error"]["message"]
    _clinic(c)
    ends_with_assistant = [*user, {"role": "assistant", "content": "hi"}]
    r = c.post(
        "/v1/chat/completions",
        json={"model": "tiny-random-qwen2", "messages": ends_with_assistant, "knowledge_base": "clinic"},
    )
    assert r.status_code == 400 and "user's question" in r.json()["error"]["message"]
    bad = c.post(
        "/v1/chat/completions",
        json={"model": "tiny-random-qwen2", "messages": user, "knowledge_base": {"name": "clinic", "k": 0}},
    )
    assert bad.status_code in (400, 422)
    statuses = [r.status_code for r in server.state.audit.records() if r.endpoint == "/v1/chat/completions"]
    assert sorted(statuses) == [400, 400, 400, 404]


def test_a_kb_db_server_keeps_one_engine_for_every_request(
    serve, long_backend, tmp_path, monkeypatch, postgres_url
):
    """With --kb-db, every request and tenant shares one SQLAlchemy engine (one connection pool); before,
    each request built its own and never closed it."""
    import uuid

    import psycopg

    import clearlm.knowledge.index.pgvector as pgvector
    from clearlm.models.embeddings import load_embedder

    name = "srv_" + uuid.uuid4().hex[:12]
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = postgres_url.replace("/postgres?", f"/{name}?", 1)
    engines = []
    real = pgvector.create_engine
    monkeypatch.setattr(
        pgvector, "create_engine", lambda *a, **kw: engines.append(real(*a, **kw)) or engines[-1]
    )
    monkeypatch.setenv("CLEARLM_HOME", str(tmp_path / "home"))
    server = serve(long_backend, embedder=load_embedder(), files_dir=str(tmp_path / "uploads"), kb_url=url)
    _, other = server.state.keys.create("clinic app", tenant="clinic")
    _, mine = server.state.keys.create("default app")
    c = httpx.Client(base_url=server.base, timeout=120, headers={"Authorization": f"Bearer {mine}"})
    _clinic(c)
    for _ in range(3):
        assert c.post("/v1/kb/clinic/search", json={"query": "opening hours", "k": 1}).json()["data"]
    assert c.get("/v1/kb/clinic").status_code == 200 and len(c.get("/v1/kb").json()["data"]) == 1
    answer = c.post(
        "/v1/chat/completions",
        json={
            "model": "tiny-random-qwen2",
            "messages": [{"role": "user", "content": "When does the clinic open?"}],
            "max_tokens": 2,
            "knowledge_base": {"name": "clinic", "k": 1, "attribute": False},
        },
    )
    assert answer.status_code == 200, answer.text
    theirs = httpx.Client(base_url=server.base, timeout=60, headers={"Authorization": f"Bearer {other}"})
    assert theirs.get("/v1/kb/clinic").status_code == 404 and theirs.get("/v1/kb").json()["data"] == []
    assert c.delete("/v1/kb/clinic/files/billing.md").json()["deleted"] is True
    assert len(engines) == 1
    with psycopg.connect(postgres_url) as conn:
        held = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = %s", (name,)).fetchone()[0]
    assert 1 <= held <= 5  # the one pool's connections (pool_size 5)
    server.stop()
    with psycopg.connect(postgres_url) as conn:
        left = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = %s", (name,)).fetchone()[0]
    assert left == 0
