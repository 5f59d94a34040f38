"""/v1/studio on a real server (uvicorn on loopback, SQLite, the tiny model): a project with a bible and an
outline, a draft (audited turns), a person's edit, a word diff and a restore, the export with the
disclosure headers; another tenant's project is 404 and bad input 400 with OpenAI-style bodies."""

from __future__ import annotations

import io
import zipfile

import httpx
import pytest


@pytest.fixture
def api(serve, studio_backend):
    live = serve(studio_backend)
    clients = {}
    for name, tenant in [("acme", "acme"), ("zeta", "zeta")]:
        _, secret = live.state.keys.create(name, tenant=tenant, scope="user")
        clients[name] = httpx.Client(
            base_url=live.url, headers={"Authorization": f"Bearer {secret}"}, timeout=120
        )
    yield live, clients
    for c in clients.values():
        c.close()


def ok(r: httpx.Response) -> dict:
    assert r.status_code == 200, r.text
    return r.json()


def test_plan_draft_edit_diff_restore_export(api):
    live, c = api
    a = c["acme"]
    p = ok(a.post("/studio/projects", json={"title": "The Keeper", "premise": "A keeper hides a debt."}))
    pid = p["id"]
    ok(a.post(f"/studio/projects/{pid}/bible", json={"kind": "character", "name": "Mara Voss", "aliases": ["Mara"],
                                                     "text": "Mara has green eyes."}))  # fmt: skip
    part = ok(a.post(f"/studio/projects/{pid}/nodes", json={"kind": "part", "title": "One"}))
    ch = ok(
        a.post(
            f"/studio/projects/{pid}/nodes",
            json={"kind": "chapter", "title": "Storm", "parent_id": part["id"]},
        )
    )
    sc = ok(a.post(f"/studio/projects/{pid}/nodes", json={"kind": "scene", "title": "Knock", "parent_id": ch["id"],
                                                         "beats": ["Mara opens the door"]}))  # fmt: skip
    tree = ok(a.get(f"/studio/projects/{pid}"))
    assert tree["outline"][0]["children"][0]["children"][0]["beats"] == ["Mara opens the door"]
    base = f"/studio/projects/{pid}/scenes/{sc['id']}"
    drafted = ok(a.post(f"{base}/draft", json={"words": 12}))
    assert [b["name"] for b in drafted["bible"]] == ["Mara Voss"] and drafted["version"]["number"] == 1
    record = live.state.audit.get(drafted["request_id"], tenant="acme")
    assert record.endpoint == "studio:draft" and "green eyes" in record.prompt[-1]["content"]
    edited = ok(a.put(f"{base}/text", json={"text": "Mara opened the door. The wind howled."}))
    assert (edited["number"], edited["author"]) == (2, "person")
    diff = ok(a.get(f"{base}/diff", params={"a": 1, "b": 2}))
    assert "".join(o["new"] for o in diff["ops"]) == "Mara opened the door. The wind howled."
    restored = ok(a.post(f"{base}/restore", json={"number": 1}))
    assert restored["number"] == 3 and restored["text"] == drafted["version"]["text"]
    mine = "Mara opened the door. Her blue eyes gave nothing away."
    ok(a.put(f"{base}/text", json={"text": mine + "\n\n" + restored["text"]}))
    shaped = ok(a.post(f"{base}/attribute", json={"paragraph": 0, "ablations": 4}))
    assert [e["name"] for e in shaped["entries"]] == ["Mara Voss"] and shaped["exact"] is True
    checked = ok(a.post(f"{base}/check", json={"use_model": False}))
    assert [(f["method"], f["bible_value"], f["scene_value"]) for f in checked["flags"]] == [
        ("rule", "green", "blue")
    ]
    scene = ok(a.get(base))
    assert [v["operation"] for v in scene["versions"]] == ["draft", "edit", "restore", "edit"]
    r = a.get(f"/studio/projects/{pid}/export", params={"format": "epub"})
    assert r.status_code == 200 and r.headers["x-ai-generated"] == "true"
    assert zipfile.ZipFile(io.BytesIO(r.content)).read("mimetype") == b"application/epub+zip"
    side = ok(a.get(f"/studio/projects/{pid}/export", params={"format": "sidecar"}))
    statuses = [x["status"] for x in side["passages"]]
    assert (
        side["models"] == ["tiny-random-qwen2"]
        and statuses[0] == "written by a person"
        and "generated" in statuses
    )
    # another tenant's project is not found; bad input is a 400 with a message
    r = c["zeta"].get(f"/studio/projects/{pid}")
    assert r.status_code == 404 and "no project" in r.json()["error"]["message"]
    r = a.post(
        f"/studio/projects/{pid}/bible", json={"kind": "character", "name": "Mara Voss", "text": "again"}
    )
    assert r.status_code == 400 and "already" in r.json()["error"]["message"]
    r = a.post(f"{base}/rewrite", json={"start": 0, "end": 9999, "instruction": "shorter"})
    assert r.status_code == 400 and "not inside the scene" in r.json()["error"]["message"]
