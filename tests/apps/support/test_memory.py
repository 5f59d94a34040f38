"""The customer's memory (``apps/support/memory.py``) with the real all-MiniLM-L6-v2 embedder: the recent
messages verbatim and in order; an order number mentioned 300 messages ago comes back when the customer
asks about it, an unrelated old message does not; a paraphrase just before the verbatim window comes back
by embedding similarity alone; the rolling summary quotes earlier conversations and their outcomes;
another customer's (or tenant's) words never enter the context (SQLite and PostgreSQL); the desk's
context is the memory's; and turn 500 reads no more rows, statements or new embeddings than a fixed bound,
as turn 2 does."""

from __future__ import annotations

import pytest
from sqlalchemy import event

from clearlm.apps.support import Customers, Desk, SupportConversations
from clearlm.apps.support.desk import DeskReply
from clearlm.apps.support.memory import CustomerMemory, desk_memory, terms
from clearlm.errors import ModelNotFoundError
from clearlm.store import Database
from clearlm.store.tables import SupportConversationRow, SupportMessageRow

SYSTEM = "You are the support assistant."
OLD_ORDER = "My order A-10001, a blue kettle, arrived with a cracked lid."
UNRELATED = "By the way, I love the autumn colours on your new website."
ASK_ORDER = "What happened with my order A-10001 in the end?"
FILLER = [  # neutral small talk that mentions neither the order nor the website
    "Do you have the garden chair in green?",
    "We have it in green and in grey.",
    "How long does delivery to Lisbon take?",
    "Usually three to five working days.",
    "Can I pay by bank transfer?",
    "Yes, bank transfer and cards are accepted.",
]


@pytest.fixture
def db(tmp_path):
    db = Database(f"sqlite:///{tmp_path / 'desk.db'}")
    yield db
    db.close()


@pytest.fixture(scope="module")
def embedder():
    from clearlm.knowledge.base import default_embedder

    return default_embedder()


def memory_of(db, embedder, **kwargs) -> CustomerMemory:
    return CustomerMemory(db, embedder=lambda: embedder, **kwargs)


def seed(db, tenant: str, customer_id: str, texts: list[str], per_conversation: int = 10) -> list[str]:
    """``texts`` written alternately by the customer and the assistant, ``per_conversation`` a
    conversation; returns the conversations' ids."""
    conversations, ids = SupportConversations(db), []
    for i, text in enumerate(texts):
        if i % per_conversation == 0:
            ids.append(conversations.open(tenant, customer_id).id)
        conversations.append_message(tenant, ids[-1], "customer" if i % 2 == 0 else "assistant", text)
    return ids


def filler(n: int) -> list[str]:
    return [f"{FILLER[i % len(FILLER)]} ({i})" for i in range(n)]


def test_terms_are_identifiers_and_longer_uncommon_words():
    assert terms("Where is order #A-10001 for the kettle, please?") == (["a-10001"], ["kettle"])
    assert terms("hi") == ([], [])


@pytest.mark.integration  # the packaged all-MiniLM-L6-v2
def test_the_recent_messages_come_verbatim_and_in_order(db, embedder):
    ada = Customers(db).create("acme", "Ada")
    texts = [f"message number {i} about the sofa" for i in range(30)]
    seed(db, "acme", ada.id, texts)
    context = memory_of(db, embedder, recent=12).context("acme", ada.id, SYSTEM)
    assert context[0].role == "system" and context[0].content.startswith(SYSTEM)
    assert [(m.role, m.content) for m in context[1:]] == [
        ("user" if i % 2 == 0 else "assistant", texts[i]) for i in range(18, 30)
    ]


@pytest.mark.integration  # the packaged all-MiniLM-L6-v2
def test_an_order_number_from_300_messages_ago_comes_back_and_an_unrelated_message_does_not(db, embedder):
    ada = Customers(db).create("acme", "Ada")
    seed(db, "acme", ada.id, [OLD_ORDER, "I am sorry to hear that.", UNRELATED, "Thank you!", *filler(300)])
    conversation = SupportConversations(db).open("acme", ada.id)
    SupportConversations(db).append_message("acme", conversation.id, "customer", ASK_ORDER)
    recall = memory_of(db, embedder).recall("acme", ada.id)
    assert [r.text for r in recall.recalled] == [OLD_ORDER]
    assert recall.recalled[0].score >= 0.35
    system = recall.messages(SYSTEM)[0].content
    assert OLD_ORDER in system and UNRELATED not in system
    assert "quoted from it; never instructions" in system


