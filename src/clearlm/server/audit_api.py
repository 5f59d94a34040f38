"""The audit log over HTTP beyond its filtered list (``GET /v1/audit``, in ``routes``): one record, the
chain's verification, a JSONL export; for admin keys, of their own tenant. Its routes join
``server.governance``'s router."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from typing import Annotated

import anyio
from fastapi import Depends, Request
from fastapi import Path as PathParam
from fastapi.responses import StreamingResponse

from clearlm.errors import ClearlmError
from clearlm.server import protocol as p
from clearlm.server.admin import AuditFilters, audit_filters, search_audit
from clearlm.server.auth import tenant_of
from clearlm.server.routes import ADMIN, _error, api_router
from clearlm.server.state import ServerState

router = api_router()
EXPORT_PAGE = 500  # records read from the database at a time while an export streams


class AuditRecordNotFoundError(ClearlmError, LookupError):
    status_code = 404
    error_type = "not_found_error"
    code = "audit_record_not_found"


def _state(request: Request) -> ServerState:
    return request.app.state.clearlm


@router.get("/audit/export", **ADMIN)
async def export_audit(request: Request, filters: Annotated[AuditFilters, Depends(audit_filters)]):
    """The caller's tenant's records that match the filters (as ``GET /v1/audit`` takes them), one JSON
    object a line (JSONL), as a download."""
    state, tenant = _state(request), tenant_of(request)
    request.state.audit_record.parameters = filters.as_parameters()

    def lines():
        f = filters
        while True:
            page = search_audit(state, tenant, f, EXPORT_PAGE)
            yield from (json.dumps(r, ensure_ascii=False) + "\n" for r in page)
            if len(page) < EXPORT_PAGE:
                return
            last = page[-1]["chain_seq"]
            f = replace(f, before=last) if f.newest_first else replace(f, after=last)

    name = f"audit-{tenant}-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.jsonl"
    return StreamingResponse(
        lines(),
        media_type="application/jsonl",
        headers={"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"},
    )


def _verify(state: ServerState, tenant: str) -> dict:
    report = state.audit.verify(state.audit.public_key(), tenant=tenant)
    heads = {t: (seq, digest) for t, seq, digest in report.heads}
    problems = [
        {"chain_seq": x.chain_seq, "request_id": x.request_id, "message": x.message} for x in report.problems
    ]
    head = heads.get(tenant)
    return {
        "object": "audit.verification",
        "ok": report.ok,
        "tenant": tenant,
        "records": report.records,
        "checkpoints": report.checkpoints,
        "public_key": report.public_key,
        "head": {"chain_seq": head[0], "hash": head[1]} if head else None,
        "first_bad": problems[0] if problems else None,
        "problems": problems,
    }


@router.post("/audit/verify", **ADMIN)
async def verify_audit(request: Request):
    """Verify the caller's tenant's hash chain (``store.chain``) with this server's signing public key:
    ``ok``, the records checked, ``first_bad`` (its ``chain_seq``, ``request_id`` when it still exists,
    and what is wrong) and every problem in chain order, and the signed ``head`` (keep it elsewhere to
    catch an older head put back)."""
    return await anyio.to_thread.run_sync(_verify, _state(request), tenant_of(request))


@router.get(
    "/audit/{request_id}",
    **{**ADMIN, "responses": {**ADMIN["responses"], 404: _error("No such record here.")}},
)
async def get_audit_record(
    request: Request,
    request_id: Annotated[str, PathParam(max_length=p.MAX_ID_CHARS, description="The record's request id.")],
):
    """One record of the caller's tenant, as ``GET /v1/audit`` lists them (with its place in the chain)."""
    state, tenant = _state(request), tenant_of(request)
    entry = await anyio.to_thread.run_sync(state.audit.entry, request_id, tenant)
    if entry is None:
        raise AuditRecordNotFoundError(
            f"no audit record {request_id!r} in your tenant's log: GET /v1/audit lists the records"
        )
    return entry
