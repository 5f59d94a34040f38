"""/v1/kb browsing and multipart upload over a real server: files with their sizes, chunks page by page
and by id, per-file upload results (added with chunk counts; skipped with the reason), bounds, tenants."""

from __future__ import annotations

import httpx2 as httpx
import pytest

GUIDE = """# Clinic handbook

## Opening hours

The clinic opens at 8 am and closes at 6 pm on weekdays. On Saturdays it opens from 9 am to noon.

## Prescriptions

Repeat prescriptions are requested through the patient portal and are ready after two working days.

## Parking

Parking is free for patients in the car park behind the clinic. Bicycles go in the rack by the door.
"""

BILLING = "Invoices are sent by email at the end of each month. Payment is due within thirty days.\n"


@pytest.fixture
def server(serve, tiny_backend, tmp_path, monkeypatch):
    from clearlm.models.embeddings import load_embedder

    monkeypatch.setenv("CLEARLM_HOME", str(tmp_path / "home"))
    return serve(tiny_backend, embedder=load_embedder(), files_dir=str(tmp_path / "uploads"))


def _upload(c, name: str, files: list[tuple[str, bytes]]):
    return c.post(f"/v1/kb/{name}/upload", files=[("files", (n, data)) for n, data in files])


def test_multipart_upload_answers_per_file(server, tmp_path, monkeypatch):
    import clearlm.server.protocol as p

    c = httpx.Client(base_url=server.base, timeout=120)
    assert c.post("/v1/kb", json={"name": "clinic", "chunk_tokens": 32, "overlap": 0}).status_code == 201
    monkeypatch.setattr(p, "MAX_FILE_BYTES", 2000)  # the server runs in this process
    r = _upload(
        c,
        "clinic",
        [
            ("handbook.md", GUIDE.encode()),
            ("billing.txt", BILLING.encode()),
            ("tool.exe", b"MZ\x90\x00"),
            ("blank.txt", b""),
            ("spaces.txt", b"   \n\n  "),
            ("big.txt", b"word " * 500),
            ("billing.txt", b"another file of the same name"),
            ("copy.txt", BILLING.encode()),
            ("scan.pdf", b"%PDF-1.7 not really"),
            ("../evil.txt", b"hello"),
        ],
    )
    assert r.status_code == 200, r.text
    body = r.json()
    got = [(f["filename"], f["status"], f["code"]) for f in body["files"]]
    assert got == [
        ("handbook.md", "added", None),
        ("billing.txt", "added", None),
        ("tool.exe", "skipped", "unsupported_type"),
        ("blank.txt", "skipped", "empty"),
        ("spaces.txt", "skipped", "empty"),
        ("big.txt", "skipped", "too_large"),
        ("billing.txt", "skipped", "duplicate"),
        ("copy.txt", "skipped", "duplicate"),
        ("scan.pdf", "skipped", "unreadable"),
        ("../evil.txt", "skipped", "bad_name"),
    ]
    handbook, billing, exe, _, _, big, twice, copy, pdf, _ = body["files"]
    assert handbook["chunks"] >= 3 and billing["chunks"] == 1 and billing["bytes"] == len(BILLING)
    assert ".exe" in exe["reason"] and "2,000 bytes" in big["reason"] and "PDF" in pdf["reason"]
    assert "two files named billing.txt" in twice["reason"] and "as billing.txt" in copy["reason"]
    assert body["added"] == 2 and body["skipped"] == 8
    assert body["chunks"] == handbook["chunks"] + 1
    uploads = tmp_path / "uploads" / "clinic"
    assert sorted(x.name for x in uploads.iterdir()) == ["billing.txt", "handbook.md"]  # skipped: not kept

    again = _upload(c, "clinic", [("handbook.md", GUIDE.encode())]).json()["files"][0]
    assert again["code"] == "duplicate" and "under this name" in again["reason"]
    changed = _upload(c, "clinic", [("billing.txt", b"Invoices now arrive by post.\n")]).json()
    assert changed["files"][0]["status"] == "replaced" and changed["chunks"] == 1

    missing = _upload(c, "nowhere", [("a.txt", b"hello")])
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "knowledge_base_not_found"
    none = c.post("/v1/kb/clinic/upload", files=[("other", ("a.txt", b"x"))])
    assert none.status_code == 400 and "files" in none.json()["error"]["message"]
    many = _upload(c, "clinic", [(f"f{i}.txt", b"x") for i in range(p.MAX_UPLOAD_FILES + 1)])
    assert many.status_code == 400 and f"at most {p.MAX_UPLOAD_FILES}" in many.json()["error"]["message"]


