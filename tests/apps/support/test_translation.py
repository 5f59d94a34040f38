"""The desk's languages (``apps.support.translation``): detection on real sentences in nine languages,
the customer's language kept (updated on a confident switch, not on a short reply), translation as an
audited pipeline turn (the tiny random model: the record is asserted, not the quality), bad codes."""

from __future__ import annotations

import pytest

from clearlm.apps.support import Customers, Desk, PatternExtractor, TurnRunner
from clearlm.apps.support.translation import (
    TranslationFailedError,
    detect_language,
    keep_language,
    translate,
    translate_messages,
)
from clearlm.errors import InvalidInputError
from clearlm.store import AuditLog, Database


@pytest.fixture
def db(tmp_path):
    db = Database(f"sqlite:///{tmp_path / 'desk.db'}")
    yield db
    db.close()


SENTENCES = {
    "en": "Where is my order? It has not arrived yet.",
    "es": "Hola, ¿dónde está mi pedido? Todavía no ha llegado.",
    "fr": "Bonjour, ma commande n'est toujours pas arrivée.",
    "de": "Hallo, meine Bestellung ist noch nicht angekommen.",
    "it": "Ciao, il mio ordine non è ancora arrivato.",
    "pt": "Olá, a minha encomenda ainda não chegou.",
    "nl": "Hallo, mijn bestelling is nog niet aangekomen.",
    "pl": "Witam, moje zamówienie jeszcze nie dotarło.",
    "ru": "Здравствуйте, мой заказ ещё не пришёл.",
}


@pytest.mark.parametrize("code", sorted(SENTENCES))
def test_a_sentence_is_detected_in_its_language(code):
    assert detect_language(SENTENCES[code]) == code


@pytest.mark.parametrize("text", ["ok", "Hello?", "changed mind", "I am returning order A-10002", ""])
def test_short_or_unsure_texts_are_not_judged(text):
    assert detect_language(text) is None


def test_the_customer_language_follows_a_confident_switch_and_not_a_short_reply(db, tiny_backend):
    customers = Customers(db)
    ana = customers.create("acme", "Ana", "en")
    assert keep_language(customers, ana, "ok") == ana
    assert customers.get("acme", ana.id).language == "en"
    switched = keep_language(customers, ana, SENTENCES["es"])
    assert switched.language == "es" and customers.get("acme", ana.id).language == "es"

    runner = TurnRunner(tiny_backend, AuditLog(db), max_tokens=2)
    desk = Desk(db, runner, extractor=PatternExtractor())
    cid = desk.open_conversation("acme", ana.id).conversation.id
    turn = desk.customer_message("acme", cid, SENTENCES["de"])
    assert turn.messages[0].language == "de" and customers.get("acme", ana.id).language == "de"
    short = desk.customer_message("acme", cid, "ok")
    assert short.messages[0].language == "de" and customers.get("acme", ana.id).language == "de"
    instructions = AuditLog(db).get(turn.request_ids[0], "acme").parameters["instructions"]
    assert "(ISO 639-1): de." in instructions  # the free reply is asked in their language


@pytest.fixture(scope="module")
def roomy_backend(tiny_tokenizer):
    """The tiny random model with a context of 2048 tokens: its tokenizer spends a token a character,
    and the translation's instruction alone is longer than the usual 256."""
    from clearlm.models.backends.torch_backend import TorchBackend
    from conftest import make_model

    return TorchBackend(make_model(tiny_tokenizer, context=2048), tiny_tokenizer, "tiny-random-qwen2")


def test_translate_is_an_audited_pipeline_turn(db, roomy_backend):
    runner = TurnRunner(roomy_backend, AuditLog(db))
    ana = Customers(db).create("acme", "Ana", "en")
    cid = Desk(db, runner).open_conversation("acme", ana.id).conversation.id
    text = "Su pedido A-10002 llegará mañana."
    try:
        done = translate(runner, "acme", cid, text, "ES", "en")
    except TranslationFailedError as exc:  # the random model may stop at once: still one audited turn
        pytest.fail(f"the tiny model gave no text: {exc}")
    record = AuditLog(db).get(done.request_id, "acme")
    assert record.endpoint == "support:translate" and record.request_id.startswith(cid + "-")
    assert record.tenant == "acme" and record.output.strip() == done.text
    assert record.prompt[-1] == {"role": "user", "content": text}
    assert "from Spanish to English" in record.parameters["instructions"]  # the desk's own text
    assert (done.source, done.target, done.method) == ("es", "en", "model")

    same = translate(runner, "acme", cid, text, "es", "es")
    assert (same.text, same.method, same.request_id) == (text, "none", None)


@pytest.mark.parametrize("bad", ["spanish", "e1", "zz"])
def test_a_bad_language_code_is_refused_before_any_turn(db, tiny_backend, bad):
    audit = AuditLog(db)
    runner = TurnRunner(tiny_backend, audit)
    with pytest.raises(InvalidInputError) as caught:
        translate(runner, "acme", "sup_00", "Hola, ¿dónde está mi pedido?", bad, "en")
    assert caught.value.status_code == 400 and "ISO 639-1" in str(caught.value)
    assert audit.records() == []


def test_customer_messages_are_translated_for_the_agent_and_cached(db, roomy_backend):
    audit = AuditLog(db)
    runner = TurnRunner(roomy_backend, audit, max_tokens=2)
    customers = Customers(db)
    ana = customers.create("acme", "Ana", "es")
    desk = Desk(db, runner, extractor=PatternExtractor())
    cid = desk.open_conversation("acme", ana.id).conversation.id
    desk.customer_message("acme", cid, SENTENCES["es"])
    chat = desk.conversations.get("acme", cid)
    shown = translate_messages(runner, chat, "en")
    assert [m["role"] for m in shown][:1] == ["customer"]
    first = shown[0]["translation"]
    assert shown[0]["translation_error"] is None, shown[0]["translation_error"]
    record = audit.get(first["request_id"], "acme")
    assert record.endpoint == "support:translate" and record.output.strip() == first["text"]
    assert first["source"] == "es" and first["target"] == "en" and first["method"] == "model"
    assert all(m["translation"] is None for m in shown[1:])  # the assistant's replies are not
    count = len(audit.records())
    assert translate_messages(runner, chat, "en")[0]["translation"] == first
    assert len(audit.records()) == count  # cached: no second turn
    assert all(m["translation"] is None for m in translate_messages(runner, chat, "es"))


@pytest.mark.integration
def test_a_spanish_agent_reply_reaches_an_english_customer_in_english_on_the_default_model(
    db, default_backend
):
    from clearlm.apps.support.handoff import HANDOFF
    from clearlm.apps.support.translation import agent_reply_in
    from clearlm.store.review import ReviewQueue

    runner = TurnRunner(default_backend, AuditLog(db))
    ana = Customers(db).create("acme", "Ana", "en")
    desk = Desk(db, runner, extractor=PatternExtractor())
    cid = desk.open_conversation("acme", ana.id).conversation.id
    assert desk.customer_message("acme", cid, "I want to talk to a person").handoff is not None
    spanish = "Lo siento, el pedido A-10002 se envió ayer. Llegará el viernes."
    message, done = agent_reply_in(db, runner, "acme", cid, spanish, "es", "local")
    # measured (2026-12-02): "Sorry, the order A-10002 was sent yesterday. It will arrive on Friday."
    assert message.role == "agent" and message.text == done.text and "A-10002" in message.text
    assert detect_language(message.text) == "en" and "friday" in message.text.lower()
    (item,) = ReviewQueue(db).list("acme", "answered", HANDOFF)
    assert item.decision["note"] == f"original (es): {spanish}"
