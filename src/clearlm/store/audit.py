"""The audit log: one record per request, written in one transaction when the request ends."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime

from sqlalchemy import Text, cast, delete, func, select
from sqlalchemy.exc import IntegrityError as SAIntegrityError
from sqlalchemy.orm import Session

from clearlm.errors import ClearlmError
from clearlm.store.chain import (
    GENESIS,
    HASH_VERSION,
    Problem,
    Verification,
    canonical,
    check_chain,
    checkpoint_message,
    head_message,
    machine_public_key,
    public_hex,
    record_hash,
    signing_key,
    timestamp,
)
from clearlm.store.db import Database, as_utc
from clearlm.store.tables import AuditRow, ChainHead, Checkpoint

log = logging.getLogger(__name__)
_JSON_FIELDS = ("parameters", "prompt", "output", "governance")


@dataclass(slots=True)
class AuditRecord:
    """What is recorded of one request.

    Fields: request_id (the response id, e.g. ``chatcmpl-...``); created_at (UTC, when it arrived);
    endpoint (``/v1/chat/completions``, ``cli:generate``, ...); api_key_id (None without keys);
    model; parameters (the decoding parameters asked for); prompt (text or a list of role/content
    dicts); output (the text returned, or what had streamed when the client left); prompt_tokens,
    completion_tokens; latency_ms (arrival to last byte, milliseconds); finish_reason ("stop",
    "length", "cancelled", one per choice joined by commas, or None when refused); status_code (the HTTP
    status; 200 for the CLI); error (the message the caller got, if any); governance (the policy's name,
    each stage's action and scanner findings as type, span and score, never the text found;
    ``escalated`` for a human); tenant (whose hash chain the record joins).
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


class UnreadableRecordError(ClearlmError):
    """A stored record whose JSON no longer parses: someone edited the database by hand (the server's
    fault, not the caller's: 500)."""

    status_code = 500
    error_type = "server_error"
    code = "audit_record_unreadable"


