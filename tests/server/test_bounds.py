"""Bounds on every size a caller controls, over a real server: each answers 4xx with an OpenAI-style body
(413 for a body or file too large), never a 5xx, and each is stated in /openapi.json."""

from __future__ import annotations

import base64
import http.client

import httpx2 as httpx
import pytest

from clearlm.server import protocol as p

MODEL = "tiny-random-qwen2"
HI = [{"role": "user", "content": "Where is the Eiffel Tower?"}]


@pytest.fixture(scope="module")
def server(tiny_backend, tmp_path_factory):
    """One server for the module (nothing here changes what later tests see but the kb folder's files)."""
    from clearlm.models.embeddings import load_embedder
    from clearlm.server import ServerConfig, ServerState
    from conftest import LiveServer

    tmp = tmp_path_factory.mktemp("bounds")
    config = ServerConfig(
        model=MODEL,
        db_url=f"sqlite:///{tmp / 'clearlm.db'}",
        files_dir=str(tmp / "uploads"),
        kb_url=None,
    )
    import os

    os.environ["CLEARLM_HOME"] = str(tmp / "home")
    live = LiveServer(ServerState(config, backend=tiny_backend, embedder=load_embedder()))
    yield live
    live.stop()
    os.environ.pop("CLEARLM_HOME", None)


@pytest.fixture(scope="module")
def c(server):
    return httpx.Client(base_url=server.base, timeout=120)


def refused(r, status: int = 400, needle: str | None = None) -> dict:
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["message"]
    if needle is not None:
        assert needle in error["message"] or needle == error["param"], error
    return error


def chat(**extra) -> dict:
    return {"model": MODEL, "messages": HI, "max_tokens": 2, **extra}


@pytest.mark.parametrize(
    "body,needle",
    [
        (chat(seed=2**70), "seed"),  # a 500 before the bound
        (chat(seed=-(2**63) - 1), "seed"),
        (chat(n=p.MAX_N + 1), "n"),
        (chat(max_tokens=2**70), "max_tokens"),
        (chat(max_completion_tokens=p.MAX_TOKENS + 1), "max_completion_tokens"),
        (chat(top_k=2**31), "top_k"),
        (chat(top_logprobs=p.MAX_TOP_LOGPROBS + 1, logprobs=True), "top_logprobs"),
        (chat(stop=["x" * (p.MAX_STOP_CHARS + 1)]), "stop"),
        (chat(stop=["a", "b", "c", "d", "e"]), "stop"),
        (chat(user="u" * (p.MAX_USER_CHARS + 1)), "user"),
        ({"model": "m" * (p.MAX_MODEL_CHARS + 1), "messages": HI}, "model"),
        ({"model": MODEL, "messages": HI * (p.MAX_MESSAGES + 1)}, "messages"),
        (
            {"model": MODEL, "messages": [{"role": "user", "content": "x" * (p.MAX_MESSAGE_CHARS + 1)}]},
            "content",
        ),
        (
            {
                "model": MODEL,
                "messages": [
                    {"role": "user", "content": [{"type": "text", "text": "x"}] * (p.MAX_CONTENT_PARTS + 1)}
                ],
            },
            "content",
        ),
        (
            {
                "model": MODEL,
                "messages": [{"role": "user", "content": [{"type": "text", "text": "x" * 150_000}] * 2}],
            },
            "characters in all",
        ),
        (chat(explain={"method": "integrated_gradients", "options": {"steps": p.MAX_IG_STEPS + 1}}), "steps"),
        (
            chat(explain={"method": "integrated_gradients", "options": {"steps": "many"}}),
            "steps",
        ),  # a 500 before
        (chat(explain={"method": "saliency", "options": {"rows_per_call": 10**6}}), "rows_per_call"),
        (chat(explain={"method": "occlusion", "options": {"batch_size": 0}}), "batch_size"),
        (chat(explain={"method": "attention", "options": {"layer": 10**30}}), "layer"),
        (chat(explain={"method": "contrastive", "options": {"contrast": "x" * 5000}}), "contrast"),
        (chat(explain={"method": "saliency", "options": {"telepathy": 1}}), "telepathy"),
        (chat(knowledge_base={"name": "kb", "k": p.MAX_KB_K + 1}), "k"),
        (chat(knowledge_base={"name": "kb", "ablations": p.MAX_ABLATIONS + 1}), "ablations"),
        (chat(knowledge_base="../../etc"), "knowledge base name"),
    ],
    ids=lambda v: None if isinstance(v, dict) else v,
)
def test_chat_bounds(c, body, needle):
    refused(c.post("/v1/chat/completions", json=body), 400, needle)


