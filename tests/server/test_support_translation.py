"""/v1/support in two languages over a real server (the tiny random model, its context widened to 2048
tokens so the translation's instruction fits: its words are random, so the model's translations are
asserted by where the text goes, Apertium's by their words): an agent's reply written in Spanish reaches
a German customer as the ``support:translate`` turn's output (no engine has es-de), the original kept
(the response, a system note in the conversation, this request's audit record, the review item's note);
a Spanish customer's messages translated into English for the agent by Apertium, and the agent's English
reply into Spanish; bad language codes are 400s with OpenAI-style bodies, before any model turn."""

from __future__ import annotations

import httpx
import pytest
from markupsafe import escape
from support_clients import KEYS, keyed_clients, ok

SPANISH = "Hola Ana, su pedido A-10002 llega mañana."


@pytest.fixture
def desk(serve, tiny_tokenizer):
    from clearlm.models.backends.torch_backend import TorchBackend
    from conftest import make_model

    backend = TorchBackend(make_model(tiny_tokenizer, context=2048), tiny_tokenizer, "tiny-random-qwen2")
    server = serve(backend, default_max_tokens=4)
    with keyed_clients(server, KEYS[:2], timeout=120) as clients:
        yield server, clients


def handed_off(shop, name: str, language: str, first: str) -> str:
    who = ok(shop.post("/support/customers", json={"name": name, "language": language}), 201)
    cid = ok(shop.post("/support/conversations", json={"customer_id": who["id"]}), 201)["conversation"]["id"]
    ok(shop.post(f"/support/conversations/{cid}/messages", json={"text": first}))
    turn = ok(
        shop.post(f"/support/conversations/{cid}/messages", json={"text": "I want to talk to a person"})
    )
    assert turn["conversation"]["status"] == "handed_off"
    return cid


def test_a_spanish_agent_reply_reaches_a_german_customer_translated_the_original_kept(desk):
    server, c = desk  # es-de: no engine has it here, so the desk's model translates (an audited turn)
    cid = handed_off(c["shop"], "Ana", "de", "Hallo, meine Bestellung ist noch nicht angekommen.")
    review_id = ok(c["agent"].get("/review", params={"kind": "support_handoff"}))["data"][0]["id"]

    sent = ok(
        c["agent"].post(f"/support/conversations/{cid}/replies", json={"text": SPANISH, "language": "ES"}),
        201,
    )
    translation = sent["translation"]
    assert (translation["source"], translation["target"], translation["method"]) == ("es", "de", "model")
    turn = server.state.audit.get(translation["request_id"], "acme")
    assert turn.endpoint == "support:translate" and turn.request_id.startswith(cid + "-")
    assert turn.prompt[-1] == {"role": "user", "content": SPANISH}
    assert "from Spanish to German" in turn.parameters["instructions"]  # the desk's own text
    assert sent["text"] == translation["text"] == turn.output.strip() != SPANISH  # the pipeline's output
    assert (
        sent["original"] == {"text": SPANISH, "language": "es", "engine": "model"} and sent["role"] == "agent"
    )
    assert translation["original"] == SPANISH

    read = ok(c["shop"].get(f"/support/conversations/{cid}"))["messages"]
    last = read[-1]
    assert (last["role"], last["text"], last["original"]) == (
        "agent",
        turn.output.strip(),
        None,
    )  # the customer's
    assert not [m for m in read if SPANISH in m["text"]]
    kept = ok(c["agent"].get(f"/support/conversations/{cid}/messages"))["data"][-1]  # the desk's
    assert kept["id"] == last["id"] and kept["original"] == {
        "text": SPANISH,
        "language": "es",
        "engine": "model",
    }
    item = ok(c["agent"].get(f"/review/{review_id}"))
    assert (
        item["decision"]["answer"] == last["text"] and item["decision"]["note"] == f"original (es): {SPANISH}"
    )
    http = [
        r for r in server.state.audit.records() if r.endpoint == f"/v1/support/conversations/{cid}/replies"
    ]
    assert http[0].output == {"answer": last["text"], "original": SPANISH}
    assert http[0].parameters == {
        "conversation_id": cid,
        "language": "es",
        "engine": "auto",
        "request_ids": [turn.request_id],
    }

    plain = ok(c["agent"].post(f"/support/conversations/{cid}/replies", json={"text": "Danke, Ana."}), 201)
    assert plain["text"] == "Danke, Ana." and plain["translation"] is None  # no language: as written
    same = ok(
        c["agent"].post(f"/support/conversations/{cid}/replies", json={"text": "Bye.", "language": "de"}), 201
    )
    assert same["text"] == "Bye." and same["translation"]["method"] == "none"


