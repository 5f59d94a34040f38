"""Releasing a streamed answer through an output policy a sentence at a time.

An output policy that may block must see the whole answer before any of it is sent (a refusal cannot
recall what was already shown). One that only redacts, warns or escalates need not: the answer is held
back only up to the last sentence end (or line end) and each released part is checked on its own, so the
first words reach the reader after the first sentence, not after the last. The rule follows the streaming
guardrails of NVIDIA NeMo Guardrails (``streaming.chunk_size`` with a look-back) and Guardrails AI's
validate-on-sentence streaming: a PII value does not cross a sentence end.
"""

from __future__ import annotations

import re

from clearlm.govern.base import Action
from clearlm.govern.policy import Decision, Policy

# A sentence end: . ! or ? after three letters or digits (so "Dr.", "St.", "e.g." and "3.5" do not end
# one), then white space; or a line end.
_END = re.compile(r"(?<=[^\W_]{3}[.!?])[ \t]+|\n+")
MAX_HELD = 400  # characters held back at most when no sentence ends; then cut at white space
KEEP = 100  # ... keeping this many characters back, so a value near the end is checked whole


def streams(policy: Policy | None) -> bool:
    """True when ``policy``'s output stage may be checked part by part: it has rules, none of them blocks."""
    rules = policy.spec.output if policy is not None else []
    return bool(rules) and all(r.action is not Action.BLOCK for r in rules)


def release_point(text: str) -> int:
    """How many leading characters of ``text`` (held back so far) may be checked and released now: up to
    the last sentence or line end, else, past ``MAX_HELD`` characters, up to the last white space before
    the final ``KEEP``; 0 when nothing may go yet."""
    cut = 0
    for m in _END.finditer(text):
        cut = m.end()
    if cut or len(text) <= MAX_HELD:
        return cut
    space = max(text.rfind(" ", 0, len(text) - KEEP), text.rfind("\n", 0, len(text) - KEEP))
    return space + 1 if space > 0 else len(text) - KEEP


def joined(parts: list[tuple[int, Decision]]) -> Decision:
    """One decision for a text checked in consecutive parts, each given with its start offset in the whole
    text: the parts' texts joined, the most severe action, and each scanner's findings with their spans
    moved to the whole text's offsets."""
    from dataclasses import replace

    first = parts[0][1]
    results = []
    for j, result in enumerate(first.results):
        found = tuple(
            replace(f, start=f.start + at, end=f.end + at) if f.end else f
            for at, d in parts
            for f in d.results[j].findings
        )
        action = max((d.results[j].action for _, d in parts), key=lambda a: a.severity)
        risk = max(d.results[j].risk for _, d in parts)
        results.append(replace(result, findings=found, risk=risk, action=action))
    return Decision(
        "".join(d.text for _, d in parts),
        max((d.action for _, d in parts), key=lambda a: a.severity),
        tuple(results),
        "".join(d.stored for _, d in parts),
    )
