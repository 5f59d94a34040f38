"""Governance over HTTP, for admin keys and their own tenant: the policy in force (``GET/PUT /v1/policy``),
the scan playground (``POST /v1/scan``); its router also carries ``server.audit_api``'s routes (one audit
record, chain verification, export).

The server's policy applies to every tenant, so only an admin of the ``default`` tenant (the operator's,
and open access) may replace it; a key created with its own policy file keeps that file (set by whoever
made the key, so an admin cannot edit their way out of it). Every request here is audited like any /v1
request: a policy change keeps the new YAML as the record's prompt.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

import anyio
from fastapi import Request
from pydantic import BaseModel, ConfigDict, Field

from clearlm.errors import InvalidInputError
from clearlm.govern.base import Action, ScanContext
from clearlm.govern.policy import Policy, parse_policy
from clearlm.paths import clearlm_home, write_text_atomic
from clearlm.server import audit_api
from clearlm.server import protocol as p
from clearlm.server.auth import tenant_of
from clearlm.server.errors import PermissionDeniedError, error_response
from clearlm.server.routes import ADMIN, _error, api_router
from clearlm.server.serving import policy_of
from clearlm.server.state import ServerState
from clearlm.store.keys import DEFAULT_TENANT

router = api_router()
MAX_POLICY_CHARS = 65_536  # a policy's YAML text


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
    try:
        text = Path(path).read_text(encoding="utf-8") if path else ""
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInputError(f"cannot read the policy file {path}: {exc}") from None
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


router.routes.extend(audit_api.router.routes)  # /v1/audit/export, /v1/audit/verify, /v1/audit/{request_id}
