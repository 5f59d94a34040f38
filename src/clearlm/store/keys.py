"""API keys: created once and shown once, stored only as a SHA-256 hash, revocable; each belongs to a tenant
and carries scopes."""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import func, select

from clearlm.errors import InvalidInputError
from clearlm.store.db import Database, as_utc
from clearlm.store.tables import KeyRow

KEY_PREFIX = "sk-clearlm-"
DEFAULT_TENANT = "default"  # the tenant of open access (no keys) and of keys created without one
# admin: everything a user may do, plus the tenant's keys and audit log; user: the model endpoints and the
# tenant's knowledge bases.
SCOPES = ("admin", "user")
TENANT_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,31}$"  # a folder name in every file system, and in URLs
MAX_KEY_NAME_CHARS = 128  # the column's width
_TENANT = re.compile(TENANT_PATTERN)


class KeyNotFoundError(InvalidInputError, LookupError):
    """No key with that id (in that tenant)."""

    status_code = 404
    error_type = "not_found_error"
    code = "api_key_not_found"


@dataclass(frozen=True, slots=True)
class ApiKey:
    """A key as listed: never the secret itself, only its first characters.

    Fields: id (``key_...``); name; prefix (the secret's first characters); created_at, revoked_at (UTC);
    policy (the path of this key's policy file; None: the server's); tenant (whose audit chain, knowledge
    bases and completions its requests see); scopes (a subset of ``SCOPES``; ``admin`` implies ``user``).
    """

    id: str
    name: str
    prefix: str
    created_at: datetime
    revoked_at: datetime | None
    policy: str | None = None
    tenant: str = DEFAULT_TENANT
    scopes: tuple[str, ...] = ("user",)

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def allows(self, scope: str) -> bool:
        """Whether the key carries ``scope`` (an admin key carries every scope)."""
        return scope in self.scopes or "admin" in self.scopes


def check_tenant(tenant: str) -> str:
    """Raises InvalidInputError unless ``tenant`` is 1-32 lower-case letters, digits, '_' or '-'."""
    if not isinstance(tenant, str) or not _TENANT.match(tenant):
        raise InvalidInputError(
            f"a tenant name is 1-32 lower-case letters, digits, '_' or '-', starting with a letter or digit; "
            f"got {tenant!r}"
        )
    return tenant


def check_scope(scope: str) -> str:
    """Raises InvalidInputError unless ``scope`` is one of ``SCOPES``."""
    if scope not in SCOPES:
        raise InvalidInputError(f"unknown scope {scope!r}: choose one of {', '.join(SCOPES)}")
    return scope


def _sha256(secret: str) -> str:
    # The secrets are 256 random bits, so a plain hash is enough (no password stretching needed).
    return hashlib.sha256(secret.encode()).hexdigest()


class ApiKeys:
    """The API keys held in ``db``."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def create(
        self, name: str, policy: str | None = None, tenant: str = DEFAULT_TENANT, scope: str = "user"
    ) -> tuple[ApiKey, str]:
        """A new key named ``name`` for ``tenant`` with ``scope`` (``admin`` or ``user``), its requests
        governed by the ``policy`` file if given: returns it and its secret (``sk-clearlm-...``), which is not
        stored.

        Raises:
            InvalidInputError: an empty or over-long (> 128 characters) name, a bad tenant name, an unknown
                scope.
        """
        if not name.strip():
            raise InvalidInputError("give the key a name, e.g. the team or application that will use it")
        if len(name.strip()) > MAX_KEY_NAME_CHARS:
            raise InvalidInputError(f"a key name is at most {MAX_KEY_NAME_CHARS} characters")
        check_tenant(tenant)
        check_scope(scope)
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
            scopes=scope,
        )
        with self.db.session.begin() as session:
            session.add(row)
        return key_of(row), secret

    def list(self, tenant: str | None = None) -> list[ApiKey]:
        """Every key (or ``tenant``'s), oldest first."""
        query = select(KeyRow).order_by(KeyRow.created_at, KeyRow.id)
        if tenant is not None:
            query = query.where(KeyRow.tenant == tenant)
        with self.db.session() as session:
            return [key_of(r) for r in session.scalars(query)]

    def get(self, key_id: str, tenant: str | None = None) -> ApiKey:
        """The key with this id (in ``tenant``, if given).

        Raises:
            KeyNotFoundError (404): no such key (in that tenant: another tenant's key is not revealed).
        """
        with self.db.session() as session:
            row = session.get(KeyRow, key_id)
            if row is None or (tenant is not None and row.tenant != tenant):
                raise _not_found(key_id)
            return key_of(row)

    def revoke(self, key_id: str, tenant: str | None = None) -> ApiKey:
        """Revoke a key by id (only within ``tenant``, if given); revoking a revoked key changes nothing.

        Raises:
            KeyNotFoundError (an InvalidInputError; 404 over HTTP): no key has that id (in that tenant).
        """
        with self.db.session.begin() as session:
            row = session.get(KeyRow, key_id)
            if row is None or (tenant is not None and row.tenant != tenant):
                raise _not_found(key_id)
            row.revoked_at = row.revoked_at or datetime.now(UTC)
            return key_of(row)

    def any(self) -> bool:
        """Whether any key was ever created (then every request needs a valid one, even if all are revoked)."""
        with self.db.session() as session:
            return bool(session.scalar(select(func.count()).select_from(KeyRow)))

    def verify(self, secret: str) -> ApiKey | None:
        """The active key whose secret this is, or None."""
        with self.db.session() as session:
            row = session.scalar(select(KeyRow).where(KeyRow.sha256 == _sha256(secret)))
            return key_of(row) if row is not None and row.revoked_at is None else None


def _not_found(key_id: str) -> KeyNotFoundError:
    return KeyNotFoundError(
        f"no API key with id {key_id!r}: `clearlm keys list` (or GET /v1/keys with an admin key) shows the ids"
    )


def key_of(row: KeyRow) -> ApiKey:
    scopes = tuple(s for s in (row.scopes or "user").split() if s in SCOPES) or ("user",)
    return ApiKey(
        row.id,
        row.name,
        row.prefix,
        as_utc(row.created_at),
        as_utc(row.revoked_at),
        row.policy,
        row.tenant,
        scopes,
    )
