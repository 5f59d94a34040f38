"""The tables (SQLAlchemy 2 declarative mapping). One row per audited request; one per API key.

A change here needs a migration in ``store/migrations/versions`` (``tests/store/test_migrations.py``
checks that the two agree).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, DateTime, Float, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class AuditRow(Base):
    """One request, written once when it ends (completed, failed, refused or cancelled), appended to its
    tenant's hash chain: ``hash`` = SHA-256 of the record's content, its ``chain_seq`` and ``prev_hash``,
    computed as ``hash_version`` says (``store.chain``: 1 before signed heads, 2 since).

    Free-text values a caller controls (endpoint, model, finish_reason) are unbounded ``Text``, so no
    value is too long for its column and no record is lost to one."""

    __tablename__ = "audit_records"
    __table_args__ = (UniqueConstraint("tenant", "chain_seq"),)

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    tenant: Mapped[str] = mapped_column(String(64), default="default", index=True)
    chain_seq: Mapped[int] = mapped_column(Integer)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))
    hash_version: Mapped[int] = mapped_column(Integer, server_default="1")
    request_id: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    api_key_id: Mapped[str | None] = mapped_column(String(32), index=True)
    endpoint: Mapped[str] = mapped_column(Text)
    model: Mapped[str | None] = mapped_column(Text)
    parameters: Mapped[dict] = mapped_column(JSON, default=dict)
    prompt: Mapped[object | None] = mapped_column(JSON)  # text, or a list of {"role", "content"}
    output: Mapped[object | None] = mapped_column(JSON)  # text, or one text per choice
    prompt_tokens: Mapped[int] = mapped_column(Integer, default=0)
    completion_tokens: Mapped[int] = mapped_column(Integer, default=0)
    latency_ms: Mapped[float] = mapped_column(Float)
    finish_reason: Mapped[str | None] = mapped_column(Text)  # one per choice, comma-separated
    status_code: Mapped[int] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    governance: Mapped[dict | None] = mapped_column(JSON)


class KeyRow(Base):
    """An API key: only its SHA-256 is stored, and the first characters to recognise it by."""

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    prefix: Mapped[str] = mapped_column(String(32))
    sha256: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    policy: Mapped[str | None] = mapped_column(Text)  # a policy file for this key's requests
    tenant: Mapped[str] = mapped_column(String(64), default="default")  # whose audit chain its requests join
    scopes: Mapped[str] = mapped_column(
        String(64), default="user", server_default="user"
    )  # space-separated: admin, user


class ChainHead(Base):
    """The last record of each tenant's chain (locked while a record is appended), signed with the key
    outside the database (``signature``: Ed25519 in hex over ``store.chain.head_message``; None only for a
    head no key could sign)."""

    __tablename__ = "audit_chain_heads"

    tenant: Mapped[str] = mapped_column(String(64), primary_key=True)
    chain_seq: Mapped[int] = mapped_column(Integer)
    hash: Mapped[str] = mapped_column(String(64))
    signature: Mapped[str | None] = mapped_column(Text)


class Checkpoint(Base):
    """A signed statement that a tenant's records up to ``upto_seq`` (ending in ``upto_hash``) were pruned
    under the retention setting; the chain goes on verifying from it."""

    __tablename__ = "audit_checkpoints"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    tenant: Mapped[str] = mapped_column(String(64), index=True)
    upto_seq: Mapped[int] = mapped_column(Integer)
    upto_hash: Mapped[str] = mapped_column(String(64))
    pruned: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    public_key: Mapped[str] = mapped_column(Text)  # Ed25519, raw bytes in hex
    signature: Mapped[str] = mapped_column(Text)  # hex
    version: Mapped[int] = mapped_column(Integer, server_default="1")  # of the signed message (store.chain)
