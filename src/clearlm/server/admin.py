"""The logic of the admin routes: a tenant's API keys (/v1/keys) and audit log (/v1/audit).

Only admin keys reach these (``auth.require_admin``); each sees its own tenant alone, and another tenant's
key is not found (404). A key created over HTTP joins the caller's tenant under the caller's key's policy,
so an admin cannot mint a key that escapes the policy the operator gave it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Literal

import anyio
from fastapi import Query, Request

from clearlm.server import protocol as p
from clearlm.server.auth import tenant_of
from clearlm.server.state import ServerState
from clearlm.store.keys import ApiKey


def _info(key: ApiKey) -> p.KeyInfo:
    return p.KeyInfo(
        id=key.id,
        name=key.name,
        prefix=key.prefix,
        tenant=key.tenant,
        scopes=list(key.scopes),
        created_at=key.created_at,
        revoked_at=key.revoked_at,
    )


async def list_keys(request: Request, state: ServerState) -> p.KeyList:
    keys = await anyio.to_thread.run_sync(lambda: state.keys.list(tenant=tenant_of(request)))
    return p.KeyList(data=[_info(k) for k in keys])


async def create_key(request: Request, body: p.KeyCreate, state: ServerState) -> p.CreatedKey:
    request.state.audit_record.parameters = {"name": body.name, "scope": body.scope}  # never the secret
    caller = getattr(request.state, "api_key", None)
    policy = caller.policy if caller is not None else None
    key, secret = await anyio.to_thread.run_sync(
        lambda: state.keys.create(body.name, policy, tenant_of(request), body.scope)
    )
    return p.CreatedKey(**_info(key).model_dump(), secret=secret)


async def get_key(request: Request, key_id: str, state: ServerState) -> p.KeyInfo:
    key = await anyio.to_thread.run_sync(lambda: state.keys.get(key_id, tenant=tenant_of(request)))
    return _info(key)


async def revoke_key(request: Request, key_id: str, state: ServerState) -> p.KeyInfo:
    request.state.audit_record.parameters = {"key_id": key_id}
    key = await anyio.to_thread.run_sync(lambda: state.keys.revoke(key_id, tenant=tenant_of(request)))
    return _info(key)


def _utc(value: datetime | None) -> datetime | None:
    """A query's time in UTC (a naive one is taken to be UTC already), as the audit log stores times."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


@dataclass(frozen=True, slots=True)
class AuditFilters:
    """Which audit records a request asks for (see ``audit_filters``)."""

    since: datetime | None = None
    until: datetime | None = None
    api_key_id: str | None = None
    status: str | None = None
    endpoint: str | None = None
    after: int | None = None
    before: int | None = None
    newest_first: bool = False

    def as_parameters(self) -> dict:
        """The filters as the request's audit record keeps them (times in ISO 8601)."""
        values = {k: getattr(self, k) for k in self.__slots__}
        return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in values.items()}


MAX_SEQ = 2**53  # a chain position (past it, an integer no database column holds)


def audit_filters(
    since: Annotated[
        datetime | None, Query(description="Records created at or after this time (ISO 8601; UTC if naive).")
    ] = None,
    until: Annotated[datetime | None, Query(description="Records created before this time.")] = None,
    api_key_id: Annotated[
        str | None, Query(max_length=p.MAX_ID_CHARS, description="Only the records of this key (key_...).")
    ] = None,
    status: Annotated[
        str | None,
        Query(pattern=r"^[1-5]([0-9]{2}|xx)$", description="Only this HTTP status (404) or class (4xx)."),
    ] = None,
    endpoint: Annotated[
        str | None, Query(max_length=256, description="Only endpoints containing this text.")
    ] = None,
    after: Annotated[
        int | None,
        Query(ge=0, le=MAX_SEQ, description="Records after this chain_seq (the next page, oldest first)."),
    ] = None,
    before: Annotated[
        int | None,
        Query(ge=1, le=MAX_SEQ, description="Records before this chain_seq (the next page, newest first)."),
    ] = None,
    order: Annotated[
        Literal["asc", "desc"], Query(description="Oldest first (asc) or newest first.")
    ] = "asc",
) -> AuditFilters:
    """The audit filters of a request's query string (a FastAPI dependency)."""
    return AuditFilters(
        _utc(since), _utc(until), api_key_id, status, endpoint or None, after, before, order == "desc"
    )


def search_audit(state: ServerState, tenant: str, filters: AuditFilters, limit: int) -> list[dict]:
    """The tenant's records that match (blocking: call it in a worker thread)."""
    f = filters
    return state.audit.search(
        tenant,
        since=f.since,
        until=f.until,
        api_key_id=f.api_key_id,
        status=f.status,
        endpoint=f.endpoint,
        after=f.after,
        before=f.before,
        newest_first=f.newest_first,
        limit=limit,
    )


async def audit_page(request: Request, state: ServerState, filters: AuditFilters, limit: int) -> p.AuditPage:
    request.state.audit_record.parameters = {**filters.as_parameters(), "limit": limit}
    tenant = tenant_of(request)
    records = await anyio.to_thread.run_sync(search_audit, state, tenant, filters, limit + 1)
    return p.AuditPage(data=records[:limit], has_more=len(records) > limit)
