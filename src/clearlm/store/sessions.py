"""Web UI sign-in sessions: the browser keeps a random secret in a cookie, the database only its SHA-256.

A session signed in with an API key lasts while the key does: revoking the key ends its sessions on their
next request. A session of a server with open access (no keys) has no key and every scope.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, func, select

from clearlm.store.db import Database, as_utc
from clearlm.store.keys import DEFAULT_TENANT, SCOPES, ApiKey, key_of
from clearlm.store.tables import KeyRow, WebSession

SESSION_HOURS = 12  # a sign-in lasts this long


@dataclass(frozen=True, slots=True)
class SignIn:
    """A live session: ``api_key`` (None with open access), ``tenant``, ``scopes`` and its ``csrf`` token."""

    api_key: ApiKey | None
    tenant: str
    scopes: tuple[str, ...]
    csrf: str

    @property
    def user(self) -> str:
        """Whose conversations these are: the key's id, or ``local`` with open access."""
        return self.api_key.id if self.api_key is not None else "local"


def _sha256(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class WebSessions:
    """The sign-in sessions held in ``db``."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def create(self, key: ApiKey | None, hours: float = SESSION_HOURS) -> tuple[str, SignIn]:
        """A new session for ``key`` (None: open access): returns the cookie's secret (not stored) and the
        session. Expired sessions are removed on the way."""
        secret = secrets.token_urlsafe(32)
        now = datetime.now(UTC)
        tenant = key.tenant if key is not None else DEFAULT_TENANT
        scopes = tuple(s for s in SCOPES if key is None or key.allows(s))
        row = WebSession(
            id=_sha256(secret),
            api_key_id=key.id if key is not None else None,
            tenant=tenant,
            scopes=" ".join(scopes),
            csrf=secrets.token_urlsafe(24),
            created_at=now,
            expires_at=now + timedelta(hours=hours),
        )
        with self.db.session.begin() as session:
            session.execute(delete(WebSession).where(WebSession.expires_at < now))
            session.add(row)
        return secret, SignIn(key, tenant, scopes, row.csrf)

    def get(self, secret: str) -> SignIn | None:
        """The live session of a cookie's secret: None if unknown, expired, its key was revoked, or it is an
        open-access session and a key now exists."""
        with self.db.session() as session:
            row = session.get(WebSession, _sha256(secret))
            if row is None or as_utc(row.expires_at) <= datetime.now(UTC):
                return None
            key = None
            if row.api_key_id is None:  # open access ends when the first key is made
                if session.scalar(select(func.count()).select_from(KeyRow)):
                    return None
            else:
                key_row = session.scalar(select(KeyRow).where(KeyRow.id == row.api_key_id))
                if key_row is None or key_row.revoked_at is not None:
                    return None
                key = key_of(key_row)
            return SignIn(key, row.tenant, tuple(row.scopes.split()), row.csrf)

    def delete(self, secret: str) -> None:
        """Sign out: the session ends now."""
        with self.db.session.begin() as session:
            session.execute(delete(WebSession).where(WebSession.id == _sha256(secret)))
