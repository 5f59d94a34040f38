"""/v1/translate over a real server with a real HTTP client: the engines and their pairs; Apertium and
Bergamot translations with a glossary's missing term reported; the LLM engine on the tiny model (its
turns audited, their ids returned); bad pairs, engines and subtitles as OpenAI-style 400s."""

from __future__ import annotations

import json

import httpx
import pytest


@pytest.fixture(scope="module")
def tiny_llm(tiny_tokenizer):
    """The tiny random Qwen2 with a 2,048-token context (a post-edit prompt takes ~400 of its tokens)."""
    from clearlm.models.backends.torch_backend import TorchBackend
    from conftest import make_model

    return TorchBackend(make_model(tiny_tokenizer, context=2048), tiny_tokenizer, "tiny-random-qwen2")


@pytest.fixture
def client(serve, tiny_llm):
    server = serve(tiny_llm)
    with httpx.Client(base_url=server.url, timeout=120) as c:  # server.url ends in /v1
        c.server = server
        yield c


def test_the_engines_and_their_pairs_are_listed(client):
    data = {e["name"]: e for e in client.get("/translate/engines").json()["data"]}
    assert list(data) == ["auto", "apertium", "bergamot", "llm", "hybrid"]
    assert data["bergamot"]["pairs"] == ["en-pt", "pt-en"] and data["llm"]["available"] is True
    assert "en-es" in data["apertium"]["pairs"] and "en-pt" in data["apertium"]["pivots"]


def test_a_text_is_translated_with_its_glossary_checked(client):
    r = client.post(
        "/translate",
        json={"text": "Your refund is ready. Send the order number.", "source": "en", "target": "es",
              "engine": "apertium", "glossary": {"order number": "número de pedido"}},
    )  # fmt: skip
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["text"] == "Vuestro reembolso está a punto. Enviar el número de orden."
    assert body["engine"] == "apertium" and body["flagged"] == [1] and body["request_ids"] == []
    assert body["sentences"][1]["missing_terms"] == [{"source": "order number", "target": "número de pedido"}]
    srt = "1\n00:00:01,000 --> 00:00:02,000\nWhere is my order?\n"
    r = client.post("/translate", json={"text": srt, "source": "en", "target": "es", "format": "srt"})
    assert r.json()["engine"] == "hybrid:draft"  # auto on a server: its model post-edits Apertium's draft
    assert r.json()["text"].startswith("1\n00:00:01,000 --> 00:00:02,000\n")
    r = client.post("/translate", json={"text": srt, "source": "en", "target": "pt", "format": "srt"})
    assert r.json()["engine"] == "bergamot"  # Bergamot's en-pt is not improved by a model's post-edit
    assert r.json()["text"] == "1\n00:00:01,000 --> 00:00:02,000\nOnde está a minha encomenda?\n"


def test_the_llm_engine_is_audited_turn_by_turn(client):
    r = client.post(
        "/translate", json={"text": "Good morning. Bye.", "source": "en", "target": "es", "engine": "llm"}
    )
    assert r.status_code == 200, r.text
    ids = r.json()["request_ids"]
    assert len(ids) == 2 and len(r.json()["sentences"]) == 2
    records = [client.server.state.audit.get(i) for i in ids]
    assert [x.endpoint for x in records] == ["translate:llm", "translate:llm"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"source": "en", "target": "de", "engine": "apertium"}, "cannot translate en-de: its pairs are"),
        ({"source": "en", "target": "es", "engine": "google"}, "engine"),
        ({"source": "en", "target": "en"}, "both 'en'"),
        ({"source": "en", "target": "es", "format": "srt", "text": "1\n00:01 --> 00:02\nHi\n"}, "line 2:"),
        (
            {"source": "en", "target": "es", "glossary": {"refund": ""}},
            "glossary.refund: String should match pattern",
        ),
    ],
)
def test_bad_requests_get_openai_style_errors(client, body, message):
    r = client.post("/translate", json={"text": "Hello.", **body})
    assert r.status_code == 400, r.text
    assert message in r.json()["error"]["message"]
    assert r.json()["error"]["type"] == "invalid_request_error"


def test_a_streamed_translation_reports_its_progress_then_the_translation(client):
    text = "Click the **red** button. Where is my order?\n\n" * 30
    body = {"text": text, "source": "en", "target": "es", "engine": "apertium", "format": "markdown"}
    with client.stream("POST", "/translate", json={**body, "stream": True}) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        lines = [line.removeprefix("data: ") for line in r.iter_lines() if line.startswith("data: ")]
    assert lines[-1] == "[DONE]"
    events = [json.loads(x) for x in lines[:-1]]
    progress = [(e["done"], e["total"]) for e in events if e["type"] == "translation.progress"]
    assert progress == [(0, 60), (60, 60)]  # sentences (Apertium takes up to 1,000 a call)
    (done,) = [e for e in events if e["type"] == "translation.done"]
    assert (
        done["text"].count("Clic el botón **rojo**. Dónde es mi orden?") == 30
        and len(done["sentences"]) == 60
    )
    bad = client.post("/translate", json={**body, "target": "de", "stream": True})
    assert bad.status_code == 400 and "cannot translate en-de" in bad.json()["error"]["message"]
    srt = {**body, "format": "srt", "text": "1\n00:01 --> 00:02\nHi\n", "stream": True}
    with client.stream("POST", "/translate", json=srt) as r:  # found while translating: an error event
        lines = [line.removeprefix("data: ") for line in r.iter_lines() if line.startswith("data: ")]
    assert lines[-1] == "[DONE]" and "line 2:" in json.loads(lines[0])["error"]["message"]
