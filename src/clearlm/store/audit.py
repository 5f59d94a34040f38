"""The audit log: one record per request, written in one transaction when the request ends."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime

from sqlalchemy import func, select

from clearlm.store.db import Database, as_utc
from clearlm.store.tables import AuditRow


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
    scanner findings as type, span and score, never the text found; ``escalated`` for a human).
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


class AuditLog:
    """Writes and reads audit records in ``db``."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def write(self, record: AuditRecord) -> None:
        """Insert one record in its own transaction (all of it, or nothing)."""
        with self.db.session.begin() as session:
            session.add(AuditRow(**asdict(record)))

    def get(self, request_id: str) -> AuditRecord | None:
        with self.db.session() as session:
            row = session.scalar(select(AuditRow).where(AuditRow.request_id == request_id))
            return _record(row) if row else None

    def count(self) -> int:
        with self.db.session() as session:
            return session.scalar(select(func.count()).select_from(AuditRow)) or 0

    def records(self, since: datetime | None = None, until: datetime | None = None) -> list[AuditRecord]:
        """Records in the order they were written, optionally within [since, until)."""
        query = select(AuditRow).order_by(AuditRow.seq)
        if since is not None:
            query = query.where(AuditRow.created_at >= since)
        if until is not None:
            query = query.where(AuditRow.created_at < until)
        with self.db.session() as session:
            return [_record(row) for row in session.scalars(query)]


def _record(row: AuditRow) -> AuditRecord:
    record = AuditRecord(**{name: getattr(row, name) for name in AuditRecord.__slots__})
    record.created_at = as_utc(record.created_at)
    return record