def test_a_vanishing_temperature_decodes_greedily(c):
    # 2.2e-308 divided the logits into infinities: "probability tensor contains inf" (a 500), found by schemathesis
    tiny = c.post("/v1/chat/completions", json=chat(temperature=2.2e-308, max_tokens=4))
    greedy = c.post("/v1/chat/completions", json=chat(temperature=0, max_tokens=4))
    assert tiny.status_code == 200, tiny.text
    assert (
        tiny.json()["choices"][0]["message"]["content"] == greedy.json()["choices"][0]["message"]["content"]
    )


def test_a_null_option_takes_its_default(c):
    # {"rows_per_call": null} reached the method as None: a TypeError, a 500 (found by schemathesis)
    body = chat(explain={"method": "saliency", "options": {"rows_per_call": None, "sequence": None}})
    r = c.post("/v1/chat/completions", json=body)
    assert r.status_code == 200, r.text
    assert r.json()["explanation"]["method"] == "saliency"


def test_the_largest_seed_is_taken(c):
    for seed in (p.SEED_MAX, p.SEED_MIN, 2**32):
        r = c.post("/v1/chat/completions", json=chat(seed=seed, temperature=1.0))
        assert r.status_code == 200, r.text


@pytest.mark.parametrize(
    "body,needle",
    [
        ({"completion_id": "c" * (p.MAX_ID_CHARS + 1)}, "completion_id"),
        ({"messages": HI, "target": "x" * (p.MAX_TARGET_CHARS + 1)}, "target"),
        (
            {"messages": HI, "method": "integrated_gradients", "options": {"internal_batch_size": 65}},
            "internal",
        ),
        ({"messages": HI, "method": "integrated_gradients", "options": {"tolerance": 2}}, "tolerance"),
    ],
)
def test_explain_bounds(c, body, needle):
    refused(c.post("/v1/explain", json=body), 400, needle)


@pytest.mark.parametrize(
    "body,needle",
    [
        ({"model": MODEL, "prompt": "x" * (p.MAX_MESSAGE_CHARS + 1)}, "prompt"),
        ({"model": MODEL, "prompt": ["a", "b"]}, "prompt"),
        ({"model": MODEL, "prompt": "hi", "logprobs": p.MAX_COMPLETION_LOGPROBS + 1}, "logprobs"),
        ({"model": MODEL, "prompt": "hi", "seed": 2**64}, "seed"),
    ],
)
def test_completion_bounds(c, body, needle):
    refused(c.post("/v1/completions", json=body), 400, needle)


@pytest.mark.parametrize(
    "body,needle",
    [
        ({"input": ["a"] * (p.MAX_EMBEDDING_INPUTS + 1)}, "input"),
        ({"input": "x" * (p.MAX_EMBEDDING_CHARS + 1)}, "input"),
        ({"input": []}, "input"),
        ({"input": "a", "dimensions": 2**70}, "dimensions"),
    ],
)
def test_embedding_bounds(c, body, needle):
    refused(c.post("/v1/embeddings", json={"model": "all-minilm-l6-v2", **body}), 400, needle)


