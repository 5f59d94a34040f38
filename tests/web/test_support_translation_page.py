"""The desk page in two languages, in headless Chromium against a real server (the tiny random model,
its context widened to 2048 tokens): an agent opens an English customer's conversation in Spanish
(``?translate_to=es``): the customer's messages come with Apertium's translations (no model turn, the
engine named), the reply box is set to Spanish, and the reply the agent writes in Spanish is stored
translated by Apertium, its original shown under it (the desk's only); one the agent has the model
translate is an audited turn; axe finds nothing serious."""

from __future__ import annotations

import httpx
import pytest
from playwright.sync_api import expect


def ok(r: httpx.Response, status: int = 200) -> dict:
    assert r.status_code == status, r.text
    return r.json()


@pytest.fixture
def desk(serve, tiny_tokenizer):
    from clearlm.models.backends.torch_backend import TorchBackend
    from conftest import make_model

    backend = TorchBackend(make_model(tiny_tokenizer, context=2048), tiny_tokenizer, "tiny-random-qwen2")
    server = serve(backend, default_max_tokens=4)
    _, admin = server.state.keys.create("Ada", tenant="acme", scope="admin")
    _, user = server.state.keys.create("shop", tenant="acme", scope="user")
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {user}"}, timeout=60) as shop:
        ana = ok(shop.post("/support/customers", json={"name": "Ana", "language": "en"}), 201)
        cid = ok(shop.post("/support/conversations", json={"customer_id": ana["id"]}), 201)["conversation"][
            "id"
        ]
        said = {"text": "Where is my order? It has not arrived yet, I want to talk to a person."}
        assert ok(shop.post(f"/support/conversations/{cid}/messages", json=said))["handoff"] is not None
    return server, admin, cid


def test_an_agent_reads_and_writes_in_spanish_to_an_english_customer(desk, open_page):
    server, admin, cid = desk
    page = open_page(server)
    page.sign_in(admin, "/support")
    tab = page.tab
    page.goto(f"/support/conversations/{cid}")
    assert tab.locator("li.translation").count() == 0 and tab.get_by_label("Written in").input_value() == ""
    tab.get_by_label("Show the customer's messages in").fill("es")
    tab.get_by_role("button", name="Translate").click()
    tab.wait_for_url("**translate_to=es")
    shown = tab.locator("li.translation")
    expect(shown).to_have_count(1)
    assert [r for r in server.state.audit.records() if r.endpoint == "support:translate"] == []  # Apertium
    said = shown.first.locator(".msg-text").text_content()
    assert said.startswith("Dónde es mi orden? No ha llegado todavía,") and said.endswith("una persona.")
    assert "en → es" in shown.first.inner_text() and "by Apertium" in shown.first.inner_text()
    assert tab.get_by_label("Written in").input_value() == "es"
    page.assert_accessible()

    tab.get_by_label("Reply to the customer").fill("Hola Ana, su pedido A-10002 llega mañana.")
    tab.get_by_role("button", name="Send reply").click()
    expect(tab.locator("#transcript li.msg[data-role=agent]")).to_have_count(1)
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {admin}"}, timeout=30) as api:
        last = ok(api.get(f"/support/conversations/{cid}"))["messages"][-1]
    assert (last["role"], last["text"]) == ("agent", "Hello Ana, his request A-10002 arrives morning.")
    original = tab.locator(f"#transcript li.original[data-original-of='{last['id']}']")
    expect(original.locator(".msg-text")).to_have_text("Hola Ana, su pedido A-10002 llega mañana.")
    expect(original).to_contain_text("es → en")
    expect(original).to_contain_text("by Apertium")

    # a reply the agent has the model translate (Apertium reads too literally): an audited turn
    tab.get_by_label("Reply to the customer").fill("Gracias por su paciencia.")
    tab.get_by_label("Translated by").select_option("model")
    tab.get_by_role("button", name="Send reply").click()
    expect(tab.locator("#transcript li.msg[data-role=agent]")).to_have_count(2)
    turns = [r for r in server.state.audit.records() if r.endpoint == "support:translate"]
    assert len(turns) == 1 and turns[0].prompt[-1]["content"] == "Gracias por su paciencia."
    expect(tab.locator("#transcript li.original").last).to_contain_text("by the model (audited turn)")
    assert not page.errors, page.errors
