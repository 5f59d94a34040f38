"""Text that reaches clearlm without its language model generating it (a speech transcript, text read from
an image, a description) held to the input policy and written to the audit log like a turn's prompt, in
one call: the pipeline's "govern this text" entry, so that no media entry point scans or audits by itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from clearlm.errors import ClearlmError, PolicyViolationError
from clearlm.govern.base import Action, ScanContext
from clearlm.govern.policy import Policy
from clearlm.store.audit import AuditLog, AuditRecord
from clearlm.store.review import add_escalated


@dataclass(frozen=True, slots=True)
class Screened:
    """A screened text. ``text``: what may be used and shown (redacted where the policy said so; the
    policy's refusal when it blocked the text); ``blocked``; ``action``: the most severe action taken
    ("allow", "redact", "warn", "escalate", "block"); ``governance``: what the audit record keeps of the
    decision (None without a policy); ``request_id``: the audit record's id; ``changed``: the text differs
    from the one given."""

    text: str
    blocked: bool
    action: str
    governance: dict | None
    request_id: str
    changed: bool


def screen_text(
    text: str,
    record: AuditRecord,
    audit: AuditLog | None = None,
    policy: Policy | None = None,
    *,
    role: str = "user",
    language: str | None = None,
) -> Screened:
    """Hold ``text`` to ``policy``'s input stage (role ``role``, ``language`` an ISO 639-1 code or None)
    and write ``record`` (its id, time, endpoint, key, model and parameters set by the caller) to ``audit``:
    the text, stored as the policy stores text, is the record's prompt and, as returned, its output. An
    escalated text is queued for review like an escalated turn.

    Raises:
        PolicyViolationError: the policy blocked the text and answers blocks with an error (recorded first,
            status 400). Any other failure is recorded with status 500 and raised.
    """
    governance: dict | None = None
    try:
        if policy is None:
            out, stored, action = text, text, Action.ALLOW
        else:
            decision = policy.check(text, ScanContext("input", role, language))
            action, stored = decision.action, decision.stored
            governance = {"policy": policy.name, "input": decision.to_dict()}
            if action is Action.ESCALATE:
                governance["escalated"] = True
            out = decision.text
            if decision.blocked:
                found = sorted({f.type for r in decision.results for f in r.findings})
                if policy.spec.on_block == "error":
                    raise PolicyViolationError(
                        f"the text was blocked by the {policy.name!r} policy ({', '.join(found)})"
                    )
                out = policy.spec.refusal
        record.prompt, record.output = stored, stored if action is not Action.BLOCK else out
        record.governance, record.status_code, record.finish_reason = governance, 200, "stop"
    except ClearlmError as exc:
        _write(record, audit, exc.status_code, str(exc), governance)
        raise
    except Exception as exc:
        _write(record, audit, 500, f"{exc.__class__.__name__}: {exc}", governance)
        raise
    _write(record, audit, 200, None, governance)
    return Screened(out, action is Action.BLOCK, action.value, governance, record.request_id, out != text)


def _write(record: AuditRecord, audit: AuditLog | None, status: int, error: str | None, governance) -> None:
    record.status_code, record.error, record.governance = (
        status,
        error,
        governance,
    )  # a refused text: no prompt
    record.latency_ms = (datetime.now(UTC) - record.created_at).total_seconds() * 1000
    if audit is None:
        return
    audit.write(record)
    if governance and governance.get("escalated"):
        add_escalated(audit.db, record, None)
