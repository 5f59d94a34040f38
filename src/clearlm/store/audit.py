"""The audit log: one record per request, written in one transaction when the request ends."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError as SAIntegrityError
from sqlalchemy.orm import Session

from clearlm.store.chain import (
    GENESIS,
    Problem,
    Verification,
    checkpoint_message,
    public_hex,
    record_hash,
    signature_valid,
    signing_key,
    signing_key_path,
)
from clearlm.store.db import Database, as_utc
from clearlm.store.tables import AuditRow, ChainHead, Checkpoint


@dataclass(slots=True)
class AuditRecord:
    """What is recorded of one request.

    Fields: request_id (the response id, e.g. ``chatcmpl-...``); created_at (UTC, when it arrived);
    endpoint (``/v1/chat/completions``, ``cli:generate``, ...); api_key_id (None without keys);
    model; parameters (the decoding parameters asked for); prompt (text or a list of role/content
    dicts); output (the text returned, or what had streamed when the client left); prompt_tokens,
    completion_tokens; latency_ms (arrival to last byte, milliseconds); finish_reason ("stop",
    "length", "cancelled", or None when refused); status_code (the HTTP status; 200 for the CLI);
    error (the message the caller got, if any); governance (the policy's name, each stage's action and
    scanner findings as type, span and score, never the text found; ``escalated`` for a human); tenant
    (whose hash chain the record joins).
    """

    request_id: str
    created_at: datetime
    endpoint: str
    api_key_id: str | None = None
    model: str | None = None
    parameters: dict = field(default_factory=dict)
    prompt: object | None = None
    output: object | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_ms: float = 0.0
    finish_reason: str | None = None
    status_code: int = 200
    error: str | None = None
    governance: dict | None = None
    tenant: str = "default"


class AuditLog:
    """Writes and reads audit records in ``db``: append-only, one hash chain per tenant (see ``chain``)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def write(self, record: AuditRecord) -> None:
        """Append one record to its tenant's chain, in one transaction (all of it, or nothing).

        The chain's head row is locked while the record is appended (``SELECT ... FOR UPDATE`` on
        PostgreSQL, ``BEGIN IMMEDIATE`` on SQLite), so concurrent writers never fork a chain.
        """
        with self._writing() as session:
            head = self._locked_head(session, record.tenant)
            seq, prev = head.chain_seq + 1, head.hash
            digest = record_hash(record, seq, prev)
            session.add(AuditRow(**asdict(record), chain_seq=seq, prev_hash=prev, hash=digest))
            head.chain_seq, head.hash = seq, digest

    @contextmanager
    def _writing(self) -> Iterator[Session]:
        """A session in a transaction that holds the write lock from its start (SQLite: BEGIN IMMEDIATE)."""
        conn = self.db.engine.connect().execution_options(immediate=True)
        with conn, Session(conn) as session, session.begin():
            yield session

    def _locked_head(self, session: Session, tenant: str) -> ChainHead:
        query = select(ChainHead).where(ChainHead.tenant == tenant).with_for_update()
        head = session.scalar(query)
        if head is None:
            try:
                with session.begin_nested():
                    session.add(ChainHead(tenant=tenant, chain_seq=0, hash=GENESIS))
            except SAIntegrityError:  # another writer created it first
                pass
            head = session.scalar(query)
        return head

    def get(self, request_id: str) -> AuditRecord | None:
        with self.db.session() as session:
            row = session.scalar(select(AuditRow).where(AuditRow.request_id == request_id))
            return _record(row) if row else None

    def count(self) -> int:
        with self.db.session() as session:
            return session.scalar(select(func.count()).select_from(AuditRow)) or 0

    def records(
        self,
        since: datetime | None = None,
        until: datetime | None = None,
        *,
        tenant: str | None = None,
        limit: int | None = None,
    ) -> list[AuditRecord]:
        """Records in the order they were written, optionally within [since, until), of one tenant, at most
        ``limit`` of them (the first ones)."""
        query = select(AuditRow).order_by(AuditRow.seq)
        if since is not None:
            query = query.where(AuditRow.created_at >= since)
        if until is not None:
            query = query.where(AuditRow.created_at < until)
        if tenant is not None:
            query = query.where(AuditRow.tenant == tenant)
        if limit is not None:
            query = query.limit(limit)
        with self.db.session() as session:
            return [_record(row) for row in session.scalars(query)]

    def verify(self, public_key: str | None = None) -> Verification:
        """Check every tenant's chain: each record's hash against its content (an edited record), each
        link (a deleted record), the chain order against the insertion order (reordered records), the
        head (records deleted at the end), and the signature of any retention checkpoint.

        ``public_key``: the Ed25519 public key (hex) checkpoints must be signed with; None = the key of
        this machine's signing key file, if it exists.
        """
        if public_key is None and signing_key_path().exists():
            public_key = public_hex(signing_key())
        problems: list[Problem] = []
        n_records = n_checkpoints = 0
        with self.db.session() as session:
            heads = {h.tenant: h for h in session.scalars(select(ChainHead))}
            tenants = sorted(set(heads) | set(session.scalars(select(AuditRow.tenant).distinct())))
            for tenant in tenants:
                cp = session.scalar(
                    select(Checkpoint)
                    .where(Checkpoint.tenant == tenant)
                    .order_by(Checkpoint.upto_seq.desc())
                    .limit(1)
                )
                prev_seq, prev_hash = 0, GENESIS
                if cp is not None:
                    n_checkpoints += 1
                    prev_seq, prev_hash = cp.upto_seq, cp.upto_hash
                    message = checkpoint_message(
                        tenant, cp.upto_seq, cp.upto_hash, cp.pruned, as_utc(cp.created_at)
                    )
                    if (public_key and cp.public_key != public_key) or not signature_valid(
                        cp.public_key, cp.signature, message
                    ):
                        problems.append(
                            Problem(
                                tenant, cp.upto_seq, None, "the retention checkpoint's signature is not valid"
                            )
                        )
                rows = list(
                    session.scalars(
                        select(AuditRow).where(AuditRow.tenant == tenant).order_by(AuditRow.chain_seq)
                    )
                )
                n_records += len(rows)
                problems += _check_rows(tenant, rows, prev_seq, prev_hash, heads.get(tenant))
        return Verification(len(tenants), n_records, n_checkpoints, tuple(problems))

    def prune(self, before: datetime) -> int:
        """Retention: delete each tenant's records written before ``before`` (a prefix of its chain),
        leaving a checkpoint signed with this machine's signing key, so the chain still verifies.
        Returns the number of records deleted."""
        key = signing_key()
        deleted = 0
        with self._writing() as session:
            for tenant in list(session.scalars(select(ChainHead.tenant))):
                self._locked_head(session, tenant)
                old = select(AuditRow).where(AuditRow.tenant == tenant).order_by(AuditRow.chain_seq)
                last = None
                for row in session.scalars(old):
                    if as_utc(row.created_at) >= before:
                        break
                    last = row
                if last is None:
                    continue
                n = session.scalar(
                    select(func.count())
                    .select_from(AuditRow)
                    .where(AuditRow.tenant == tenant, AuditRow.chain_seq <= last.chain_seq)
                )
                now = datetime.now(UTC)
                message = checkpoint_message(tenant, last.chain_seq, last.hash, n, now)
                session.add(
                    Checkpoint(
                        tenant=tenant,
                        upto_seq=last.chain_seq,
                        upto_hash=last.hash,
                        pruned=n,
                        created_at=now,
                        public_key=public_hex(key),
                        signature=key.sign(message).hex(),
                    )
                )
                session.execute(
                    delete(AuditRow).where(AuditRow.tenant == tenant, AuditRow.chain_seq <= last.chain_seq)
                )
                deleted += n
        return deleted