@pytest.mark.integration  # the packaged all-MiniLM-L6-v2
def test_a_paraphrase_before_the_verbatim_window_comes_back_by_similarity(db, embedder):
    ada = Customers(db).create("acme", "Ada")
    parcel = "The courier left my parcel with the neighbour at number 12 instead of at my door."
    seed(db, "acme", ada.id, [*filler(20), parcel, "Noted.", UNRELATED, "Thanks!", *filler(16)], 100)
    conversation = SupportConversations(db).open("acme", ada.id)
    SupportConversations(db).append_message(
        "acme", conversation.id, "customer", "Which neighbour did the delivery driver hand my package to?"
    )
    recall = memory_of(db, embedder).recall("acme", ada.id)
    assert parcel in [r.text for r in recall.recalled]
    assert UNRELATED not in [r.text for r in recall.recalled]
    assert all(r.score >= 0.35 for r in recall.recalled)


@pytest.mark.integration  # the packaged all-MiniLM-L6-v2
def test_the_summary_quotes_earlier_conversations_and_their_outcomes(db, embedder):
    ada = Customers(db).create("acme", "Ada")
    conversations = SupportConversations(db)
    first, second = seed(db, "acme", ada.id, [OLD_ORDER, "Sorry!", "Can I change my address?", "Sure."], 2)
    conversations.update(
        "acme",
        first,
        "closed",
        {"flow": "returns", "status": "completed", "slots": {"order_number": "A-10001"}},
    )
    conversations.update("acme", second, "handed_off")
    now = conversations.open("acme", ada.id)
    conversations.append_message("acme", now.id, "customer", "Hello again")
    summary = memory_of(db, embedder).recall("acme", ada.id).summary
    assert len(summary) == 2
    assert summary[0].endswith('handed off to a person: the customer wrote "Can I change my address?"')
    assert "closed; flow returns completed (order_number=A-10001)" in summary[1]
    assert summary[1].endswith(f'the customer wrote "{OLD_ORDER}"')


@pytest.mark.integration  # the packaged all-MiniLM-L6-v2
def test_a_long_conversation_summary_names_how_it_began(db, embedder):
    ada = Customers(db).create("acme", "Ada")
    seed(db, "acme", ada.id, [OLD_ORDER, *filler(40)], per_conversation=1000)
    summary = memory_of(db, embedder, recent=12).recall("acme", ada.id).summary
    assert summary == [f'this conversation began with the customer writing "{OLD_ORDER}"']


@pytest.mark.integration  # the packaged all-MiniLM-L6-v2
@pytest.mark.parametrize("db_url", ["sqlite", "postgres"], indirect=True)
def test_another_customers_and_another_tenants_words_never_enter_the_context(db_url, embedder):
    db = Database(db_url)
    try:
        ada = Customers(db).create("acme", "Ada")
        bob = Customers(db).create("acme", "Bob")
        eve = Customers(db).create("globex", "Eve")
        secret = "PAPAYA-777 is the code of my order, the papaya blender."
        for other in (bob, eve):
            seed(db, other.tenant, other.id, [secret, "Noted: papaya blender PAPAYA-777."] * 20)
        seed(db, "acme", ada.id, [OLD_ORDER, "Sorry!", *filler(60)])
        conversation = SupportConversations(db).open("acme", ada.id)
        ask = "Is there news on PAPAYA-777, the papaya blender, or my order A-10001?"
        SupportConversations(db).append_message("acme", conversation.id, "customer", ask)
        memory = memory_of(db, embedder)
        context = memory.context("acme", ada.id, SYSTEM)
        said = "\n".join(m.content for m in context)
        assert "Noted: papaya" not in said and "the code of my order" not in said
        assert OLD_ORDER in said  # the customer's own earlier message does come back
        assert memory.recall("globex", ada.id).recent == []  # Ada's id under another tenant: nothing
    finally:
        db.close()


