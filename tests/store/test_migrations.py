"""Schema migrations: a database written by clearlm 0.1.0 upgrades in place and its chain still verifies,
a new database migrated from nothing matches the SQLAlchemy metadata, and concurrent first opens migrate
once. Against SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import threading
from datetime import UTC, datetime

import pytest
from sqlalchemy import create_engine, text

from clearlm.store import ApiKeys, AuditLog, AuditRecord, Database
from clearlm.store.chain import checkpoint_message, signing_key
from clearlm.store.migrate import HEAD, MIGRATIONS, current_revision

# The DDL clearlm 0.1.0 ran (Base.metadata.create_all of git show 9912305:src/clearlm/store/tables.py),
# with {ts} and {serial} per dialect.
OLD_DDL = """
CREATE TABLE api_keys (id VARCHAR(32) NOT NULL, name VARCHAR(128) NOT NULL, prefix VARCHAR(32) NOT NULL,
  sha256 VARCHAR(64) NOT NULL, created_at {ts} NOT NULL, revoked_at {ts}, policy TEXT,
  tenant VARCHAR(64) NOT NULL, PRIMARY KEY (id));
CREATE UNIQUE INDEX ix_api_keys_sha256 ON api_keys (sha256);
CREATE TABLE audit_chain_heads (tenant VARCHAR(64) NOT NULL, chain_seq INTEGER NOT NULL,
  hash VARCHAR(64) NOT NULL, PRIMARY KEY (tenant));
CREATE TABLE audit_checkpoints (id {serial} NOT NULL, tenant VARCHAR(64) NOT NULL, upto_seq INTEGER NOT NULL,
  upto_hash VARCHAR(64) NOT NULL, pruned INTEGER NOT NULL, created_at {ts} NOT NULL, public_key TEXT NOT NULL,
  signature TEXT NOT NULL, PRIMARY KEY (id));
CREATE INDEX ix_audit_checkpoints_tenant ON audit_checkpoints (tenant);
CREATE TABLE audit_records (seq {serial} NOT NULL, tenant VARCHAR(64) NOT NULL, chain_seq INTEGER NOT NULL,
  prev_hash VARCHAR(64) NOT NULL, hash VARCHAR(64) NOT NULL, request_id VARCHAR(64) NOT NULL,
  created_at {ts} NOT NULL, api_key_id VARCHAR(32), endpoint VARCHAR(64) NOT NULL, model VARCHAR(256),
  parameters JSON NOT NULL, prompt JSON, output JSON, prompt_tokens INTEGER NOT NULL,
  completion_tokens INTEGER NOT NULL, latency_ms FLOAT NOT NULL, finish_reason VARCHAR(32),
  status_code INTEGER NOT NULL, error TEXT, governance JSON, PRIMARY KEY (seq), UNIQUE (tenant, chain_seq));
