"""The audit log's hash chain: tampering is named, concurrent writers keep it valid, retention prunes
behind a signed checkpoint. Against SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from clearlm.store import AuditLog, AuditRecord, Database


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


def sql(log: AuditLog, statement: str) -> None:
    with log.db.engine.begin() as conn:
        conn.execute(text(statement))


def test_a_clean_log_verifies(log):
    fill(log, 5)
    fill(log, 3, tenant="clinic")
    report = log.verify()
    assert report.ok and report.records == 8 and report.tenants == 2


@pytest.mark.parametrize(
    ("tamper", "named", "message"),
    [
        (
            "UPDATE audit_records SET output = '\"a better answer\"' WHERE request_id = 'default-2'",
            "default-2",
            "edited",
        ),
        ("UPDATE audit_records SET latency_ms = 1 WHERE request_id = 'default-1'", "default-1", "edited"),
        (
            "DELETE FROM audit_records WHERE request_id = 'default-2'",
            "default-3",
            "1 record(s) before it were deleted",
        ),
        ("UPDATE audit_records SET seq = seq + 1000 WHERE request_id = 'default-1'", "default-2", "moved"),
        ("DELETE FROM audit_records WHERE request_id = 'default-4'", None, "the last 1 record(s)"),
    ],
    ids=["edit-output", "edit-latency", "delete", "reorder", "truncate"],
)
def test_tampering_is_detected_and_named(log, tamper, named, message):
    fill(log, 5)
    fill(log, 2, tenant="clinic")
    sql(log, tamper)
    report = log.verify()
    assert not report.ok
    [problem] = report.problems
    assert problem.tenant == "default" and problem.request_id == named and message in problem.message


def test_swapping_two_records_contents_is_detected(log):
    fill(log, 4)
    sql(log, "UPDATE audit_records SET chain_seq = 100 WHERE request_id = 'default-1'")
    sql(log, "UPDATE audit_records SET chain_seq = 2 WHERE request_id = 'default-2' AND chain_seq = 3")
    assert {p.request_id for p in log.verify().problems} >= {"default-1"}


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
    # a checkpoint forged with another key (to hide deleted records) is refused
    sql(log, "UPDATE audit_checkpoints SET pruned = 3")
    assert "signature" in log.verify().problems[0].message
    monkeypatch.setenv("CLEARLM_AUDIT_KEY", str(tmp_path / "other.pem"))
    assert not log.verify().ok