def test_the_customer_messages_come_translated_into_the_agent_language(desk):
    server, c = desk
    cid = handed_off(c["shop"], "Luis", "es", "Hola, ¿dónde está mi pedido? Todavía no ha llegado.")
    plain = ok(c["agent"].get(f"/support/conversations/{cid}/messages"))["data"]
    assert plain[0]["role"] == "customer" and plain[0]["language"] == "es" and plain[0]["translation"] is None
    shown = ok(c["agent"].get(f"/support/conversations/{cid}/messages", params={"translate_to": "en"}))[
        "data"
    ]
    first = shown[0]["translation"]
    assert [m["id"] for m in shown] == [m["id"] for m in plain]
    assert first == {  # es-en: Apertium, no model turn
        "text": "Hello, where it is my request? Still it has not arrived.",
        "source": "es",
        "target": "en",
        "method": "apertium",
        "request_id": None,
        "original": plain[0]["text"],
    }
    assert not [r for r in server.state.audit.records() if r.endpoint == "support:translate"]
    sent = ok(
        c["agent"].post(
            f"/support/conversations/{cid}/replies",
            json={"text": "Your order A-10002 arrives tomorrow.", "language": "en"},
        ),
        201,
    )
    assert (
        sent["text"] == "Vuestro orden A-10002 llega mañana." and sent["translation"]["method"] == "apertium"
    )
    assert all(m["translation"] is None for m in shown if m["role"] != "customer")
    assert c["shop"].get(f"/support/conversations/{cid}/messages").status_code == 403  # agents only


@pytest.mark.parametrize("bad", ["english", "e1", "zz"])
def test_a_bad_language_code_is_a_400_with_an_openai_style_body(desk, bad):
    server, c = desk
    cid = handed_off(c["shop"], "Ana", "en", "Where is my order? It has not arrived yet.")
    before = len(server.state.audit.records())
    for r in (
        c["agent"].post(f"/support/conversations/{cid}/replies", json={"text": SPANISH, "language": bad}),
        c["agent"].get(f"/support/conversations/{cid}/messages", params={"translate_to": bad}),
    ):
        assert r.status_code == 400, r.text
        error = r.json()["error"]
        assert error["type"] == "invalid_request_error" and error["message"]
    turns = [r for r in server.state.audit.records()[before:] if r.endpoint == "support:translate"]
    assert turns == []  # refused before any model turn
    assert ok(c["shop"].get(f"/support/conversations/{cid}"))["messages"][-1]["role"] != "agent"


def test_the_desk_page_shows_the_customer_messages_translated_on_request(desk):
    server, c = desk
    cid = handed_off(c["shop"], "Luis", "es", "Hola, ¿dónde está mi pedido? Todavía no ha llegado.")
    _, secret = server.state.keys.create("Ada", tenant="acme", scope="admin")
    with httpx.Client(base_url=server.base, timeout=120, headers={"Origin": server.base}) as web:
        web.post("/signin", data={"key": secret, "next": "/support"})
        page = web.get(f"/support/conversations/{cid}")
        assert page.status_code == 200 and 'id="translate-form"' in page.text
        assert "data-translates=" not in page.text
        before = [r.request_id for r in server.state.audit.records() if r.endpoint == "support:translate"]
        page = web.get(f"/support/conversations/{cid}", params={"translate_to": "EN"})
        turns = [r for r in server.state.audit.records() if r.endpoint == "support:translate"]
        said = ok(c["agent"].get(f"/support/conversations/{cid}/messages"))["data"]
        spanish = [m["id"] for m in said if m["role"] == "customer" and m["language"] == "es"]
        assert before == [] == turns and len(spanish) >= 1  # es-en: Apertium, no model turn
        assert page.status_code == 200 and page.text.count("data-translates=") == len(spanish)
        shown = ok(c["agent"].get(f"/support/conversations/{cid}/messages", params={"translate_to": "en"}))
        done = {m["id"]: m["translation"]["text"] for m in shown["data"] if m["translation"]}
        assert sorted(done) == spanish
        for mid in spanish:  # each after its message, autoescaped
            assert f'data-translates="{mid}"' in page.text and str(escape(done[mid])) in page.text
        assert "es → en, machine-translated" in page.text and "by Apertium" in page.text
        bad = web.get(f"/support/conversations/{cid}", params={"translate_to": "klingon"})
        assert bad.status_code == 200 and 'id="translate-problem"' in bad.text and "ISO 639-1" in bad.text
