"""Training data passes the PII policy before training: redacted, or refused.

The scanning is the governance layer's (``clearlm.govern``): a policy's input stage runs on every text
(document sections, chat messages) and its decision is applied as it stands: a redacting rule's text
replaces the original, a blocking rule refuses the whole data set, naming where the finding is.
"""

from __future__ import annotations

from pathlib import Path

from clearlm.errors import InvalidInputError, PolicyViolationError
from clearlm.govern import Action, Policy, ScanContext, load_policy, parse_policy

MODES = ("redact", "refuse")
# Place names are a domain's ordinary vocabulary (a city in a manual), not personal data on their own.
NOT_PERSONAL = ("LOCATION",)


def pii_policy(mode: str = "redact", policy_file: str | Path | None = None) -> Policy:
    """The policy training data passes: the input stage of ``policy_file`` when given, else one PII rule
    (Presidio, every entity but LOCATION) that redacts (``mode="redact"``) or refuses (``mode="refuse"``) the data.

    Raises:
        InvalidInputError: an unknown mode, or a policy file that does not load.
    """
    if policy_file is not None:
        return load_policy(policy_file)
    if mode not in MODES:
        raise InvalidInputError(f"unknown PII mode {mode!r}: choose one of {', '.join(MODES)}")
    from clearlm.govern.pii import ENTITIES

    action = "redact" if mode == "redact" else "block"
    entities = ", ".join(e for e in ENTITIES if e not in NOT_PERSONAL)
    return parse_policy(
        f"name: training-data-{mode}\ninput:\n  - {{scanner: pii, action: {action}, entities: [{entities}]}}\n",
        "<training-data policy>",
        embedder_factory=None,
    )


class Screen:
    """Runs one policy over every training text and counts what it did.

    Attributes: redactions (texts changed), findings (finding type -> count).
    """

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self.redactions = 0
        self.findings: dict[str, int] = {}

    def text(self, text: str, where: str, role: str = "document") -> str:
        """``text`` as training may use it: redacted where the policy says so.

        Raises:
            PolicyViolationError: the policy blocks the text; the message names ``where`` (file, line) and
                the kinds of finding, and says how to proceed.
        """
        if not text.strip():
            return text
        decision = self.policy.check(text, ScanContext("input", role))
        kinds = sorted({f.type for r in decision.results if r.action is not Action.ALLOW for f in r.findings})
        for kind in kinds:
            self.findings[kind] = self.findings.get(kind, 0) + 1
        if decision.blocked:
            raise PolicyViolationError(
                f"the training data holds personal data ({', '.join(kinds) or 'blocked by the policy'}) "
                f"in {where}: remove it, or tune with --pii redact to have it replaced"
            )
        if decision.text != text:
            self.redactions += 1
        return decision.text

    def summary(self) -> dict:
        return {
            "policy": self.policy.name,
            "redacted_texts": self.redactions,
            "findings": dict(self.findings),
        }