class AuditLog:
    """Writes and reads audit records in ``db``: append-only, one hash chain per tenant, each chain's head
    signed with the key outside the database (see ``store.chain``).

    Args:
        db: the database.
        key: the Ed25519 private key that signs chain heads and checkpoints; None = the key file
            (:func:`clearlm.store.chain.signing_key`, created on first write).
    """

    def __init__(self, db: Database, key=None) -> None:
        self.db = db
        self._key = key

    def _signing_key(self):
        if self._key is None:
            self._key = signing_key()
        return self._key

    def public_key(self) -> str:
        """The hex Ed25519 public key this log's heads and checkpoints are signed with."""
        return public_hex(self._signing_key())

    def write(self, record: AuditRecord) -> None:
        """Append one record to its tenant's chain and sign the new head, in one transaction (all of it,
        or nothing).

        The chain's head row is locked while the record is appended (``SELECT ... FOR UPDATE`` on
        PostgreSQL, ``BEGIN IMMEDIATE`` on SQLite), so concurrent writers never fork a chain. If the key
        file cannot be read or created, the record is still written and its head left unsigned (a
        warning is logged; ``verify`` reports it): losing a record would be worse.
        """
        try:
            key = self._signing_key()
        except OSError as exc:
            log.warning("the audit chain's head is left unsigned: cannot read the signing key: %s", exc)
            key = None
        record = _as_stored(record)
        with self._writing() as session:
            head = self._locked_head(session, record.tenant)
            seq, prev = head.chain_seq + 1, head.hash
            digest = record_hash(record, seq, prev)
            session.add(
                AuditRow(
                    **asdict(record), chain_seq=seq, prev_hash=prev, hash=digest, hash_version=HASH_VERSION
                )
            )
            head.chain_seq, head.hash = seq, digest
            head.signature = key.sign(head_message(record.tenant, seq, digest)).hex() if key else None

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

    # Reading

    def get(self, request_id: str, tenant: str | None = None) -> AuditRecord | None:
        """The record with this request id (only if it is ``tenant``'s, when given), or None.

        Raises:
            UnreadableRecordError: its stored JSON no longer parses.
        """
        query = _raw_query().where(AuditRow.request_id == request_id)
        if tenant is not None:
            query = query.where(AuditRow.tenant == tenant)
        with self.db.session() as session:
            row = session.execute(query).one_or_none()
            return _readable(row) if row else None

    def count(self, tenant: str | None = None) -> int:
        """How many records are held (of ``tenant``, when given)."""
        query = select(func.count()).select_from(AuditRow)
        if tenant is not None:
            query = query.where(AuditRow.tenant == tenant)
        with self.db.session() as session:
            return session.scalar(query) or 0

    def records(
        self,
        since: datetime | None = None,
        until: datetime | None = None,
        tenant: str | None = None,
        *,
        limit: int | None = None,
    ) -> list[AuditRecord]:
        """Records in the order they were written, optionally within [since, until) and of one tenant, at
        most ``limit`` (the first ones).

        Raises:
            UnreadableRecordError: a record's stored JSON no longer parses (``verify`` names it).
        """
        query = _within(_raw_query().order_by(AuditRow.seq), since, until)
        if tenant is not None:
            query = query.where(AuditRow.tenant == tenant)
        if limit is not None:
            query = query.limit(limit)
        with self.db.session() as session:
            return [_readable(row) for row in session.execute(query)]

    def export(
        self,
        tenant: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        *,
        limit: int | None = None,
    ) -> list[dict]:
        """Records as JSON-ready dicts (``store.chain.canonical``: every ``AuditRecord`` field, the time as
        ISO 8601 UTC), oldest first, of one tenant when given, within [since, until), at most ``limit``.

        Raises:
            UnreadableRecordError: a record's stored JSON no longer parses.
        """
        return [canonical(r) for r in self.records(since, until, tenant, limit=limit)]

    def search(
        self,
        tenant: str,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        api_key_id: str | None = None,
        status: str | None = None,
        endpoint: str | None = None,
        after: int | None = None,
        before: int | None = None,
        newest_first: bool = False,
        limit: int = 100,
    ) -> list[dict]:
        """One tenant's records as ``export`` gives them plus their place in the chain (``chain_seq``,
        ``prev_hash``, ``hash``), in chain order (``newest_first``: reversed), at most ``limit``.

        Filters: created in [since, until); of key ``api_key_id``; ``status`` a code ("404") or a class
        ("4xx"); ``endpoint`` containing the text; ``after`` / ``before`` a chain position (a page's
        cursor: the last ``chain_seq`` seen). Raises UnreadableRecordError like ``records``.
        """
        query = _within(_raw_query().where(AuditRow.tenant == tenant), since, until)
        if api_key_id is not None:
            query = query.where(AuditRow.api_key_id == api_key_id)
        if status is not None and status[1:] == "xx":
            low = int(status[0]) * 100
            query = query.where(AuditRow.status_code >= low, AuditRow.status_code < low + 100)
        elif status is not None:
            query = query.where(AuditRow.status_code == int(status))
        if endpoint:
            query = query.where(AuditRow.endpoint.contains(endpoint, autoescape=True))
        if after is not None:
            query = query.where(AuditRow.chain_seq > after)
        if before is not None:
            query = query.where(AuditRow.chain_seq < before)
        order = AuditRow.chain_seq.desc() if newest_first else AuditRow.chain_seq
        with self.db.session() as session:
            return [_entry(row) for row in session.execute(query.order_by(order).limit(limit))]

    def entry(self, request_id: str, tenant: str) -> dict | None:
        """The record of ``request_id`` as ``search`` gives it, if it is ``tenant``'s; else None."""
        query = _raw_query().where(AuditRow.request_id == request_id, AuditRow.tenant == tenant)
        with self.db.session() as session:
            row = session.execute(query).one_or_none()
            return _entry(row) if row else None

    # Verifying

    def verify(self, public_key: str | None = None, tenant: str | None = None) -> Verification:
        """Check every tenant's chain (or one): each record's hash against its content (an edited record,
        one whose stored JSON no longer parses included), each link (a deleted record), the chain order
        against the insertion order (reordered records), the head against the last record (records
        deleted at the end), the head's signature (the newest records deleted and the head rewound to
        match, or the whole chain recomputed), and the signature of any retention checkpoint. Every
        signature is checked with ``public_key``, never a key read from the database.

        Args:
            public_key: the pinned Ed25519 public key (hex); None = the key of this machine's signing key
                file (``$CLEARLM_AUDIT_KEY`` or ``$CLEARLM_HOME/audit-signing-key.pem``).

        Returns:
            A ``Verification``; its problems are in chain order, so each chain's first names its first
            bad record.

        Raises:
            InvalidInputError: no public key was given and this machine has no signing key file, while
                there are signatures to check.
        """
        problems: list[Problem] = []
        n_records = n_checkpoints = 0
        with self.db.session() as session:
            heads = {h.tenant: h for h in session.scalars(select(ChainHead))}
            tenants = sorted(set(heads) | set(session.scalars(select(AuditRow.tenant).distinct())))
            if tenant is not None:
                tenants = [t for t in tenants if t == tenant]
            if tenants and public_key is None:
                public_key = machine_public_key()
            for name in tenants:
                cp = session.scalar(
                    select(Checkpoint)
                    .where(Checkpoint.tenant == name)
                    .order_by(Checkpoint.upto_seq.desc())
                    .limit(1)
                )
                rows = session.execute(  # streamed: a chain of millions of records is not held in memory
                    _raw_query()
                    .where(AuditRow.tenant == name)
                    .order_by(AuditRow.chain_seq)
                    .execution_options(yield_per=1000)
                )
                found, n = check_chain(name, cp, rows, heads.get(name), public_key, _record)
                problems += found
                n_records += n
                n_checkpoints += cp is not None
        signed = tuple((t, heads[t].chain_seq, heads[t].hash) for t in tenants if t in heads)
        return Verification(len(tenants), n_records, n_checkpoints, tuple(problems), public_key, signed)

    # Retention

    def prune(self, before: datetime) -> int:
        """Retention: delete each tenant's records written before ``before`` (a prefix of its chain),
        leaving a checkpoint signed with this log's signing key, so the chain still verifies.
        Returns the number of records deleted."""
        key = self._signing_key()
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
                        version=HASH_VERSION,
                    )
                )
                session.execute(
                    delete(AuditRow).where(AuditRow.tenant == tenant, AuditRow.chain_seq <= last.chain_seq)
                )
                deleted += n
        return deleted