def test_files_and_chunks_browse_page_by_page(server):
    c = httpx.Client(base_url=server.base, timeout=120)
    c.post("/v1/kb", json={"name": "clinic", "chunk_tokens": 32, "overlap": 0})
    _upload(c, "clinic", [("handbook.md", GUIDE.encode()), ("billing.txt", BILLING.encode())])

    files = c.get("/v1/kb/clinic/files").json()
    assert [f["filename"] for f in files["data"]] == ["billing.txt", "handbook.md"]
    hb = files["data"][1]
    assert hb["bytes"] == len(GUIDE.encode()) and hb["kind"] == "md" and hb["uploaded"] is True
    assert hb["title"] == "Clinic handbook" and hb["added_at"].startswith("20") and files["total"] == 2
    one = c.get("/v1/kb/clinic/files", params={"limit": 1, "offset": 1}).json()
    assert [f["filename"] for f in one["data"]] == ["handbook.md"] and one["has_more"] is False

    n = hb["chunks"]
    assert n >= 3
    everything = c.get("/v1/kb/clinic/chunks", params={"limit": 100}).json()
    assert everything["total"] == n + 1 and len(everything["data"]) == n + 1
    assert [x["path"] for x in everything["data"]] == ["billing.txt"] + ["handbook.md"] * n
    assert [x["ordinal"] for x in everything["data"]] == [0, *range(n)]
    # pages of 2 across the file boundary give the same chunks in the same order
    paged = []
    for offset in range(0, n + 1, 2):
        page = c.get("/v1/kb/clinic/chunks", params={"limit": 2, "offset": offset}).json()
        assert page["has_more"] == (offset + 2 < n + 1)
        paged += page["data"]
    assert [x["chunk_id"] for x in paged] == [x["chunk_id"] for x in everything["data"]]

    mine = c.get("/v1/kb/clinic/chunks", params={"file": "handbook.md", "offset": 1, "limit": 1}).json()
    second = mine["data"][0]
    assert mine["total"] == n and second["ordinal"] == 1 and second["heading_path"][-1] == "Prescriptions"
    assert "patient portal" in second["text"] and second["end"] - second["start"] == len(second["text"])

    by_id = c.get(f"/v1/kb/clinic/chunks/{second['chunk_id']}").json()
    assert by_id["text"] == second["text"] and by_id["object"] == "knowledge_base.chunk"
    gone = c.get("/v1/kb/clinic/chunks/0123456789abcdef0123")
    assert gone.status_code == 404 and gone.json()["error"]["code"] == "chunk_not_found"
    assert c.get("/v1/kb/clinic/chunks/not-an-id").status_code == 400
    nofile = c.get("/v1/kb/clinic/chunks", params={"file": "nope.md"})
    assert nofile.status_code == 404 and nofile.json()["error"]["code"] == "source_not_found"
    assert c.get("/v1/kb/clinic/chunks", params={"limit": 101}).status_code == 400
    assert c.get("/v1/kb/clinic/files", params={"limit": 0}).status_code == 400

    # search takes MMR's lambda in [0, 1] and refuses it outside
    plain = c.post("/v1/kb/clinic/search", json={"query": "clinic opening hours", "k": 3, "mode": "vector"})
    mmr = c.post("/v1/kb/clinic/search", json={"query": "clinic opening hours", "k": 3, "mmr": 0.3})
    assert plain.status_code == 200 and mmr.status_code == 200 and len(mmr.json()["data"]) == 3
    assert c.post("/v1/kb/clinic/search", json={"query": "x", "mmr": 1.5}).status_code == 400


def test_another_tenant_browses_nothing(server):
    _, mine = server.state.keys.create("me")
    _, other = server.state.keys.create("them", tenant="other")
    c = httpx.Client(base_url=server.base, timeout=120, headers={"Authorization": f"Bearer {mine}"})
    c.post("/v1/kb", json={"name": "clinic"})
    r = _upload(c, "clinic", [("billing.txt", BILLING.encode())]).json()
    cid = c.get("/v1/kb/clinic/chunks").json()["data"][0]["chunk_id"]
    assert r["added"] == 1
    theirs = httpx.Client(base_url=server.base, timeout=60, headers={"Authorization": f"Bearer {other}"})
    for path in ("/v1/kb/clinic/files", "/v1/kb/clinic/chunks", f"/v1/kb/clinic/chunks/{cid}"):
        assert theirs.get(path).status_code == 404, path
    assert _upload(theirs, "clinic", [("x.txt", b"hello")]).status_code == 404


EMAIL = "billing.office@example.com"
PII = """
name: desk
store_redacted: true
output:
  - {scanner: pii, action: redact, entities: [EMAIL_ADDRESS]}
"""


def test_browsing_returns_what_the_output_policy_lets_through(serve, tiny_backend, tmp_path, monkeypatch):
    """As search results do, browsed chunks and file titles pass the output policy: an e-mail address in
    a document comes back redacted from the chunks, one chunk, the files list and the knowledge base's
    description, and the audit record names what was found."""
    from clearlm.models.embeddings import load_embedder

    monkeypatch.setenv("CLEARLM_HOME", str(tmp_path / "home"))
    policy = tmp_path / "desk.yaml"
    policy.write_text(PII)
    server = serve(tiny_backend, embedder=load_embedder(), files_dir=str(tmp_path / "up"), policy=str(policy))
    c = httpx.Client(base_url=server.base, timeout=120)
    c.post("/v1/kb", json={"name": "desk"})
    doc = f"# Write to {EMAIL}\n\n## Billing\n\nFor invoices and payments, write to {EMAIL} any day.\n"
    assert _upload(c, "desk", [("billing.md", doc.encode())]).json()["added"] == 1
    chunks = c.get("/v1/kb/desk/chunks").json()
    one = c.get(f"/v1/kb/desk/chunks/{chunks['data'][0]['chunk_id']}").json()
    files = c.get("/v1/kb/desk/files").json()
    info = c.get("/v1/kb/desk").json()
    for body in (chunks, one, files, info):
        assert EMAIL not in repr(body) and "<EMAIL_ADDRESS>" in repr(body)
    assert "write to <EMAIL_ADDRESS> any day" in one["text"]
    records = {r.endpoint: r for r in server.state.audit.records()}
    noted = records["/v1/kb/desk/chunks"].governance["returned"]
    assert noted and noted[0]["field"].startswith("data[0]") and EMAIL not in repr(noted)