def _check_rows(tenant: str, rows, prev_seq: int, prev_hash: str, head) -> list[Problem]:
    problems = []
    last_insert = None
    for row in rows:
        record = _record(row)
        if row.chain_seq != prev_seq + 1 or row.prev_hash != prev_hash:
            missing = row.chain_seq - prev_seq - 1
            what = (
                f"{missing} record(s) before it were deleted"
                if missing > 0
                else "its link to the previous record is broken"
            )
            problems.append(Problem(tenant, row.chain_seq, row.request_id, what))
        if record_hash(record, row.chain_seq, row.prev_hash) != row.hash:
            problems.append(
                Problem(
                    tenant,
                    row.chain_seq,
                    row.request_id,
                    "the record was edited (its content no longer matches its hash)",
                )
            )
        if last_insert is not None and row.seq < last_insert:
            problems.append(
                Problem(
                    tenant,
                    row.chain_seq,
                    row.request_id,
                    "the record was moved (its insertion order differs from the chain's)",
                )
            )
        last_insert = row.seq
        prev_seq, prev_hash = row.chain_seq, row.hash
    if head is not None and (head.chain_seq, head.hash) != (prev_seq, prev_hash):
        missing = head.chain_seq - prev_seq
        problems.append(
            Problem(
                tenant,
                head.chain_seq,
                None,
                f"the last {missing} record(s) of the chain were deleted"
                if missing > 0
                else "the chain's head does not match its last record",
            )
        )
    return problems


def _record(row: AuditRow) -> AuditRecord:
    record = AuditRecord(**{name: getattr(row, name) for name in AuditRecord.__slots__})
    record.created_at = as_utc(record.created_at)
    return record