def test_the_body_is_bounded_with_413(c, server):
    big = b'{"model": "x", "messages": [], "pad": "' + b"x" * p.MAX_BODY_BYTES + b'"}'
    error = refused(
        c.post("/v1/chat/completions", content=big, headers={"content-type": "application/json"}), 413
    )
    assert error["code"] == "payload_too_large" and f"{p.MAX_BODY_BYTES:,}" in error["message"]

    def chunks():  # no Content-Length: counted as it arrives
        yield b'{"model": "x", "pad": "'
        for _ in range(p.MAX_BODY_BYTES // 2**20 + 1):
            yield b"x" * 2**20
        yield b'"}'

    error = refused(
        c.post("/v1/embeddings", content=chunks(), headers={"content-type": "application/json"}), 413
    )
    assert error["code"] == "payload_too_large"
    records = [r for r in server.state.audit.records() if r.status_code == 413]
    assert len(records) == 2 and all(r.error for r in records)


@pytest.fixture(scope="module")
def kb(c):
    assert c.post("/v1/kb", json={"name": "docs", "chunk_tokens": 64, "overlap": 8}).status_code == 201
    files = [{"filename": f"f{i}.md", "content": f"# File {i}\n\nThe number {i} is here."} for i in range(3)]
    assert c.post("/v1/kb/docs/files", json={"files": files}).status_code == 200
    return "docs"


def _held(c, kb) -> list[str]:
    return sorted(f["filename"] for f in c.get(f"/v1/kb/{kb}").json()["files"])


def test_deleting_dot_or_dotdot_removes_nothing(c, kb, server):
    before = _held(c, kb)
    assert before == ["f0.md", "f1.md", "f2.md"]
    for path in ("%2E", "%2E%2E", "..%2F..%2Fclearlm.db", ".hidden"):
        r = c.delete(f"/v1/kb/{kb}/files/{path}")
        assert 400 <= r.status_code < 500 and r.json()["error"]["message"], (path, r.status_code)
    # literally "/." and "/..", as a client that does not normalise the path sends them
    host, port = server.base.removeprefix("http://").split(":")
    for raw in (f"/v1/kb/{kb}/files/.", f"/v1/kb/{kb}/files/..", f"/v1/kb/{kb}/files//etc/passwd"):
        conn = http.client.HTTPConnection(host, int(port), timeout=30)
        conn.request("DELETE", raw)
        r = conn.getresponse()
        assert 400 <= r.status < 500, (raw, r.status)
        conn.close()
    assert _held(c, kb) == before
    assert c.delete(f"/v1/kb/{kb}/files/f2.md").json()["deleted"] is True
    assert _held(c, kb) == ["f0.md", "f1.md"]


def test_upload_bounds(c, kb):
    many = [{"filename": f"n{i}.md", "content": "x"} for i in range(p.MAX_UPLOAD_FILES + 1)]
    refused(c.post(f"/v1/kb/{kb}/files", json={"files": many}), 400, "files")
    huge = base64.b64encode(b"a" * (p.MAX_FILE_BYTES + 1)).decode()
    error = refused(
        c.post(
            f"/v1/kb/{kb}/files",
            json={"files": [{"filename": "big.txt", "content": huge, "encoding": "base64"}]},
        ),
        413,
    )
    assert error["code"] == "payload_too_large" and "big.txt" in error["message"]
    for name in ("/etc/passwd", "..", ".env", "a/b.md", "x" * 129 + ".md"):
        refused(c.post(f"/v1/kb/{kb}/files", json={"files": [{"filename": name, "content": "hi"}]}), 400)
    assert "big.txt" not in _held(c, kb)


def test_knowledge_base_name_and_search_bounds(c, kb):
    for name in ("x" * 65, "../up", ".hidden", "a b", ""):
        refused(c.post("/v1/kb", json={"name": name}), 400)
    refused(c.get("/v1/kb/%2E%2E"), 400)
    refused(c.get("/v1/kb/" + "x" * 65), 400)
    refused(c.post("/v1/kb", json={"name": "ok", "chunk_tokens": 10_000}), 400, "chunk_tokens")
    search = f"/v1/kb/{kb}/search"
    refused(c.post(search, json={"query": "x", "k": p.MAX_SEARCH_K + 1}), 400, "k")
    refused(c.post(search, json={"query": "x" * (p.MAX_QUERY_CHARS + 1)}), 400, "query")
    refused(c.post(search, json={"query": "x", "mmr": 2}), 400, "mmr")
    for prefix in ("../other", "/etc", "a/../../b"):
        refused(c.post(search, json={"query": "number", "path_prefix": prefix}), 400, "path_prefix")
    assert (
        c.post(search, json={"query": "number", "path_prefix": "f1.md"}).json()["data"][0]["path"] == "f1.md"
    )


def test_every_bound_is_in_the_openapi_schema(c):
    schema = c.get("/openapi.json").json()
    s = schema["components"]["schemas"]
    chat_ = s["ChatCompletionRequest"]["properties"]
    assert chat_["messages"]["maxItems"] == p.MAX_MESSAGES
    assert (
        float(chat_["seed"]["anyOf"][0]["maximum"]) == float(p.SEED_MAX) and chat_["n"]["maximum"] == p.MAX_N
    )
    assert chat_["max_tokens"]["anyOf"][0]["maximum"] == p.MAX_TOKENS
    assert str(p.MAX_MESSAGES) in chat_["messages"]["description"]
    options = s["ExplainOptions"]["properties"]
    assert options["steps"]["anyOf"][0]["maximum"] == p.MAX_IG_STEPS
    assert str(p.MAX_IG_STEPS) in options["steps"]["description"]
    assert s["ExplainOptions"]["additionalProperties"] is False
    embed = s["EmbeddingRequest"]["properties"]["input"]
    assert embed["anyOf"][1]["maxItems"] == p.MAX_EMBEDDING_INPUTS
    assert embed["anyOf"][0]["maxLength"] == p.MAX_EMBEDDING_CHARS
    files = s["KnowledgeBaseFiles"]["properties"]["files"]
    assert files["maxItems"] == p.MAX_UPLOAD_FILES and "MiB" in files["description"]
    assert s["UploadedFile"]["properties"]["filename"]["pattern"] == p.FILENAME_PATTERN
    delete = schema["paths"]["/v1/kb/{name}/files/{filename}"]["delete"]
    [filename] = [x for x in delete["parameters"] if x["name"] == "filename"]
    assert filename["schema"]["pattern"] == p.FILENAME_PATTERN
    assert "413" in delete["responses"] and "403" in schema["paths"]["/v1/keys"]["get"]["responses"]