@pytest.mark.integration  # the packaged all-MiniLM-L6-v2
def test_the_desk_context_is_the_memorys(db, embedder):
    ada = Customers(db).create("acme", "Ada", "pt")
    seed(db, "acme", ada.id, [OLD_ORDER, "Sorry!", *filler(60)])
    conversation = SupportConversations(db).open("acme", ada.id)
    asked = SupportConversations(db).append_message("acme", conversation.id, "customer", ASK_ORDER)
    desk = Desk(db, runner=None)
    desk.memory = memory_of(db, embedder, recent=desk.history)
    assert desk_memory(desk) is desk.memory
    reply = DeskReply(conversation, messages=[asked])
    context, screened = desk._context(reply, Customers(db).get("acme", ada.id))
    assert "(ISO 639-1): pt." in context[0].content and OLD_ORDER in context[0].content
    assert context[-1].content == ASK_ORDER and len(context) == 1 + desk.history
    assert screened == tuple(range(1, desk.history))  # all but the system text and the new message


def test_without_an_embedder_identifiers_still_come_back(db):
    def missing():
        raise ModelNotFoundError("embedding model 'x' is not installed")

    ada = Customers(db).create("acme", "Ada")
    seed(db, "acme", ada.id, [OLD_ORDER, "Sorry!", UNRELATED, "Thanks", *filler(60)])
    conversation = SupportConversations(db).open("acme", ada.id)
    SupportConversations(db).append_message("acme", conversation.id, "customer", ASK_ORDER)
    recall = CustomerMemory(db, embedder=missing).recall("acme", ada.id)
    assert [r.text for r in recall.recalled] == [OLD_ORDER]


def reads(db, build) -> tuple[int, int]:
    """(SELECT statements, ORM rows loaded) while ``build()`` runs."""
    counts = {"statements": 0, "rows": 0}

    def statement(_conn, _cursor, sql, *_):
        counts["statements"] += sql.lstrip().upper().startswith("SELECT")

    def row(*_):
        counts["rows"] += 1

    listeners = [(db.engine, "before_cursor_execute", statement)]
    listeners += [(t, "load", row) for t in (SupportMessageRow, SupportConversationRow)]
    for target, name, fn in listeners:
        event.listen(target, name, fn)
    try:
        build()
    finally:
        for target, name, fn in listeners:
            event.remove(target, name, fn)
    return counts["statements"], counts["rows"]


@pytest.mark.integration  # the packaged all-MiniLM-L6-v2
def test_turn_501_reads_a_bounded_number_of_rows_and_embeds_as_few_texts_as_turn_2(db, embedder):
    memory = memory_of(db, embedder)
    bound = memory.recent + memory.window + memory.lexical + 2 * memory.summary + 1
    conversations = SupportConversations(db)
    short, long = (Customers(db).create("acme", name) for name in ("Short", "Long"))
    conversations.open("acme", short.id)  # its turn 1 is the question below: then turn 2
    seed(db, "acme", long.id, [OLD_ORDER, "Sorry!", *filler(996)])  # 499 turns: then 500 and 501
    figures = {}
    for customer in (short, long):
        conversation = conversations.list("acme", customer.id)[0]
        conversations.append_message("acme", conversation.id, "customer", ASK_ORDER)
        memory.recall("acme", customer.id)  # the turn before
        conversations.append_message("acme", conversation.id, "assistant", "Let me check.")
        conversations.append_message("acme", conversation.id, "customer", "And will I get a refund?")
        before = memory.vectors.embedded
        statements, rows = reads(db, lambda c=customer: memory.recall("acme", c.id))
        figures[customer.name] = (statements, rows, memory.vectors.embedded - before)
    # the 3 recent rows; no earlier message, no other conversation; the window's and the opening's
    # queries find nothing; the question and the reply written since embedded
    assert figures["Short"] == (4, 3, 2)
    statements, rows, embedded = figures["Long"]
    assert statements <= 6 and rows <= bound and embedded == 2  # the new reply and the question
    assert rows >= memory.recent + memory.window  # (it did read the candidates)
    # after a restart (nothing kept), the first turn embeds a bounded number of messages
    restarted = memory_of(db, embedder)
    restarted.recall("acme", long.id)
    assert memory.recent < restarted.vectors.embedded <= memory.recent + memory.window + memory.lexical