def _as_stored(record: AuditRecord) -> AuditRecord:
    """The record as it will read back: its JSON fields through a JSON round trip (tuples become lists,
    keys strings) and its time in UTC (a naive time is taken as UTC, as it reads back), so the hash
    covers exactly what is stored."""
    values = {name: json.loads(json.dumps(getattr(record, name))) for name in _JSON_FIELDS}
    return replace(record, created_at=as_utc(record.created_at), **values)


def _within(query, since: datetime | None, until: datetime | None):
    """``query`` narrowed to records created in [since, until) (either end open when None)."""
    if since is not None:
        query = query.where(AuditRow.created_at >= since)
    if until is not None:
        query = query.where(AuditRow.created_at < until)
    return query


def _raw_query():
    """The audit rows with their JSON columns as text, parsed by ``_record`` (so a value edited into
    invalid JSON is an edited record, not a crash)."""
    columns = [
        cast(getattr(AuditRow, c.key), Text).label(c.key)
        if c.key in _JSON_FIELDS
        else getattr(AuditRow, c.key)
        for c in AuditRow.__table__.columns
    ]
    return select(*columns)


def _record(row) -> AuditRecord:
    """An ``AuditRecord`` from a ``_raw_query`` row.

    Raises:
        ValueError: a JSON column no longer parses.
    """
    values = {name: getattr(row, name) for name in AuditRecord.__slots__}
    for name in _JSON_FIELDS:
        text = values[name]
        try:
            values[name] = None if text is None else json.loads(text)
        except ValueError as exc:
            raise ValueError(f"{name}: {exc}") from None
    values["created_at"] = as_utc(values["created_at"])
    return AuditRecord(**values)


def _readable(row) -> AuditRecord:
    try:
        return _record(row)
    except ValueError as exc:
        raise UnreadableRecordError(
            f"audit record {row.request_id} cannot be read ({exc}): it was edited in the database; "
            "`clearlm audit verify` lists what was tampered with"
        ) from None


def _entry(row) -> dict:
    """A record as JSON (``canonical``) with its place in the chain; one whose stored JSON no longer
    parses comes back as its plain columns with ``unreadable`` saying why (so a page of records still
    lists it)."""
    chain = {"chain_seq": row.chain_seq, "prev_hash": row.prev_hash, "hash": row.hash}
    try:
        return {**canonical(_readable(row)), **chain}
    except UnreadableRecordError as exc:
        plain = {n: getattr(row, n) for n in AuditRecord.__slots__ if n not in _JSON_FIELDS}
        plain["created_at"] = timestamp(as_utc(row.created_at))
        return {**plain, **chain, "unreadable": str(exc)}
