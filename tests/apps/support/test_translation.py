"""The desk's languages (``apps.support.translation``): detection on real sentences in nine languages,
the customer's language kept (updated on a confident switch, not on a short reply), translation as an
audited pipeline turn (the tiny random model: the record is asserted, not the quality), bad codes; a
flow's fixed replies in the customer's language (the flow's variant, else a translation turn)."""

from __future__ import annotations

from pathlib import Path

import pytest

from clearlm.apps.support import (
    Customers,
    Desk,
    FlowError,
    PatternExtractor,
    TurnRunner,
    load_desk,
    parse_flow,
)
from clearlm.apps.support.desk import HANDOFF_MESSAGE
from clearlm.apps.support.slots import Localized
from clearlm.apps.support.translation import (
    HANDOFF_MESSAGES,
    TranslationFailedError,
    detect_language,
    engine_for,
    fixed_reply,
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
    text = "Ihre Bestellung A-10002 kommt morgen an."  # no engine has de-en here: the model's turn
    try:
        done = translate(runner, "acme", cid, text, "DE", "en")
    except TranslationFailedError as exc:  # the random model may stop at once: still one audited turn
        pytest.fail(f"the tiny model gave no text: {exc}")
    record = AuditLog(db).get(done.request_id, "acme")
    assert record.endpoint == "support:translate" and record.request_id.startswith(cid + "-")
    assert record.tenant == "acme" and record.output.strip() == done.text
    assert record.prompt[-1] == {"role": "user", "content": text}
    assert "from German to English" in record.parameters["instructions"]  # the desk's own text
    assert (done.source, done.target, done.method, done.original) == ("de", "en", "model", text)

    same = translate(runner, "acme", cid, text, "de", "de")
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
    ana = customers.create("acme", "Anna", "de")
    desk = Desk(db, runner, extractor=PatternExtractor())
    cid = desk.open_conversation("acme", ana.id).conversation.id
    desk.customer_message("acme", cid, SENTENCES["de"])
    chat = desk.conversations.get("acme", cid)
    shown = translate_messages(runner, chat, "en")
    assert [m["role"] for m in shown][:1] == ["customer"]
    first = shown[0]["translation"]
    assert shown[0]["translation_error"] is None, shown[0]["translation_error"]
    record = audit.get(first["request_id"], "acme")
    assert record.endpoint == "support:translate" and record.output.strip() == first["text"]
    assert first["source"] == "de" and first["target"] == "en" and first["method"] == "model"
    assert first["original"] == SENTENCES["de"] == shown[0]["text"]
    assert all(m["translation"] is None for m in shown[1:])  # the assistant's replies are not
    count = len(audit.records())
    assert translate_messages(runner, chat, "en")[0]["translation"] == first
    assert len(audit.records()) == count  # cached: no second turn
    assert all(m["translation"] is None for m in translate_messages(runner, chat, "de"))


def test_pairs_apertium_or_bergamot_have_are_translated_by_them_without_a_model_turn(db, tiny_backend):
    audit = AuditLog(db)
    runner = TurnRunner(tiny_backend, audit, max_tokens=2)
    done = translate(runner, "acme", "sup_00", "Hola Ana, su pedido A-10002 llega mañana.", "es", "en")
    assert (done.text, done.method, done.request_id) == (
        "Hello Ana, his request A-10002 arrives morning.",  # the order number masked, kept as written
        "apertium",
        None,
    )
    done = translate(
        runner, "acme", "sup_00", "What is your order number? You will find it in the e-mail.", "en", "pt"
    )
    assert (done.text, done.method) == (
        "Qual é o seu número de pedido? Você vai encontrá-lo no e-mail.",
        "bergamot",
    )
    assert engine_for("en", "fr") is None  # Apertium has it through Spanish only: the model
    assert engine_for("de", "en") is None
    assert audit.records() == []  # no model turn

    lucia = Customers(db).create("acme", "Lucía", "es")
    desk = Desk(db, runner, extractor=PatternExtractor())
    cid = desk.open_conversation("acme", lucia.id).conversation.id
    desk.customer_message("acme", cid, SENTENCES["es"])
    count = len(audit.records())
    shown = translate_messages(runner, desk.conversations.get("acme", cid), "en")[0]
    assert shown["translation"] == {
        "text": "Hello, where it is my request? Still it has not arrived.",
        "source": "es",
        "target": "en",
        "method": "apertium",
        "request_id": None,
        "original": SENTENCES["es"],
    }
    assert len(audit.records()) == count


def test_an_identifier_the_engine_does_not_keep_sends_the_text_to_the_model(db, roomy_backend):
    audit = AuditLog(db)
    text = "Write to help@shop.example today."  # Bergamot: "ajudar-shop.example"
    try:
        done = translate(TurnRunner(roomy_backend, audit, max_tokens=4), "acme", "sup_00", text, "en", "pt")
        assert done.method == "model"
    except TranslationFailedError:
        pass  # the random model gave nothing: still its turn
    (record,) = audit.records()
    assert record.endpoint == "support:translate" and record.prompt[-1]["content"] == text


def test_an_agent_reply_translated_by_apertium_keeps_its_original_in_the_conversation(db, tiny_backend):
    from clearlm.apps.support.handoff import HANDOFF
    from clearlm.apps.support.translation import agent_reply_in
    from clearlm.store.review import ReviewQueue

    runner = TurnRunner(tiny_backend, AuditLog(db), max_tokens=2)
    ana = Customers(db).create("acme", "Ana", "en")
    desk = Desk(db, runner, extractor=PatternExtractor())
    cid = desk.open_conversation("acme", ana.id).conversation.id
    assert desk.customer_message("acme", cid, "I want to talk to a person").handoff is not None
    before = len(AuditLog(db).records())
    spanish = "Hola Ana, su pedido A-10002 llega mañana."
    message, done = agent_reply_in(db, runner, "acme", cid, spanish, "es", "local")
    assert (message.role, message.text, done.method) == (
        "agent",
        "Hello Ana, his request A-10002 arrives morning.",
        "apertium",
    )
    messages = desk.conversations.get("acme", cid).messages
    assert messages[-1] == message and message.original == {
        "text": spanish,
        "language": "es",
        "engine": "apertium",
    }
    assert not [m for m in messages if spanish in m.text]  # no note the customer would read
    (item,) = ReviewQueue(db).list("acme", "answered", HANDOFF)
    assert item.decision["note"] == f"original (es): {spanish}"
    assert len(AuditLog(db).records()) == before  # no model turn


def test_an_agent_may_have_the_model_translate_where_apertium_has_the_pair(db, tiny_backend):
    from clearlm.apps.support.translation import agent_reply_in

    runner = TurnRunner(tiny_backend, AuditLog(db), max_tokens=3)
    ana = Customers(db).create("acme", "Ana", "en")
    desk = Desk(db, runner, extractor=PatternExtractor())
    cid = desk.open_conversation("acme", ana.id).conversation.id
    assert desk.customer_message("acme", cid, "I want to talk to a person").handoff is not None
    spanish = "Hola Ana, su pedido A-10002 llega mañana."
    with pytest.raises(InvalidInputError, match="translate with one of auto, model, not 'deepl'"):
        agent_reply_in(db, runner, "acme", cid, spanish, "es", "local", engine="deepl")
    message, done = agent_reply_in(db, runner, "acme", cid, spanish, "es", "local", engine="model")
    turn = AuditLog(db).get(done.request_id, "acme")  # es-en: Apertium has it, the agent chose the model
    assert done.method == "model" and turn.endpoint == "support:translate"
    assert turn.prompt[-1]["content"] == spanish and message.text == turn.output.strip()
    assert message.original == {"text": spanish, "language": "es", "engine": "model"}


@pytest.mark.integration
def test_a_german_agent_reply_reaches_an_english_customer_in_english_on_the_default_model(
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
    german = "Entschuldigung, die Bestellung A-10002 wurde gestern verschickt. Sie kommt am Freitag an."
    message, done = agent_reply_in(db, runner, "acme", cid, german, "de", "local")  # de-en: the model
    assert message.role == "agent" and message.text == done.text and "A-10002" in message.text
    assert done.method == "model" and done.request_id is not None
    assert detect_language(message.text) == "en" and "friday" in message.text.lower()
    (item,) = ReviewQueue(db).list("acme", "answered", HANDOFF)
    assert item.decision["note"] == f"original (de): {german}"


# A flow's fixed replies in the customer's language: the flow's variant (no model), else a translation turn.

DESK = Path(__file__).parents[3] / "examples" / "support"
ES_ORDER = "¿Cuál es su número de pedido? Lo encontrará en el correo de confirmación."
ES_REASON = "¿Por qué lo devuelve: dañado, artículo equivocado o ha cambiado de opinión?"


def sample_desk(db, backend, max_tokens: int = 4) -> Desk:
    flows, tools = load_desk(DESK)
    return Desk(
        db, TurnRunner(backend, AuditLog(db), max_tokens=max_tokens), flows, tools, PatternExtractor()
    )


def test_a_spanish_customer_gets_the_flows_spanish_prompts_without_a_translation_turn(db, roomy_backend):
    desk = sample_desk(db, roomy_backend)
    lucia = Customers(db).create("acme", "Lucía", "es")
    opened = desk.open_conversation("acme", lucia.id, flow="returns")
    assert [m.text for m in opened.messages] == [ES_ORDER] and len(opened.request_ids) == 1
    cid = opened.conversation.id
    record = AuditLog(db).get(opened.request_ids[0], "acme")
    assert record.endpoint == "support:reply" and record.output == ES_ORDER
    wrong = desk.customer_message("acme", cid, "no lo sé")
    assert wrong.messages[-1].text.startswith("Un número de pedido es la letra A")
    asked = desk.customer_message("acme", cid, "A-10003")
    assert asked.messages[-1].text == ES_REASON and asked.flow["step"] == "ask_reason"
    assert all(r.endpoint != "support:translate" for r in AuditLog(db).records())


def test_a_spanish_return_starts_from_spanish_words_and_the_order_stays_in_the_reply(db, roomy_backend):
    desk = sample_desk(db, roomy_backend)
    lucia = Customers(db).create("acme", "Lucía", "es")
    cid = desk.open_conversation("acme", lucia.id).conversation.id
    started = desk.customer_message("acme", cid, "Quiero devolver el pedido A-10001, llegó roto")
    assert started.flow["slots"]["order_number"] == "A-10001" and started.flow["slots"]["reason"] == "damaged"
    assert started.messages[-2].text.startswith("Su devolución del pedido A-10001 (")
    assert started.messages[-1].text == "¿Puedo ayudarle en algo más?"


def test_without_a_variant_the_fixed_reply_is_translated_in_an_audited_turn(db, roomy_backend):
    desk = sample_desk(db, roomy_backend)
    camille = Customers(db).create("acme", "Camille", "fr")
    opened = desk.open_conversation("acme", camille.id, flow="returns")
    translated, said = (AuditLog(db).get(r, "acme") for r in opened.request_ids)
    assert (translated.endpoint, said.endpoint) == ("support:translate", "support:reply")
    assert translated.prompt[-1]["content"].startswith("What is your order number?")
    assert "from English to French" in translated.parameters["instructions"]
    assert opened.messages[-1].text == translated.output.strip() == said.output  # (random words)


def test_fixed_reply_picks_a_variant_keeps_the_desks_language_and_falls_back_to_the_text(db, tiny_backend):
    runner = TurnRunner(tiny_backend, AuditLog(db))
    text = Localized({"en": "Your order?", "es": "¿Su pedido?"})
    assert (text, text.language) == ("Your order?", "en")
    assert fixed_reply(runner, "acme", "sup_1", text, "es") == ("¿Su pedido?", None)
    assert fixed_reply(runner, "acme", "sup_1", text, "en") == ("Your order?", None)
    assert fixed_reply(runner, "acme", "sup_1", "Hello", None) == ("Hello", None)
    assert fixed_reply(runner, "acme", "sup_1", "Hello", "zz") == ("Hello", None)  # no such language
    assert AuditLog(db).records() == []  # none of these needed a turn
    only_spanish = Localized({"es": "¿Su pedido?"})
    assert (only_spanish, only_spanish.language) == ("¿Su pedido?", "es")


def test_a_flows_variants_are_checked_when_it_is_read():
    base = "name: f\nsteps:\n  - id: a\n    ask: {slot: s, prompt: %s}\n"
    flow = parse_flow(base % '{en: "Size {s}?", es: "¿Talla?"}')
    assert flow.steps[0].ask.prompt == {"en": "Size {s}?", "es": "¿Talla?"}
    with pytest.raises(FlowError, match="ISO 639-1"):
        parse_flow(base % '{spanish: "¿Talla?"}')
    with pytest.raises(FlowError, match="names no slot"):
        parse_flow(base % '{en: "Size?", es: "¿Talla {nope}?"}')


def test_the_desks_own_hand_off_reply_has_variants_in_the_languages_it_hears(db, roomy_backend):
    desk = sample_desk(db, roomy_backend)
    klaus = Customers(db).create("acme", "Klaus", "de")
    cid = desk.open_conversation("acme", klaus.id).conversation.id
    turn = desk.customer_message("acme", cid, "Ich möchte bitte mit einem Mitarbeiter sprechen.")
    assert turn.handoff["reason"] == "customer_asked" and len(turn.request_ids) == 1  # no translation turn
    assert turn.messages[-1].text == HANDOFF_MESSAGES["de"] and HANDOFF_MESSAGES["en"] == HANDOFF_MESSAGE


def test_a_conversations_messages_go_to_the_engine_in_one_batch_the_same_words(db):
    from clearlm.apps.support.conversations import SupportConversations
    from clearlm.apps.support.translation_engines import translate_batch

    said = ["Hola, ¿dónde está mi pedido A-10002?", "Todavía no ha llegado.", "Gracias por su ayuda."]
    lucia = Customers(db).create("acme", "Lucía", "es")
    conversations = SupportConversations(db)
    cid = conversations.open("acme", lucia.id).id
    for text in said:
        conversations.append_message("acme", cid, "customer", text, "es")
    shown = translate_messages(None, conversations.get("acme", cid), "en")  # no model needed: Apertium
    alone = [translate(None, "acme", cid, text, "es", "en") for text in said]
    assert (
        [m["translation"]["text"] for m in shown]
        == [t.text for t in alone]
        == [
            "Hello, where it is my request A-10002?",
            "Still it has not arrived.",
            "Thank you By his help.",  # (Apertium's words)
        ]
    )
    assert {m["translation"]["method"] for m in shown} == {"apertium"}
    assert translate_batch(said, "de", "en") == (None, [None, None, None])  # no engine: one by one


def test_the_desk_calls_no_backend_itself_its_model_turns_go_through_the_pipeline():
    import re

    import clearlm.apps.support as support

    folder = Path(support.__file__).parent
    sources = {p.name: p.read_text(encoding="utf-8") for p in folder.glob("*.py")}
    assert [n for n, s in sources.items() if "start_turn(" in s] == ["turns.py"]  # the one way to a model
    calls = re.compile(r"backend\.(generate|stream|score|chat|complete)\w*\(")
    assert {n: calls.findall(s) for n, s in sources.items() if calls.search(s)} == {}
    assert "replace(runner, max_tokens=budget).generate(" in sources["translation_engines.py"]  # a turn
