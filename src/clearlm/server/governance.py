"""Governance over HTTP, for admin keys and their own tenant: the policy in force (``GET/PUT /v1/policy``),
the scan playground (``POST /v1/scan``), and the audit log's single records, chain verification and export
(``/v1/audit/...``; the filtered list is ``GET /v1/audit`` in ``routes``).

The server's policy applies to every tenant, so only an admin of the ``default`` tenant (the operator's,
and open access) may replace it; a key created with its own policy file keeps that file (set by whoever
made the key, so an admin cannot edit their way out of it). Every request here is audited like any /v1
request: a policy change keeps the new YAML as the record's prompt.
"""

from __future__ import annotations

import json
import re
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Literal

import anyio
from fastapi import Depends, Request
from fastapi import Path as PathParam
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from clearlm.errors import ClearlmError, InvalidInputError
from clearlm.govern.base import Action, ScanContext
from clearlm.govern.policy import Policy, parse_policy
from clearlm.paths import clearlm_home, write_text_atomic
from clearlm.server import protocol as p
from clearlm.server.admin import AuditFilters, audit_filters, search_audit
from clearlm.server.auth import tenant_of
from clearlm.server.errors import PermissionDeniedError, error_response
from clearlm.server.routes import ADMIN, _error, api_router
from clearlm.server.serving import policy_of
from clearlm.server.state import ServerState
from clearlm.store.keys import DEFAULT_TENANT

router = api_router()
MAX_POLICY_CHARS = 65_536  # a policy's YAML text
EXPORT_PAGE = 500  # records read from the database at a time while an export streams


class PolicyUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    yaml: str = Field(
        max_length=MAX_POLICY_CHARS, description="The policy as YAML (see the README's Governance)."
    )


class ScanRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str = Field(
        max_length=p.MAX_MESSAGE_CHARS, description=f"At most {p.MAX_MESSAGE_CHARS:,} characters."
    )
    direction: Literal["input", "output"] = Field(
        "input", description="Scan as a prompt (the input rules) or as an answer (the output rules)."
    )


class AuditRecordNotFoundError(ClearlmError, LookupError):
    status_code = 404
    error_type = "not_found_error"
    code = "audit_record_not_found"


def _state(request: Request) -> ServerState:
    return request.app.state.clearlm


# The policy


def _source(request: Request, state: ServerState) -> tuple[str | None, str]:
    """The policy file the caller is held to and whose it is: ("key" | "server")."""
    own = getattr(request.state, "key_policy", None)
    return (own, "key") if own else (state.config.policy, "server")


def _locked(request: Request, source: str, path: str | None) -> str | None:
    """Why the caller may not replace the policy it is held to (None: it may)."""
    if source == "key":
        return (
            f"your key is held to its own policy file ({path}), set when the key was made: edit that file on "
            "the server, or use a key under the server's policy"
        )
    if tenant_of(request) != DEFAULT_TENANT:
        return (
            "the server's policy applies to every tenant: only an admin of the default tenant can change it "
            "(or give your keys their own policy: clearlm keys create NAME --policy FILE)"
        )
    return None


def _describe(request: Request, state: ServerState) -> dict:
    path, source = _source(request, state)
    policy = policy_of(request, state)
    text = Path(path).read_text(encoding="utf-8") if path else ""
    locked = _locked(request, source, path)
    return {
        "object": "policy",
        "source": source,
        "path": path,
        "yaml": text,
        "name": policy.name if policy else None,
        "rules": policy.spec.model_dump(mode="json") if policy else None,
        "editable": locked is None,
        "locked_because": locked,
    }


@router.get("/policy", **ADMIN)
async def get_policy(request: Request):
    """The policy the caller is held to: ``source`` (the caller key's own file, or the server's), its
    ``path`` (None: no policy), its ``yaml`` text, ``name`` and parsed ``rules`` (the schema of
    ``govern.policy.PolicySpec``), and whether the caller may replace it (``editable``, else why not)."""
    return await anyio.to_thread.run_sync(_describe, request, _state(request))


def _param(message: str) -> str:
    """The key a policy error names (``input[1].threshold``), or ``yaml`` for a syntax error."""
    found = re.search(r"\n  ([^\s:]+): ", message)
    return found.group(1) if found else "yaml"


