"""The audit log's hash chain: tampering is named (an edit, unparsable JSON, a deletion, a reordering, a
truncation of the tail with the head rewound, a forged checkpoint, a recomputed chain), concurrent writers
keep it valid, retention prunes behind a signed checkpoint, and the hashes are RFC 8785 canonical JSON a
verifier in another language reproduces. Against SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from clearlm.errors import ClearlmError
from clearlm.store import AuditLog, AuditRecord, Database
from clearlm.store.chain import head_message, public_hex, record_hash, signing_key


@pytest.fixture
def log(db_url, tmp_path, monkeypatch):
    monkeypatch.setenv("CLEARLM_AUDIT_KEY", str(tmp_path / "signing.pem"))
    return AuditLog(Database(db_url))


def fill(log: AuditLog, n: int, tenant: str = "default", start: datetime | None = None) -> list[str]:
    start = start or datetime(2026, 1, 1, tzinfo=UTC)
    ids = []
    for i in range(n):
        rid = f"{tenant}-{i}"
        log.write(
            AuditRecord(
                request_id=rid,
                created_at=start + timedelta(days=i),
                endpoint="/v1/chat/completions",
                model="m",
                parameters={"temperature": 0.7, "stop": ["\n"]},
                prompt=[{"role": "user", "content": f"question {i} ✓"}],
                output=f"answer {i}",
                latency_ms=12.345 + i,
                tenant=tenant,
            )
        )
        ids.append(rid)
    return ids


def sql(log: AuditLog, statement: str, **params) -> None:
    with log.db.engine.begin() as conn:
        conn.execute(text(statement), params)


def rewind_head(log: AuditLog, tenant: str, to_request: str) -> None:
    """What an attacker with write access does after deleting the newest records: the head row made to
    point at the last one left, so every link and the head agree."""
    with log.db.engine.begin() as conn:
        seq, digest = conn.execute(
            text("SELECT chain_seq, hash FROM audit_records WHERE request_id = :r"), {"r": to_request}
        ).one()
        conn.execute(
            text("UPDATE audit_chain_heads SET chain_seq = :s, hash = :h WHERE tenant = :t"),
            {"s": seq, "h": digest, "t": tenant},
        )


def test_a_clean_log_verifies_with_the_pinned_key(log):
    fill(log, 5)
    fill(log, 3, tenant="clinic")
    report = log.verify()
    assert report.ok and report.records == 8 and report.tenants == 2
    assert report.public_key == log.public_key() and len(report.public_key) == 64
    assert log.verify(public_key=log.public_key(), tenant="clinic").records == 3


TRUNCATE_AND_REWIND = (
    "DELETE FROM audit_records WHERE request_id IN ('default-3', 'default-4')",
    "rewind:default-2",
)


@pytest.mark.parametrize(
    ("tampering", "seq", "named", "message"),
    [
        (
            ["UPDATE audit_records SET output = '\"a better answer\"' WHERE request_id = 'default-2'"],
            3,
            "default-2",
            "edited",
        ),
        (
            ["UPDATE audit_records SET latency_ms = 1 WHERE request_id = 'default-1'"],
            2,
            "default-1",
            "edited",
        ),
        (
            ["DELETE FROM audit_records WHERE request_id = 'default-2'"],
            4,
            "default-3",
            "1 record(s) before it",
        ),
        (
            ["UPDATE audit_records SET seq = seq + 1000 WHERE request_id = 'default-1'"],
            3,
            "default-2",
            "moved",
        ),
        (["DELETE FROM audit_records WHERE request_id = 'default-4'"], 5, None, "the last 1 record(s)"),
        (list(TRUNCATE_AND_REWIND), 4, None, "records after #3 were deleted and the head rewound"),
    ],
    ids=["edit-output", "edit-latency", "delete", "reorder", "truncate", "truncate-and-rewind-head"],
)
def test_tampering_is_detected_and_the_first_bad_record_named(log, tampering, seq, named, message):
    fill(log, 5)
    fill(log, 2, tenant="clinic")
    for statement in tampering:
        if statement.startswith("rewind:"):
            rewind_head(log, "default", statement.split(":")[1])
        else:
            sql(log, statement)
    report = log.verify()
    assert not report.ok
    [problem] = report.problems
    assert (problem.tenant, problem.chain_seq, problem.request_id) == ("default", seq, named)
    assert message in problem.message


def test_a_chain_recomputed_by_someone_with_write_access_is_caught_by_the_signed_head(log):
    """Edit record 2, then recompute every hash and link after it and the head: only the head's signature,
    made with a key the database does not hold, still tells."""
    fill(log, 4)
    with log.db.engine.begin() as conn:
        conn.execute(text("UPDATE audit_records SET output = '\"rewritten\"' WHERE request_id = 'default-1'"))
    prev = "0" * 64
    for seq, record in enumerate(log.records(), 1):  # what anyone with write access can do
        digest = record_hash(record, seq, prev)
        sql(
            log,
            "UPDATE audit_records SET prev_hash = :p, hash = :h WHERE chain_seq = :s",
            p=prev,
            h=digest,
            s=seq,
        )
        prev = digest
    rewind_head(log, "default", "default-3")
    [problem] = log.verify().problems
    assert problem.chain_seq == 5 and "signature does not verify" in problem.message
    # with the key (kept outside the database) the head could have been re-signed: that is the boundary
    sql(
        log,
        "UPDATE audit_chain_heads SET signature = :s",
        s=log._signing_key().sign(head_message("default", 4, prev)).hex(),
    )
    assert log.verify().ok


def test_unparsable_stored_json_is_named_as_edited_not_a_crash(tmp_path, monkeypatch):
    """On SQLite a JSON column is text a database tool can break (PostgreSQL's JSON type refuses it)."""
    monkeypatch.setenv("CLEARLM_AUDIT_KEY", str(tmp_path / "signing.pem"))
    log = AuditLog(Database(f"sqlite:///{tmp_path / 'a.db'}"))
    fill(log, 3)
    sql(log, "UPDATE audit_records SET parameters = '{bad' WHERE request_id = 'default-1'")
    [problem] = log.verify().problems
    assert (problem.chain_seq, problem.request_id) == (2, "default-1")
    assert "edited" in problem.message and "parameters" in problem.message
    from clearlm.store.audit import UnreadableRecordError

    with pytest.raises(UnreadableRecordError, match="default-1.*clearlm audit verify"):
        log.records()
    assert log.get("default-0").output == "answer 0"


def test_integers_beyond_ijson_and_long_values_are_recorded_and_verify(log):
    """A seed of 2**70 is outside RFC 8785's number domain: hashed as its decimal string, not refused."""
    log.write(
        AuditRecord("big", datetime(2026, 1, 1, tzinfo=UTC), "/v1/x", parameters={"seed": 2**70, "t": 1.0})
    )
    assert log.get("big").parameters == {"seed": 2**70, "t": 1.0}
    assert log.verify().ok


def test_the_hash_covers_what_is_stored_not_what_was_passed(log):
    """Tuples, non-string keys and a naive time read back changed; the record still verifies."""
    log.write(
        AuditRecord("t", datetime(2026, 1, 1, 12), "/v1/x", parameters={None: 1, 2: (3, 4)}, output=("a",))
    )
    assert log.get("t").parameters == {"null": 1, "2": [3, 4]} and log.get("t").output == ["a"]
    assert log.get("t").created_at == datetime(2026, 1, 1, 12, tzinfo=UTC)
    assert log.verify().ok


def test_finish_reasons_and_paths_longer_than_the_old_columns_keep_their_record(log):
    """PostgreSQL refused these (VARCHAR(32) and VARCHAR(64)) and the record was lost."""
    reasons = ",".join(
        ["stop", "length", "content_filter", "tool_calls", "stop", "length", "cancelled", "stop"]
    )
    path = "/v1/kb/" + "x" * 3000
    log.write(
        AuditRecord("long", datetime.now(UTC), path, model="m" * 300, finish_reason=reasons, status_code=404)
    )
    record = log.get("long")
    assert (record.endpoint, record.finish_reason, record.model) == (path, reasons, "m" * 300)
    assert len(reasons) > 32 and len(path) == 3007 and log.verify().ok


def test_the_hash_is_sha256_of_rfc8785_json_as_documented():
    """What a verifier in another language computes: the bytes spelled out by hand."""
    record = AuditRecord(
        "r1",
        datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC),
        "/v1/chat/completions",
        parameters={"temperature": 1.0, "seed": 2**60, "b": [1e21, 0.1]},
        prompt=[{"role": "user", "content": "é€😀"}],
        latency_ms=12.0,
    )
    expected = (
        '{"chain_seq":1,"prev_hash":"' + "0" * 64 + '","record":{"api_key_id":null,"completion_tokens":0,'
        '"created_at":"2026-01-02T03:04:05.678000+00:00","endpoint":"/v1/chat/completions","error":null,'
        '"finish_reason":null,"governance":null,"latency_ms":12,"model":null,"output":null,'
        '"parameters":{"b":[1e+21,0.1],"seed":"1152921504606846976","temperature":1},'
        '"prompt":[{"content":"é€😀","role":"user"}],"prompt_tokens":0,"request_id":"r1",'
        '"status_code":200,"tenant":"default"},"version":2}'
    )
    assert record_hash(record, 1, "0" * 64) == hashlib.sha256(expected.encode()).hexdigest()
    assert (
        head_message("t", 3, "ab")
        == b'{"chain_seq":3,"hash":"ab","tenant":"t","type":"clearlm.audit.head","version":2}'
    )


