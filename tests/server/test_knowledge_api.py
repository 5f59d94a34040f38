"""/v1/kb over a real server: create, upload, list, search, delete, errors, and one audit record each."""

from __future__ import annotations

import base64

import httpx2 as httpx
import pytest

GUIDE = """# Clinic handbook

## Opening hours

The clinic opens at 8 am and closes at 6 pm on weekdays. On Saturdays it opens from 9 am to noon.

## Prescriptions

Repeat prescriptions are requested through the patient portal and are ready after two working days.
"""

BILLING = """# Billing

Invoices are sent by email at the end of each month. Payment is due within thirty days by bank transfer.
"""


@pytest.fixture
def server(serve, tiny_backend, tmp_path, monkeypatch):
    from clearlm.models.embeddings import load_embedder

    monkeypatch.setenv("CLEARLM_HOME", str(tmp_path / "home"))
    return serve(tiny_backend, embedder=load_embedder(), files_dir=str(tmp_path / "uploads"))


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