CREATE INDEX ix_audit_records_tenant ON audit_records (tenant);
CREATE INDEX ix_audit_records_api_key_id ON audit_records (api_key_id);
CREATE UNIQUE INDEX ix_audit_records_request_id ON audit_records (request_id);
CREATE INDEX ix_audit_records_created_at ON audit_records (created_at)
"""

# Three records as clearlm 0.1.0 hashed them (its store/chain.py, run on these values): the expected
# hashes come from that code, not from this release's.
OLD_HASHES = [
    "8a85aae230fe7f9733de0e200d1ec3e7f7fd4142d4a18806d0ccd3cfe42242fb",
    "0318b047a45eca512856e0ee4f76718907c541d6e6936166d5d449a30cd36393",
    "474e027f323a9a9dd6d3bee0b55ccc3c9165ba6e222addc6cafaa8df215fbe88",
]
OLD_CHECKPOINT_MESSAGE = (
    b'{"created_at":"2026-02-01T00:00:00.000000+00:00","pruned":3,"tenant":"default","upto_hash":'
    b'"474e027f323a9a9dd6d3bee0b55ccc3c9165ba6e222addc6cafaa8df215fbe88","upto_seq":3}'
)
SECRET = "sk-clearlm-old-release-secret-0123456789abcdefghijkl"


def old_record(i: int) -> dict:
    return {
        "request_id": f"old-{i}",
        "created_at": datetime(2026, 1, 1 + i, 12, 0, 0, 123456, tzinfo=UTC),
        "endpoint": "/v1/chat/completions",
        "api_key_id": "key_0123456789ab",
        "model": "m",
        "parameters": '{"temperature": 1.0, "seed": 7, "stop": ["\\n"]}',
        "prompt": '[{"role": "user", "content": "h\\u00e9llo ' + str(i) + ' \\u2713"}]',
        "output": f'"answer {i}"',
        "prompt_tokens": 5,
        "completion_tokens": 2,
        "latency_ms": 12.0 + i,
        "finish_reason": "stop",
        "status_code": 200,
        "error": None,
        "governance": '{"policy": "default", "input": {"action": "allow"}}',
        "tenant": "default",
    }


def create_old_database(url: str, key) -> None:
    """A database as clearlm 0.1.0 left it: its DDL, records 2 and 3 of a chain whose record 1 was pruned
    behind a version 1 checkpoint, the chain's (unsigned) head, and an API key."""
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    sqlite = engine.dialect.name == "sqlite"
    ddl = OLD_DDL.format(
        ts="DATETIME" if sqlite else "TIMESTAMP WITH TIME ZONE", serial="INTEGER" if sqlite else "SERIAL"
    )
    with engine.begin() as conn:
        for statement in ddl.split(";"):
            conn.exec_driver_sql(statement)
        for i in (1, 2):
            values = old_record(i) | {
                "chain_seq": i + 1,
                "prev_hash": OLD_HASHES[i - 1],
                "hash": OLD_HASHES[i],
            }
            if sqlite:  # what SQLAlchemy's DateTime stored there
                values["created_at"] = values["created_at"].replace(tzinfo=None).isoformat(sep=" ")
            columns = ", ".join(values)
            conn.execute(
                text(f"INSERT INTO audit_records ({columns}) VALUES (:{', :'.join(values)})"), values
            )
        conn.execute(text("INSERT INTO audit_chain_heads VALUES ('default', 3, :h)"), {"h": OLD_HASHES[2]})
        created = datetime(2026, 1, 5, tzinfo=UTC)
        message = checkpoint_message("default", 1, OLD_HASHES[0], 1, created, version=1)
        conn.execute(
            text(
                "INSERT INTO audit_checkpoints (tenant, upto_seq, upto_hash, pruned, created_at, public_key, "
                "signature) VALUES ('default', 1, :h, 1, :t, :k, :s)"
            ),
            {
                "h": OLD_HASHES[0],
                "t": created.replace(tzinfo=None).isoformat(sep=" ") if sqlite else created,
                "k": key.public_key().public_bytes_raw().hex(),
                "s": key.sign(message).hex(),
            },
        )
        conn.execute(
            text(
                "INSERT INTO api_keys VALUES ('key_0123456789ab', 'support', 'sk-clearlm-old-', :h, :t, NULL,"
                " NULL, 'acme')"
            ),
            {
                "h": hashlib.sha256(SECRET.encode()).hexdigest(),
                "t": "2026-01-01 00:00:00" if sqlite else created,
            },
        )
    engine.dispose()


def no_differences(db: Database) -> list:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from clearlm.store.tables import Base

    with db.engine.connect() as conn:
        return compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)


def test_version_1_messages_are_the_old_releases_bytes():
    created = datetime(2026, 2, 1, tzinfo=UTC)
    assert checkpoint_message("default", 3, OLD_HASHES[2], 3, created, version=1) == OLD_CHECKPOINT_MESSAGE


