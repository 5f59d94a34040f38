"""The logic of the admin routes: a tenant's API keys (/v1/keys) and audit log (/v1/audit).

Only admin keys reach these (``auth.require_admin``); each sees its own tenant alone, and another tenant's
key is not found (404). A key created over HTTP joins the caller's tenant under the caller's key's policy,
so an admin cannot mint a key that escapes the policy the operator gave it.
"""

from __future__ import annotations

from datetime import UTC, datetime

import anyio
from fastapi import Request

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


async def audit_page(
    request: Request, state: ServerState, since: datetime | None, until: datetime | None, limit: int
) -> p.AuditPage:
    request.state.audit_record.parameters = {
        "since": since.isoformat() if since else None,
        "until": until.isoformat() if until else None,
        "limit": limit,
    }
    tenant = tenant_of(request)
    records = await anyio.to_thread.run_sync(
        lambda: state.audit.export(tenant, _utc(since), _utc(until), limit=limit + 1)
    )
    return p.AuditPage(data=records[:limit], has_more=len(records) > limit)
