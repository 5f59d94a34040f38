"""The studio's one way to the model: a pipeline turn (``clearlm.pipeline``) per request, recorded in the
audit log with endpoint ``studio:<operation>`` and the project in ``origin``. The studio's own
instructions (its role, the project's tone and style controls) are the turn's ``instructions``; the
author's material (bible entries, beats, the scene) is the user message, which a policy scans."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from clearlm.apps.studio.projects import StudioError
from clearlm.models.backends.base import SamplingParams
from clearlm.models.chat import Message
from clearlm.pipeline import CONTENT_FILTER, Turn, TurnRequest, start_turn
from clearlm.store.audit import AuditRecord

ROLE = (
    "You are a fiction writing assistant working on the author's story. Follow the story bible exactly: "
    "never contradict a fact it gives (names, looks, places, dates). Write prose only, with no headings, "
    "notes or commentary."
)


def instructions(style: dict | None, role: str = ROLE) -> str:
    """The turn's system text: ``role`` (default :data:`ROLE`) and the project's tone and style controls."""
    style = style or {}
    parts = [role]
    if style.get("tone"):
        parts.append(f"Tone: {style['tone']}.")
    if style.get("person"):
        parts.append(f"Point of view: {style['person']} person.")
    if style.get("tense"):
        parts.append(f"Tense: {style['tense']}.")
    if style.get("notes"):
        parts.append(f"Style notes: {style['notes']}")
    return " ".join(parts)


@dataclass(slots=True)
class Asked:
    """What a turn returned: one text per choice, the audit ``request_id``, the ``model``, and whether a
    policy replaced the answer (``refused``: its text is the policy's refusal, not prose)."""

    texts: list[str]
    request_id: str
    model: str
    refused: bool
    finish_reasons: list[str]
    turn: Turn


@dataclass(slots=True)
class Asker:
    """Runs studio turns on ``backend`` under ``policy`` (None: none), recorded to ``audit`` (None: not
    recorded); ``api_key_id`` and ``tenant`` go into each record."""

    backend: object
    audit: object | None = None
    policy: object | None = None
    api_key_id: str | None = None
    tenant: str = "default"

    @property
    def model(self) -> str:
        return self.backend.name

    def record(self, operation: str) -> AuditRecord:
        """A new audit record for a studio turn (``studio-<hex>``, endpoint ``studio:<operation>``)."""
        return AuditRecord(
            request_id=f"studio-{secrets.token_hex(8)}",
            created_at=datetime.now(UTC),
            endpoint=f"studio:{operation}",
            api_key_id=self.api_key_id,
            tenant=self.tenant,
        )

    def ask(self, operation: str, text: str, style: dict | None, params: SamplingParams, *, n: int = 1,
            project_id: str | None = None, role: str = ROLE) -> Asked:  # fmt: skip
        """One pipeline turn: ``text`` as the user message under the studio's instructions (``role`` and
        the ``style`` controls); ``n`` choices.

        Raises:
            InvalidInputError (ContextLengthError): the prompt is longer than the model's context: fewer
                bible entries, a shorter scene or a lower max_tokens; PolicyViolationError.
        """
        record = self.record(operation)
        request = TurnRequest([Message("user", text)], params, n=n, origin={"studio_project": project_id},
                              instructions=instructions(style, role))  # fmt: skip
        turn = start_turn(self.backend, request, record, self.audit, self.policy).run()
        reasons = [c.finish_reason or "stop" for c in turn.choices]
        return Asked([c.text for c in turn.choices], record.request_id, self.backend.name,
                     CONTENT_FILTER in reasons, reasons, turn)  # fmt: skip


def need_text(text: str, what: str, hint: str = "write or draft something first") -> str:
    """``text``, or StudioError when it is blank (the message names ``what`` and the ``hint``)."""
    if not text.strip():
        raise StudioError(f"the {what} is empty: {hint}")
    return text