def test_a_database_written_by_the_old_release_upgrades_in_place_and_still_verifies(
    db_url, tmp_path, monkeypatch
):
    monkeypatch.setenv("CLEARLM_AUDIT_KEY", str(tmp_path / "signing.pem"))
    create_old_database(db_url, signing_key())
    db = Database(db_url)  # stamps 0001, upgrades to the head
    assert current_revision(db.engine) == HEAD
    assert no_differences(db) == []
    log = AuditLog(db)
    report = log.verify()
    assert report.ok, report.problems
    assert (report.records, report.checkpoints) == (2, 1)
    assert [r.request_id for r in log.records()] == ["old-1", "old-2"]
    assert log.get("old-2").prompt == [{"role": "user", "content": "héllo 2 ✓"}]
    # the old key still opens the door, in its tenant, with the default scope
    key = ApiKeys(db).verify(SECRET)
    assert key is not None and key.id == "key_0123456789ab" and key.tenant == "acme"
    with db.engine.connect() as conn:
        assert conn.execute(text("SELECT scopes FROM api_keys")).scalar() == "user"
    # the chain goes on in version 2, and an edit of an old record is still caught
    log.write(
        AuditRecord("new-1", datetime(2026, 3, 1, tzinfo=UTC), "/v1/" + "p" * 300, finish_reason="stop," * 8)
    )
    assert log.verify().ok
    with db.engine.begin() as conn:
        versions = (
            conn.execute(text("SELECT hash_version FROM audit_records ORDER BY chain_seq")).scalars().all()
        )
        assert versions == [1, 1, 2]
        conn.execute(text("UPDATE audit_records SET latency_ms = 99 WHERE request_id = 'old-1'"))
    [problem] = log.verify().problems
    assert (problem.chain_seq, problem.request_id) == (2, "old-1") and "edited" in problem.message
    db.close()
    assert current_revision(Database(db_url).engine) == HEAD  # opening again changes nothing


def test_a_truncated_old_chain_is_caught_after_the_upgrade(tmp_path, monkeypatch):
    """The upgrade signs each existing head once; rewinding it afterwards shows."""
    monkeypatch.setenv("CLEARLM_AUDIT_KEY", str(tmp_path / "signing.pem"))
    url = f"sqlite:///{tmp_path / 'old.db'}"
    create_old_database(url, signing_key())
    log = AuditLog(Database(url))
    with log.db.engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_records WHERE request_id = 'old-2'"))
        conn.execute(text("UPDATE audit_chain_heads SET chain_seq = 2, hash = :h"), {"h": OLD_HASHES[1]})
    [problem] = log.verify().problems
    assert problem.chain_seq == 3 and "head's signature" in problem.message


def test_a_new_database_migrated_from_nothing_matches_the_metadata(db_url):
    db = Database(db_url)
    assert current_revision(db.engine) == HEAD
    assert no_differences(db) == []


def test_the_head_revision_is_the_newest_script():
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    assert ScriptDirectory.from_config(config).get_current_head() == HEAD


def test_concurrent_first_opens_migrate_once(db_url):
    errors = []

    def open_it() -> None:
        try:
            Database(db_url).close()
        except Exception as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=open_it) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert current_revision(Database(db_url).engine) == HEAD


@pytest.mark.parametrize("revision", ["0001", "0002"])
def test_downgrades_run(tmp_path, monkeypatch, revision):
    from alembic import command

    from clearlm.store.migrate import _config

    monkeypatch.setenv("CLEARLM_AUDIT_KEY", str(tmp_path / "signing.pem"))
    db = Database(f"sqlite:///{tmp_path / 'a.db'}")
    with db.engine.begin() as conn:
        command.downgrade(_config(conn), revision)
    assert current_revision(db.engine) == revision


def test_a_database_from_a_newer_release_is_refused_with_a_message(tmp_path):
    from clearlm.errors import InvalidInputError

    url = f"sqlite:///{tmp_path / 'a.db'}"
    db = Database(url)
    with db.engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '0999'"))
    db.close()
    with pytest.raises(InvalidInputError, match="revision '0999'.*upgrade clearlm"):
        Database(url)
