"""The one contract every scanner follows: text (and its context) in; findings, a risk and an action out."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol


class Action(StrEnum):
    """What a policy does when a scanner's risk reaches its threshold, mildest first."""

    ALLOW = "allow"
    WARN = "warn"  # pass, and record the finding
    REDACT = "redact"  # replace the offending spans
    ESCALATE = "escalate"  # pass, and flag the request for a human
    BLOCK = "block"  # refuse

    @property
    def severity(self) -> int:
        return list(Action).index(self)


@dataclass(frozen=True, slots=True)
class Finding:
    """Something a scanner found: ``type`` (e.g. "EMAIL_ADDRESS", "instruction_override"), the character
    span [start, end) in the scanned text (0, 0 when it concerns the whole text), and a score in [0, 1]."""

    type: str
    start: int
    end: int
    score: float

    def to_dict(self) -> dict:
        return {"type": self.type, "start": self.start, "end": self.end, "score": round(self.score, 4)}


@dataclass(frozen=True, slots=True)
class ScanContext:
    """Where the text comes from: ``stage`` "input" or "output"; ``role``: the message's role ("system",
    "user", "assistant"; "document" for a retrieved passage, or a passage returned by a search; None when
    unknown), since every role's text is scanned; and its language (ISO 639-1, None = unknown)."""

    stage: str = "input"
    role: str | None = "user"
    language: str | None = None


@dataclass(frozen=True, slots=True)
class ScanResult:
    """One scanner's verdict: its findings, the risk (the highest score, 0 when none) and the proposed
    action (the configured one if the risk reaches the threshold, else allow)."""

    scanner: str
    findings: tuple[Finding, ...]
    risk: float
    action: Action

    def to_dict(self) -> dict:
        return {
            "scanner": self.scanner,
            "risk": round(self.risk, 4),
            "action": self.action.value,
            "findings": [f.to_dict() for f in self.findings],
        }


class Scanner(Protocol):
    """A scanner: ``name``, and ``findings(text, context)``; ``redact(text, findings)`` rewrites the
    offending spans (scanners whose findings have no span redact nothing)."""

    name: str

    def findings(self, text: str, context: ScanContext) -> list[Finding]: ...

    def redact(self, text: str, findings: list[Finding]) -> str: ...


def replace_spans(text: str, findings, replacement=lambda f: f"[{f.type}]") -> str:
    """``text`` with each finding's span replaced (overlapping spans merged, the higher score wins)."""
    spans = sorted((f for f in findings if f.end > f.start), key=lambda f: (f.start, -f.score))
    out, pos = [], 0
    for f in spans:
        if f.start < pos:  # overlaps a span already replaced
            continue
        out.append(text[pos : f.start])
        out.append(replacement(f))
        pos = f.end
    out.append(text[pos:])
    return "".join(out)


@dataclass
class SpanScanner:
    """Base for scanners whose findings are spans: redaction replaces each span by ``[TYPE]``."""

    name: str = field(default="", init=False)

    def redact(self, text: str, findings: list[Finding]) -> str:
        return replace_spans(text, findings)