def test_1000_concurrent_writes_keep_the_chain_valid(log):
    errors = []

    def writer(w: int) -> None:
        try:
            for i in range(125):
                log.write(AuditRecord(f"w{w}-{i}", datetime.now(UTC), "/v1/x", tenant=("a", "b")[w % 2]))
        except Exception as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    report = log.verify()
    assert report.ok and report.records == 1000 and report.tenants == 2


def test_retention_prunes_behind_a_signed_checkpoint(log, tmp_path, monkeypatch):
    fill(log, 10)
    fill(log, 2, tenant="clinic", start=datetime(2026, 3, 1, tzinfo=UTC))
    assert log.prune(before=datetime(2026, 1, 5, tzinfo=UTC)) == 4
    assert [r.request_id for r in log.records() if r.tenant == "default"][0] == "default-4"
    report = log.verify()
    assert report.ok and report.records == 8 and report.checkpoints == 1
    fill(log, 1, tenant="default", start=datetime(2026, 2, 1, tzinfo=UTC))  # the chain goes on
    assert log.verify().ok
    # altering a checkpoint (to hide more deleted records) breaks its signature
    sql(log, "UPDATE audit_checkpoints SET pruned = 3")
    [problem] = log.verify().problems
    assert (problem.chain_seq, problem.request_id) == (1, None) and "signature" in problem.message
    # and another machine's key does not verify this log
    monkeypatch.setenv("CLEARLM_AUDIT_KEY", str(tmp_path / "other.pem"))
    signing_key()
    assert not log.verify().ok


