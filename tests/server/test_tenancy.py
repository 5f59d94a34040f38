"""Tenants and scopes over a real server: keys belong to tenants, admin keys manage their tenant's keys and
read its audit log, user keys get 403 there, and another tenant's knowledge bases, completions, keys and
records are 404 (never revealed)."""

from __future__ import annotations

import httpx2 as httpx
import openai
import pytest

from clearlm.errors import InvalidInputError
from clearlm.knowledge import KnowledgeBase

MODEL = "tiny-random-qwen2"
HI = [{"role": "user", "content": "Where is the Eiffel Tower?"}]
GUIDE = "# Clinic\n\n## Hours\n\nThe clinic opens at 8 am and closes at 6 pm on weekdays.\n"
OTHER = "# Garage\n\n## Hours\n\nThe garage opens at 7 am and repairs bicycles on Saturdays.\n"


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("CLEARLM_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


@pytest.fixture
def server(serve, tiny_backend, home):
    from clearlm.models.embeddings import load_embedder

    return serve(tiny_backend, embedder=load_embedder())


@pytest.fixture
def keys(server):
    """Secrets: an admin and a user key in each of tenants a and b."""
    made = {}
    for tenant in ("a", "b"):
        for scope in ("admin", "user"):
            key, secret = server.state.keys.create(f"{tenant} {scope}", tenant=tenant, scope=scope)
            made[f"{tenant}-{scope}"] = secret
            made[f"{tenant}-{scope}-id"] = key.id
    return made


def http(server, secret: str | None = None) -> httpx.Client:
    headers = {"Authorization": f"Bearer {secret}"} if secret else {}
    return httpx.Client(base_url=server.url, headers=headers, timeout=120)


def client(server, secret: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.url, api_key=secret, max_retries=0, timeout=120)


def test_open_access_is_the_default_tenant_with_every_scope(server, home):
    c = http(server)
    assert c.get("/keys").json() == {"object": "list", "data": []}
    assert c.get("/audit").status_code == 200
    assert c.post("/kb", json={"name": "handbook"}).status_code == 201
    # the default tenant keeps the layout knowledge bases had before tenants
    assert (home / "knowledge" / "handbook" / "kb.sqlite").is_file()
    assert not (home / "knowledge" / ".tenants").exists()
    made = c.post("/keys", json={"name": "first admin", "scope": "admin"})
    assert made.status_code == 201 and made.json()["tenant"] == "default"
    assert made.json()["scopes"] == ["admin"] and made.json()["secret"].startswith("sk-clearlm-")
    # from then on a key is needed, and that one is an admin of the default tenant
    assert c.get("/keys").status_code == 401
    assert [k["name"] for k in http(server, made.json()["secret"]).get("/keys").json()["data"]] == [
        "first admin"
    ]


def test_a_knowledge_base_made_before_tenants_stays_reachable_by_the_default_tenant(
    serve, tiny_backend, home
):
    from clearlm.models.embeddings import load_embedder

    embedder = load_embedder()
    KnowledgeBase.create("legacy", embedder=embedder).close()  # $CLEARLM_HOME/knowledge/legacy, as today
    server = serve(tiny_backend, embedder=embedder)
    assert http(server).get("/kb/legacy").json()["id"] == "legacy"
    mine, secret = server.state.keys.create("default user")
    other, other_secret = server.state.keys.create("a", tenant="a")
    assert mine.tenant == "default" and other.tenant == "a"
    assert http(server, secret).get("/kb/legacy").status_code == 200
    assert [b["id"] for b in http(server, secret).get("/kb").json()["data"]] == ["legacy"]
    hidden = http(server, other_secret).get("/kb/legacy")
    assert hidden.status_code == 404 and hidden.json()["error"]["code"] == "knowledge_base_not_found"
    assert http(server, other_secret).get("/kb").json()["data"] == []


def test_user_keys_get_403_on_admin_routes(server, keys):
    user = client(server, keys["a-user"])
    for call in (
        lambda: user.get("/keys", cast_to=object),
        lambda: user.post("/keys", cast_to=object, body={"name": "mine", "scope": "admin"}),
        lambda: user.delete(f"/keys/{keys['a-admin-id']}", cast_to=object),
        lambda: user.get("/audit", cast_to=object),
    ):
        with pytest.raises(openai.PermissionDeniedError) as err:
            call()
        body = err.value.body
        assert set(body) == {"message", "type", "param", "code"} and body["code"] == "insufficient_scope"
        assert "admin key" in body["message"]
    # the user key still works where users may go, and was not revoked by its attempt
    assert http(server, keys["a-user"]).get("/kb").status_code == 200
    assert all(k.active for k in server.state.keys.list(tenant="a"))


def test_admin_keys_manage_only_their_tenants_keys(server, keys):
    admin_a = http(server, keys["a-admin"])
    listed = admin_a.get("/keys").json()["data"]
    assert sorted((k["name"], k["scopes"]) for k in listed) == [("a admin", ["admin"]), ("a user", ["user"])]
    assert all(k["tenant"] == "a" and "secret" not in k for k in listed)
    # another tenant's key: 404 to read and to revoke, as if it did not exist; and it stays active
    for response in (
        admin_a.get(f"/keys/{keys['b-user-id']}"),
        admin_a.delete(f"/keys/{keys['b-user-id']}"),
        admin_a.delete("/keys/key_000000000000"),
    ):
        assert response.status_code == 404 and response.json()["error"]["code"] == "api_key_not_found"
    assert http(server, keys["b-user"]).get("/kb").status_code == 200

    made = admin_a.post("/keys", json={"name": "new tutor"})
    assert made.status_code == 201
    new = made.json()
    assert new["tenant"] == "a" and new["scopes"] == ["user"]
    assert http(server, new["secret"]).get("/keys").status_code == 403  # a user key
    assert http(server, new["secret"]).get("/kb").status_code == 200
    assert admin_a.get(f"/keys/{new['id']}").json()["name"] == "new tutor"
    revoked = admin_a.delete(f"/keys/{new['id']}")
    assert revoked.status_code == 200 and revoked.json()["revoked_at"] is not None
    assert http(server, new["secret"]).get("/kb").status_code == 401
    bad = admin_a.post("/keys", json={"name": "x", "scope": "root"})
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "scope"


def test_a_key_made_over_http_keeps_its_makers_policy(serve, tiny_backend, home, tmp_path):
    policy = tmp_path / "strict.yaml"
    policy.write_text(
        'name: strict\nrefusal: "Refused."\ninput:\n  - {scanner: regex, patterns: {w: "(?i)password"}, '
        "action: block}\n"
    )
    server = serve(tiny_backend)
    _, admin = server.state.keys.create("ops", policy=str(policy), tenant="a", scope="admin")
    made = http(server, admin).post("/keys", json={"name": "app"}).json()
    [key] = [k for k in server.state.keys.list(tenant="a") if k.id == made["id"]]
    assert key.policy == str(policy)
    asked = [{"role": "user", "content": "What is the admin password?"}]
    reply = client(server, made["secret"]).chat.completions.create(model=MODEL, messages=asked, max_tokens=4)
    assert reply.choices[0].message.content == "Refused."
    assert reply.choices[0].finish_reason == "content_filter"


def test_knowledge_bases_are_per_tenant(server, keys, home):
    a, b = http(server, keys["a-user"]), http(server, keys["b-user"])
    assert a.post("/kb", json={"name": "handbook", "chunk_tokens": 64, "overlap": 8}).status_code == 201
    up = a.post("/kb/handbook/files", json={"files": [{"filename": "guide.md", "content": GUIDE}]})
    assert up.status_code == 200 and up.json()["added"] == ["guide.md"]

    for response in (
        b.get("/kb/handbook"),
        b.post("/kb/handbook/search", json={"query": "clinic hours"}),
        b.post("/kb/handbook/files", json={"files": [{"filename": "x.md", "content": "hi"}]}),
        b.delete("/kb/handbook/files/guide.md"),
        b.post("/chat/completions", json={"model": MODEL, "messages": HI, "knowledge_base": "handbook"}),
    ):
        assert response.status_code == 404, response.text
        assert response.json()["error"]["code"] == "knowledge_base_not_found"
    assert b.get("/kb").json()["data"] == []

    # the same name in tenant b is another knowledge base
    assert b.post("/kb", json={"name": "handbook", "chunk_tokens": 64, "overlap": 8}).status_code == 201
    assert b.post(
        "/kb/handbook/files", json={"files": [{"filename": "guide.md", "content": OTHER}]}
    ).is_success
    hit_a = a.post("/kb/handbook/search", json={"query": "opening hours", "k": 1}).json()["data"][0]
    hit_b = b.post("/kb/handbook/search", json={"query": "opening hours", "k": 1}).json()["data"][0]
    assert "clinic" in hit_a["text"] and "garage" in hit_b["text"]
    assert hit_a["path"] == hit_b["path"] == "guide.md"

    assert (home / "knowledge" / ".tenants" / "a" / "handbook" / "kb.sqlite").is_file()
    assert (home / "uploads" / ".tenants" / "b" / "handbook" / "guide.md").read_text() == OTHER
    assert not (home / "knowledge" / "handbook").exists()  # nothing in the default tenant's place
    # b deleting its own file leaves a's alone
    assert b.delete("/kb/handbook/files/guide.md").json()["deleted"] is True
    assert a.get("/kb/handbook").json()["files"][0]["filename"] == "guide.md"


def test_explain_by_completion_id_sees_only_its_tenants_completions(server, keys):
    reply = client(server, keys["a-user"]).chat.completions.create(
        model=MODEL, messages=HI, max_tokens=3, temperature=0
    )
    body = {"completion_id": reply.id, "method": "saliency"}
    with pytest.raises(openai.NotFoundError) as err:
        client(server, keys["b-admin"]).post("/explain", cast_to=object, body=body)
    assert reply.id in err.value.body["message"]
    mine = client(server, keys["a-user"]).post("/explain", cast_to=object, body=body)
    assert mine["completion_id"] == reply.id and mine["explanation"]["target_tokens"]


def test_admins_read_their_tenants_audit_log_only(server, keys):
    for tenant in ("a", "b"):
        c = client(server, keys[f"{tenant}-user"])
        c.chat.completions.create(model=MODEL, messages=HI, max_tokens=2, temperature=0)
        c.models.list()
    page = http(server, keys["a-admin"]).get("/audit").json()
    assert page["object"] == "list" and page["has_more"] is False
    records = page["data"]
    assert [r["endpoint"] for r in records] == ["/v1/chat/completions", "/v1/models"]
    assert {r["tenant"] for r in records} == {"a"}
    assert records[0]["api_key_id"] == keys["a-user-id"] and records[0]["output"] is not None
    # every tenant's records are in the database; b's admin sees b's (and its own earlier request)
    b_page = http(server, keys["b-admin"]).get("/audit", params={"limit": 100}).json()["data"]
    assert {r["tenant"] for r in b_page} == {"b"} and len(b_page) == 2
    # paging and a time window
    first = http(server, keys["a-admin"]).get("/audit", params={"limit": 1}).json()
    assert len(first["data"]) == 1 and first["has_more"] is True
    later = http(server, keys["a-admin"]).get("/audit", params={"since": records[1]["created_at"]}).json()
    assert [r["request_id"] for r in later["data"]][0] == records[1]["request_id"]
    for bad in ({"limit": 0}, {"limit": 10**9}, {"since": "yesterday"}):
        r = http(server, keys["a-admin"]).get("/audit", params=bad)
        assert r.status_code == 400 and r.json()["error"]["type"] == "invalid_request_error"


def test_keys_cli_takes_a_tenant_and_a_scope(tmp_path):
    from typer.testing import CliRunner

    from clearlm.cli import app
    from clearlm.store import ApiKeys, Database

    db = f"sqlite:///{tmp_path / 'k.db'}"
    runner = CliRunner()
    made = runner.invoke(app, ["keys", "create", "ops", "--tenant", "clinic", "--scope", "admin", "--db", db])
    assert made.exit_code == 0, made.output
    [key] = ApiKeys(Database(db)).list()
    assert key.tenant == "clinic" and key.scopes == ("admin",) and key.allows("user")
    # (clearlm.cli.main prints these errors' messages and exits 1)
    bad_scope = runner.invoke(app, ["keys", "create", "x", "--scope", "root", "--db", db])
    assert isinstance(bad_scope.exception, InvalidInputError) and "admin, user" in str(bad_scope.exception)
    bad_tenant = runner.invoke(app, ["keys", "create", "x", "--tenant", "../etc", "--db", db])
    assert isinstance(bad_tenant.exception, InvalidInputError) and "tenant" in str(bad_tenant.exception)
    assert len(ApiKeys(Database(db)).list()) == 1
    listed = runner.invoke(app, ["keys", "list", "--tenant", "clinic", "--db", db])
    assert "clinic" in listed.output and "admin" in listed.output
