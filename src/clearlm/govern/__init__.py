"""Governance on every request: scanners with one contract, YAML policies, disclosure, model cards."""

from clearlm.govern.base import Action, Finding, ScanContext, ScanResult
from clearlm.govern.policy import Decision, Policy, load_policy, parse_policy

__all__ = [
    "Action",
    "Decision",
    "Finding",
    "Policy",
    "ScanContext",
    "ScanResult",
    "load_policy",
    "parse_policy",
]
