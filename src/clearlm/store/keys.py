"""API keys: created once and shown once, stored only as a SHA-256 hash, revocable."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import func, select

from clearlm.errors import InvalidInputError
from clearlm.store.db import Database, as_utc
from clearlm.store.tables import KeyRow

KEY_PREFIX = "sk-clearlm-"


@dataclass(frozen=True, slots=True)
class ApiKey:
    """A key as listed: never the secret itself, only its first characters."""

    id: str
    name: str
    prefix: str
    created_at: datetime
    revoked_at: datetime | None
    policy: str | None = None  # the path of this key's policy file (None: the server's)
    tenant: str = "default"  # the audit chain its requests join

    @property
    def active(self) -> bool:
        return self.revoked_at is None


def _sha256(secret: str) -> str:
    # The secrets are 256 random bits, so a plain hash is enough (no password stretching needed).
    return hashlib.sha256(secret.encode()).hexdigest()


class ApiKeys:
    """The API keys held in ``db``."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def create(self, name: str, policy: str | None = None, tenant: str = "default") -> tuple[ApiKey, str]:
        """A new key named ``name`` (its requests governed by the ``policy`` file, if given, and audited
        in ``tenant``'s chain): returns it and its secret (``sk-clearlm-...``), which is not stored.

        Raises:
            InvalidInputError: an empty name.
        """
        if not name.strip():
            raise InvalidInputError("give the key a name, e.g. the team or application that will use it")
        secret = KEY_PREFIX + secrets.token_urlsafe(32)
        row = KeyRow(
            id="key_" + secrets.token_hex(6),
            name=name.strip(),
            prefix=secret[: len(KEY_PREFIX) + 4],
            sha256=_sha256(secret),
            created_at=datetime.now(UTC),
            revoked_at=None,
            policy=policy,
            tenant=tenant,
        )
        with self.db.session.begin() as session:
            session.add(row)
        return _key(row), secret

    def list(self) -> list[ApiKey]:
        with self.db.session() as session:
            return [_key(r) for r in session.scalars(select(KeyRow).order_by(KeyRow.created_at))]

    def revoke(self, key_id: str) -> ApiKey:
        """Revoke a key by id; revoking a revoked key changes nothing.

        Raises:
            InvalidInputError: no key has that id.
        """
        with self.db.session.begin() as session:
            row = session.get(KeyRow, key_id)
            if row is None:
                raise InvalidInputError(f"no API key with id {key_id!r}: `clearlm keys list` shows the ids")
            row.revoked_at = row.revoked_at or datetime.now(UTC)
            return _key(row)

    def any(self) -> bool:
        """Whether any key was ever created (then every request needs a valid one, even if all are revoked)."""
        with self.db.session() as session:
            return bool(session.scalar(select(func.count()).select_from(KeyRow)))

    def verify(self, secret: str) -> ApiKey | None:
        """The active key whose secret this is, or None."""
        with self.db.session() as session:
            row = session.scalar(select(KeyRow).where(KeyRow.sha256 == _sha256(secret)))
            return _key(row) if row is not None and row.revoked_at is None else None


def _key(row: KeyRow) -> ApiKey:
    return ApiKey(
        row.id, row.name, row.prefix, as_utc(row.created_at), as_utc(row.revoked_at), row.policy, row.tenant
    )