def forge_checkpoint(log: AuditLog, upto: str) -> str:
    """Delete the records up to ``upto`` and hide it behind a checkpoint the attacker signs with a key of
    their own, stored in the row as the old verifier trusted it. Returns the forger's public key."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from clearlm.store.chain import checkpoint_message

    forger = Ed25519PrivateKey.generate()
    with log.db.engine.begin() as conn:
        seq, digest = conn.execute(
            text("SELECT chain_seq, hash FROM audit_records WHERE request_id = :r"), {"r": upto}
        ).one()
        conn.execute(
            text("DELETE FROM audit_records WHERE tenant = 'default' AND chain_seq <= :s"), {"s": seq}
        )
        now = datetime.now(UTC)
        conn.execute(
            text(
                "INSERT INTO audit_checkpoints (tenant, upto_seq, upto_hash, pruned, created_at, public_key,"
                " signature, version) VALUES ('default', :s, :h, :s, :t, :k, :sig, 2)"
            ),
            {
                "s": seq,
                "h": digest,
                "t": now,
                "k": public_hex(forger),
                "sig": forger.sign(checkpoint_message("default", seq, digest, seq, now)).hex(),
            },
        )
    return public_hex(forger)


def test_a_forged_checkpoint_is_refused(log):
    fill(log, 5)
    forger = forge_checkpoint(log, "default-2")
    [problem] = log.verify().problems
    assert (problem.chain_seq, problem.request_id) == (1, None)
    assert "records 1-3 are gone behind a retention checkpoint" in problem.message
    assert not log.verify(public_key=forger).ok  # the forger's key does not sign the head either


# Through the command line, with the key pinned explicitly


def run_verify(db_url: str, *args: str):
    from clearlm.cli import app

    return CliRunner().invoke(app, ["audit", "verify", "--db", db_url, *args], env={"COLUMNS": "250"})


def test_cli_names_a_tail_truncation_only_the_signed_head_catches(log, tmp_path):
    fill(log, 5)
    pinned = log.public_key()
    log.db.close()
    from clearlm.cli import app

    printed = CliRunner().invoke(app, ["audit", "public-key"])  # on the machine that writes the log
    assert printed.exit_code == 0 and printed.output.strip() == pinned
    ok = run_verify(log.db.url.render_as_string(hide_password=False), "--public-key", pinned)
    assert ok.exit_code == 0 and "5 records in 1 chain(s) verify" in ok.output and pinned in ok.output
    head = log.verify().heads[0]
    assert head[:2] == ("default", 5) and f"head of default: #5 {head[2]}" in ok.output
    sql(log, TRUNCATE_AND_REWIND[0])
    rewind_head(log, "default", "default-2")
    result = run_verify(log.db.url.render_as_string(hide_password=False), "--public-key", pinned)
    assert result.exit_code == 1 and isinstance(result.exception, ClearlmError)  # a message, no traceback
    assert "records after #3 were deleted" in result.output
    assert "first bad record: default: #4" in str(result.exception)


def test_cli_refuses_a_forged_checkpoint_against_a_pinned_key_file(log, tmp_path):
    from cryptography.hazmat.primitives import serialization

    fill(log, 4)
    key_file = tmp_path / "pinned.pub"
    key_file.write_bytes(
        log._signing_key()
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    forge_checkpoint(log, "default-1")
    result = run_verify(log.db.url.render_as_string(hide_password=False), "--public-key", str(key_file))
    assert result.exit_code == 1 and "retention checkpoint whose signature" in result.output
    bad = run_verify(log.db.url.render_as_string(hide_password=False), "--public-key", "not-a-key")
    assert bad.exit_code == 1 and "64 hex characters or a key file" in str(bad.exception)


def test_cli_names_a_record_whose_json_no_longer_parses(tmp_path, monkeypatch):
    monkeypatch.setenv("CLEARLM_AUDIT_KEY", str(tmp_path / "signing.pem"))
    url = f"sqlite:///{tmp_path / 'a.db'}"
    log = AuditLog(Database(url))
    fill(log, 3)
    sql(log, "UPDATE audit_records SET parameters = '{bad' WHERE request_id = 'default-1'")
    result = run_verify(url)
    assert result.exit_code == 1 and "default-1" in result.output and "edited" in result.output
    assert "first bad record: default: #2 (default-1)" in str(result.exception)
