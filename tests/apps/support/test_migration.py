"""The support desk's migration (0005): a database written by the release before it (schema 0004,
with keys and chat conversations in it) upgrades in place, keeps its data, and then holds customers."""

from __future__ import annotations

from sqlalchemy import inspect, text

from clearlm.apps.support import Customers, SupportConversations
from clearlm.store import ApiKeys, Database
from clearlm.store.conversations import Conversations
from clearlm.store.migrate import HEAD, _config, current_revision

SUPPORT_TABLES = {"support_customers", "support_conversations", "support_messages"}


def test_a_database_of_the_previous_release_upgrades_in_place(tmp_path):
    from alembic import command

    url = f"sqlite:///{tmp_path / 'clearlm.db'}"
    db = Database(url)
    with db.engine.begin() as conn:  # back to the schema the previous release (0004) wrote
        command.downgrade(_config(conn), "0004")
    assert current_revision(db.engine) == "0004"
    assert not SUPPORT_TABLES & set(inspect(db.engine).get_table_names())
    _, secret = ApiKeys(db).create("desk", tenant="acme")
    chat = Conversations(db).create("acme", "key_x", "before the upgrade")
    Conversations(db).append_message(chat["id"], "user", "hello from 0004")
    db.close()

    db = Database(url)  # opening upgrades it
    assert current_revision(db.engine) == HEAD
    assert set(inspect(db.engine).get_table_names()) >= SUPPORT_TABLES
    assert ApiKeys(db).verify(secret).tenant == "acme"
    old = Conversations(db).get("acme", "key_x", chat["id"])
    assert [m["content"] for m in old["messages"]] == ["hello from 0004"]
    ada = Customers(db).create("acme", "Ada", "en")
    conv = SupportConversations(db).open("acme", ada.id, flow_state={"flow": "returns"})
    SupportConversations(db).append_message("acme", conv.id, "customer", "hi", "en")
    assert [m.text for m in SupportConversations(db).history("acme", ada.id)] == ["hi"]
    db.close()


def test_the_migration_goes_down_again(tmp_path):
    from alembic import command

    db = Database(f"sqlite:///{tmp_path / 'a.db'}")
    Customers(db).create("acme", "Ada")
    with db.engine.begin() as conn:
        command.downgrade(_config(conn), "0004")
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == "0004"
    assert not SUPPORT_TABLES & set(inspect(db.engine).get_table_names())
