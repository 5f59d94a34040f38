"""The database: audit records and API keys, against a SQLite file and a real PostgreSQL server."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from clearlm.errors import InvalidInputError
from clearlm.store import ApiKeys, AuditLog, AuditRecord, Database


def _record(i: int, at: datetime, **kw) -> AuditRecord:
    return AuditRecord(request_id=f"r{i}", created_at=at, endpoint="/v1/chat/completions", **kw)


def test_audit_records_round_trip_in_write_order(db_url):
    log = AuditLog(Database(db_url))
    t0 = datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
    prompt = [{"role": "system", "content": "Be brief. ünïcode ✓"}, {"role": "user", "content": "Hi"}]
    first = _record(
        1,
        t0,
        api_key_id="key_1",
        model="m",
        parameters={"n": 2, "stop": ["\n"], "temperature": 0.5},
        prompt=prompt,
        output=["a", "b"],
        prompt_tokens=12,
        completion_tokens=3,
        latency_ms=12.5,
        finish_reason="stop",
    )
    log.write(first)
    log.write(_record(2, t0 + timedelta(seconds=1), status_code=429, error="busy"))
    log.write(_record(0, t0 - timedelta(seconds=1), prompt="plain text", output="x"))
    records = log.records()
    assert [r.request_id for r in records] == ["r1", "r2", "r0"]  # write order, not time order
    assert records[0] == first
    assert log.get("r2").status_code == 429 and log.get("r2").error == "busy"
    assert log.get("missing") is None
    assert log.count() == 3
    assert [r.request_id for r in log.records(since=t0, until=t0 + timedelta(seconds=1))] == ["r1"]


def test_a_duplicate_request_id_is_refused_and_leaves_nothing_half_written(db_url):
    log = AuditLog(Database(db_url))
    now = datetime.now(UTC)
    log.write(_record(1, now, output="first"))
    with pytest.raises(Exception, match="(?i)unique|duplicate"):
        log.write(_record(1, now, output="second"))
    assert log.count() == 1 and log.get("r1").output == "first"


def test_keys_are_stored_hashed_verified_and_revoked(db_url):
    db = Database(db_url)
    keys = ApiKeys(db)
    assert not keys.any()
    key, secret = keys.create("support team")
    other, other_secret = keys.create("tutor app")
    assert secret.startswith("sk-clearlm-") and len(secret) > 40 and secret != other_secret
    assert keys.any() and keys.verify(secret) == key and keys.verify(other_secret) == other
    assert keys.verify(secret + "x") is None and keys.verify("") is None
    with db.engine.connect() as conn:
        dumped = repr(conn.execute(text("SELECT * FROM api_keys")).fetchall())
    assert secret not in dumped and secret[len("sk-clearlm-") + 4 :] not in dumped
    revoked = keys.revoke(key.id)
    assert not revoked.active and keys.verify(secret) is None and keys.verify(other_secret) == other
    assert keys.revoke(key.id).revoked_at == revoked.revoked_at  # idempotent
    assert [k.name for k in keys.list()] == ["support team", "tutor app"]
    with pytest.raises(InvalidInputError, match="clearlm keys list"):
        keys.revoke("key_nope")
    with pytest.raises(InvalidInputError, match="name"):
        keys.create("  ")


def test_sqlite_uses_wal_and_bad_urls_say_what_to_do(tmp_path):
    db = Database(f"sqlite:///{tmp_path / 'sub' / 'a.db'}")
    with db.engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
    with pytest.raises(InvalidInputError, match="sqlite:///PATH"):
        Database("not a url")
    with pytest.raises(InvalidInputError, match="cannot open"):
        Database("postgresql://nobody@127.0.0.1:1/none")


def test_the_default_database_lives_under_clearlm_home(tmp_path, monkeypatch):
    from clearlm.store import default_url

    monkeypatch.setenv("CLEARLM_HOME", str(tmp_path))
    assert default_url() == f"sqlite:///{tmp_path / 'clearlm.db'}"