def _validated(text: str, target: str, state: ServerState) -> Policy:
    policy = parse_policy(text, Path(target).name, embedder_factory=state.embedder)
    policy.build_all()  # a missing PII key, a bad pattern: refused now, not at the next request
    return policy


@router.put(
    "/policy",
    **{**ADMIN, "responses": {403: _error("Not an admin key, or one that may not change this policy.")}},
)
async def put_policy(body: PolicyUpdate, request: Request):
    """Replace the server's policy: validated (errors name the key, e.g. ``input[1].threshold``, in the
    message and in ``param``), written atomically to the server's policy file (``$CLEARLM_HOME/policy.yaml``
    when it had none, which becomes the server's), and in force from the next request. Answers as GET.

    Raises:
        PermissionDeniedError (403): the caller's key has its own policy, or is not of the default tenant.
    """
    state = _state(request)
    path, source = _source(request, state)
    locked = _locked(request, source, path)
    if locked:
        raise PermissionDeniedError(locked)
    target = path or str(clearlm_home() / "policy.yaml")
    record = request.state.audit_record
    record.parameters, record.prompt = {"path": target}, body.yaml
    try:
        policy = await anyio.to_thread.run_sync(_validated, body.yaml, target, state)
    except InvalidInputError as exc:
        message = str(exc)
        return error_response(
            request, 400, message, "invalid_request_error", "invalid_policy", _param(message)
        )

    def save() -> None:
        Path(target).parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(target, body.yaml)
        state.use_policy(target, policy)

    await anyio.to_thread.run_sync(save)
    return await get_policy(request)


# The scan playground


def scan_text(policy: Policy | None, text: str, direction: str) -> dict:
    """The policy's decision on ``text`` as ``direction`` (what a request would meet): the action, the
    text as it would pass (redacted), and each scanner's findings with spans in ``text`` (code points)."""
    if policy is None:
        return {
            "policy": None,
            "action": "allow",
            "blocked": False,
            "redacted": text,
            "results": [],
            "skipped": [],
        }
    context = ScanContext(direction, "user" if direction == "input" else "assistant")
    decision = policy.check(text, context)
    rules = policy.rules(direction)
    results, changed = [], False
    for rule, result in zip(rules, decision.results, strict=False):
        found = result.findings
        if changed:  # it scanned the text as earlier redactions left it: find its spans in the original
            found = policy._scanner(rule).findings(text, context)
        changed = changed or result.action is Action.REDACT
        results.append(
            {
                "scanner": result.scanner,
                "action": result.action.value,
                "risk": round(result.risk, 4),
                "threshold": rule.threshold,
                "findings": [
                    {**f.to_dict(), "text": text[f.start : f.end], "hit": f.score >= rule.threshold}
                    for f in found
                ],
            }
        )
    return {
        "policy": policy.name,
        "action": decision.action.value,
        "blocked": decision.blocked,
        "redacted": policy.spec.refusal if decision.blocked and direction == "output" else decision.text,
        "results": results,
        "skipped": [rule.scanner for rule in rules[len(decision.results) :]],  # after a block
    }


@router.post("/scan", **ADMIN)
async def scan(body: ScanRequest, request: Request):
    """Run the caller's policy's ``direction`` rules on ``text``: ``action`` (allow, warn, redact,
    escalate, block), ``redacted`` (the text as it would pass), per scanner its action, risk, threshold
    and findings (type, start, end in code points, score, the text found, whether it reached the
    threshold), and ``skipped`` (scanners after a block). ``policy`` is None when none is in force."""
    state = _state(request)
    record = request.state.audit_record
    record.parameters = {"direction": body.direction}

    def work() -> dict:
        policy = policy_of(request, state)
        result = scan_text(policy, body.text, body.direction)
        record.prompt = body.text if policy is None else policy.stored(body.text)
        if policy is not None:
            record.governance = {"policy": policy.name, "scan": {"action": result["action"]}}
        return result

    return {"object": "scan", "direction": body.direction, **await anyio.to_thread.run_sync(work)}


# The audit log: export, verification, one record


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
