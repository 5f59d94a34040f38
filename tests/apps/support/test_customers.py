"""Customers and their histories in the database (SQLite and PostgreSQL): tenant-scoped reads,
another tenant's customer or conversation not found, another customer's words never in a history."""

from __future__ import annotations

import pytest

from clearlm.apps.support import (
    CustomerNotFoundError,
    Customers,
    SupportConversationNotFoundError,
    SupportConversations,
)
from clearlm.errors import InvalidInputError
from clearlm.store import Database


@pytest.fixture
def db(db_url):
    db = Database(db_url)
    yield db
    db.close()


def test_customers_are_created_read_and_listed_within_their_tenant(db):
    customers = Customers(db)
    ada = customers.create("acme", "  Ada   Lovelace ", "EN", {"plan": "gold", "orders": 3})
    assert ada.id.startswith("cus_") and ada.name == "Ada Lovelace" and ada.language == "en"
    bob = customers.create("acme", "Bob", "de")
    customers.create("globex", "Carol", "fr")
    again = customers.get("acme", ada.id)
    assert (again.name, again.language, again.attributes) == (
        "Ada Lovelace",
        "en",
        {"plan": "gold", "orders": 3},
    )
    assert again.created_at.tzinfo is not None
    assert {c.id for c in customers.list("acme")} == {ada.id, bob.id}
    assert [c.name for c in customers.list("globex")] == ["Carol"]
    assert ada.to_dict()["object"] == "support.customer"


def test_another_tenants_customer_is_not_found(db):
    ada = Customers(db).create("acme", "Ada")
    with pytest.raises(CustomerNotFoundError, match=ada.id) as err:
        Customers(db).get("globex", ada.id)
    assert err.value.status_code == 404 and err.value.code == "customer_not_found"
    with pytest.raises(CustomerNotFoundError):
        Customers(db).get("acme", "cus_unknown")
    with pytest.raises(CustomerNotFoundError):
        SupportConversations(db).open("globex", ada.id)
    with pytest.raises(CustomerNotFoundError):
        SupportConversations(db).history("globex", ada.id)


@pytest.mark.parametrize(
    ("name", "language", "attributes", "message"),
    [
        ("", "en", None, "name is 1-200"),
        ("x" * 201, "en", None, "name is 1-200"),
        ("Ada", "english", None, "ISO 639-1"),
        ("Ada", "en-US", None, "ISO 639-1"),
        ("Ada", "en", ["plan"], "JSON object"),
    ],
)
def test_bad_profiles_are_refused_with_what_to_do(tmp_path, name, language, attributes, message):
    db = Database(f"sqlite:///{tmp_path / 'a.db'}")
    with pytest.raises(InvalidInputError, match=message):
        Customers(db).create("acme", name, language, attributes)
    assert Customers(db).list("acme") == []


def test_a_conversation_keeps_its_messages_status_and_flow_state(db):
    ada = Customers(db).create("acme", "Ada")
    convs = SupportConversations(db)
    conv = convs.open("acme", ada.id)
    assert (conv.status, conv.flow_state, conv.customer_id) == ("open", None, ada.id)
    convs.append_message("acme", conv.id, "customer", "Where is my order?", "en")
    convs.append_message("acme", conv.id, "assistant", "Your order number, please?", "EN")
    convs.append_message("acme", conv.id, "agent", "Ich übernehme.", "de")
    state = {"flow": "returns", "step": "ask_order", "slots": {"reason": "damaged"}}
    convs.update("acme", conv.id, status="handed_off", flow_state=state)
    got = convs.get("acme", conv.id)
    assert [(m.role, m.text, m.language) for m in got.messages] == [
        ("customer", "Where is my order?", "en"),
        ("assistant", "Your order number, please?", "en"),
        ("agent", "Ich übernehme.", "de"),
    ]
    assert (got.status, got.flow_state) == ("handed_off", state)
    assert got.updated_at >= got.created_at
    with pytest.raises(InvalidInputError, match="role is one of customer"):
        convs.append_message("acme", conv.id, "user", "hi")
    with pytest.raises(InvalidInputError, match="status is one of open, handed_off, closed"):
        convs.update("acme", conv.id, status="solved")


def test_another_tenants_conversation_is_not_found(db):
    ada = Customers(db).create("acme", "Ada")
    conv = SupportConversations(db).open("acme", ada.id)
    for call in (
        lambda c: c.get("globex", conv.id),
        lambda c: c.append_message("globex", conv.id, "customer", "hi"),
        lambda c: c.update("globex", conv.id, status="closed"),
    ):
        with pytest.raises(SupportConversationNotFoundError) as err:
            call(SupportConversations(db))
        assert err.value.status_code == 404
    assert SupportConversations(db).get("acme", conv.id).messages == []  # nothing was written


def test_a_customers_history_holds_only_their_own_messages(db):
    customers, convs = Customers(db), SupportConversations(db)
    ada, bob = customers.create("acme", "Ada"), customers.create("acme", "Bob")
    first, second = convs.open("acme", ada.id), convs.open("acme", ada.id)
    other = convs.open("acme", bob.id)
    convs.append_message("acme", first.id, "customer", "ada 1")
    convs.append_message("acme", other.id, "customer", "bob's secret address")
    convs.append_message("acme", second.id, "customer", "ada 2")
    convs.append_message("acme", first.id, "assistant", "ada 3")
    history = convs.history("acme", ada.id)
    assert [m.text for m in history] == ["ada 1", "ada 2", "ada 3"]
    assert [m.conversation_id for m in history] == [first.id, second.id, first.id]
    assert [m.text for m in convs.history("acme", ada.id, limit=2)] == ["ada 2", "ada 3"]
    assert [m.text for m in convs.history("acme", bob.id)] == ["bob's secret address"]
    assert [m.text for m in convs.get("acme", first.id).messages] == ["ada 1", "ada 3"]
    assert {c.id for c in convs.list("acme", ada.id)} == {first.id, second.id}
    with pytest.raises(InvalidInputError, match="limit"):
        convs.history("acme", ada.id, limit=0)
