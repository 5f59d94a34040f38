"""Policies: a YAML file lists the scanners to run on input and on output, in order, with thresholds and
actions. ``load_policy`` validates it with errors that name the line's path (``input[1].threshold``).

    name: support-desk
    refusal: "Sorry, I can't help with that."
    on_block: refuse          # answer with the refusal (finish_reason "content_filter"), or: error (HTTP 400)
    store_redacted: true      # the audit log never receives raw PII
    input:
      - {scanner: prompt_injection, threshold: 0.8, action: block}
      - {scanner: pii, action: redact, operator: replace}
    output:
      - {scanner: toxicity, threshold: 0.8, action: block}
      - {scanner: pii, action: redact}
"""

from __future__ import annotations

import functools
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from clearlm.errors import InvalidInputError
from clearlm.govern.base import Action, Finding, ScanContext, ScanResult

FINDINGS_CACHE_CHARS = 4_000_000  # the texts whose findings a policy remembers, in characters at most


class _Rule(BaseModel):
    model_config = ConfigDict(extra="forbid")
    action: Action = Action.WARN
    threshold: float = Field(default=0.5, ge=0, le=1)


class PiiRule(_Rule):
    scanner: Literal["pii"]
    threshold: float = Field(default=0.4, ge=0, le=1)  # Presidio scores a bare phone number 0.4
    entities: list[str] | None = None
    operator: Literal["replace", "redact", "mask", "hash", "encrypt"] = "replace"
    salt_env: str = "CLEARLM_PII_SALT"  # hash: the salt is read from this environment variable
    key_env: str = "CLEARLM_PII_KEY"  # encrypt: the AES key is read from this environment variable
    allow: list[str] = []  # regular expressions: a finding whose whole text matches one is kept as is


class ToxicityRule(_Rule):
    scanner: Literal["toxicity"]
    words: list[str] = []


class InjectionRule(_Rule):
    scanner: Literal["prompt_injection"]
    threshold: float = Field(default=0.8, ge=0, le=1)  # what its scores are set for (0.6: merely suspicious)
    classifier: bool = True  # also run the embedding classifier (loads the embedding model)


class SecretsRule(_Rule):
    scanner: Literal["secrets"]


class TopicsRule(_Rule):
    scanner: Literal["banned_topics"]
    topics: dict[str, str] = Field(min_length=1)


class RegexRule(_Rule):
    scanner: Literal["regex"]
    patterns: dict[str, str] = Field(min_length=1)


class LanguageRule(_Rule):
    scanner: Literal["language"]
    allowed: list[str] = Field(default=["en"], min_length=1)


class LengthRule(_Rule):
    scanner: Literal["length"]
    max_chars: int = Field(default=8000, ge=1)


Rule = Annotated[
    PiiRule | ToxicityRule | InjectionRule | SecretsRule | TopicsRule | RegexRule | LanguageRule | LengthRule,
    Field(discriminator="scanner"),
]
SCANNERS = ("pii", "toxicity", "prompt_injection", "secrets", "banned_topics", "regex", "language", "length")


class PolicySpec(BaseModel):
    """The YAML file's schema."""

    model_config = ConfigDict(extra="forbid")
    name: str = "default"
    refusal: str = "I can't help with that request."
    on_block: Literal["refuse", "error"] = "refuse"
    store_redacted: bool = False
    input: list[Rule] = []
    output: list[Rule] = []


@dataclass(frozen=True)
class Decision:
    """The outcome of one stage on one text: the text to use (redacted where a rule said so), the most
    severe action taken, each scanner's result, and the text to store (PII-redacted with store_redacted)."""

    text: str
    action: Action
    results: tuple[ScanResult, ...]
    stored: str

    @property
    def blocked(self) -> bool:
        return self.action is Action.BLOCK

    def to_dict(self) -> dict:
        return {"action": self.action.value, "results": [r.to_dict() for r in self.results if r.findings]}


@dataclass
class Policy:
    """A loaded policy: ``check(text, context)`` runs the stage's scanners in order.

    Each scanner's findings on a text are remembered (least recently used first out, up to
    ``FINDINGS_CACHE_CHARS`` characters of text): a chat resends its system prompt and its history with
    every turn, and the scanners are deterministic, so those texts are scanned once, not once per turn."""

    spec: PolicySpec
    embedder_factory: object = None  # () -> Embedder, for the scanners that embed
    _scanners: dict[int, object] = field(default_factory=dict, init=False, repr=False)
    _seen: OrderedDict = field(default_factory=OrderedDict, init=False, repr=False)
    _seen_chars: int = field(default=0, init=False, repr=False)
    _seen_lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.embedder_factory is not None:  # one embedding model for all the scanners that need it
            self.embedder_factory = functools.cache(self.embedder_factory)

    @property
    def name(self) -> str:
        return self.spec.name

    def rules(self, stage: str) -> list:
        return self.spec.input if stage == "input" else self.spec.output

    def check(self, text: str, context: ScanContext) -> Decision:
        results, action = [], Action.ALLOW
        for rule in self.rules(context.stage):
            scanner = self._scanner(rule)
            found = self._findings(rule, scanner, text, context)
            hits = [f for f in found if f.score >= rule.threshold]
            taken = rule.action if hits else Action.ALLOW
            results.append(
                ScanResult(scanner.name, tuple(found), max((f.score for f in found), default=0.0), taken)
            )
            if taken.severity > action.severity:
                action = taken
            if taken is Action.REDACT:
                text = scanner.redact(text, hits)
            if taken is Action.BLOCK:
                break
        return Decision(text, action, tuple(results), self.stored(text, context))

    def _findings(self, rule, scanner, text: str, context: ScanContext) -> tuple[Finding, ...]:
        key = (id(rule), context, text)
        with self._seen_lock:
            if (found := self._seen.get(key)) is not None:
                self._seen.move_to_end(key)
                return found
        found = tuple(scanner.findings(text, context))
        with self._seen_lock:
            if key not in self._seen:
                self._seen[key], self._seen_chars = found, self._seen_chars + len(text)
            while self._seen_chars > FINDINGS_CACHE_CHARS:
                (_, _, old), _ = self._seen.popitem(last=False)
                self._seen_chars -= len(old)
        return found

    def stored(self, text: str, context: ScanContext | None = None) -> str:
        """The text as the audit log may keep it: with ``store_redacted``, every PII value redacted."""
        if not self.spec.store_redacted:
            return text
        scanner = self._scanner(self._storage_rule)
        return scanner.redact(
            text, self._findings(self._storage_rule, scanner, text, context or ScanContext())
        )

    @functools.cached_property
    def _storage_rule(self) -> PiiRule:
        """The policy's first PII rule, or a default one (kept, so its scanner is built once)."""
        rules = (*self.spec.input, *self.spec.output)
        return next((r for r in rules if isinstance(r, PiiRule)), PiiRule(scanner="pii"))

    def _scanner(self, rule):
        key = id(rule)
        if key not in self._scanners:
            self._scanners[key] = build_scanner(rule, self.embedder_factory)
        return self._scanners[key]

    def build_all(self) -> None:
        """Build every scanner now and run it once on a short text, so that models load and warm up here
        rather than in the first request (missing keys and bad patterns are reported)."""
        for stage in ("input", "output"):
            for rule in self.rules(stage):
                self._scanner(rule).findings("Hello, how are you today?", ScanContext(stage, "user"))
        if self.spec.store_redacted:
            self._scanner(self._storage_rule)


def build_scanner(rule, embedder_factory=None):
    """The scanner a rule describes.

    Raises:
        InvalidInputError: a PII operator's salt or key is not in its environment variable; a regex that
            does not compile; an unknown PII entity.
    """
    from clearlm.govern import injection, moderation, pii, rules

    if isinstance(rule, PiiRule):
        salt = os.environ.get(rule.salt_env) if rule.operator == "hash" else None
        key = os.environ.get(rule.key_env) if rule.operator == "encrypt" else None
        if rule.operator == "hash" and not salt:
            raise InvalidInputError(
                f"the pii hash operator reads its salt from ${rule.salt_env}: set it (16+ characters)"
            )
        if rule.operator == "encrypt" and not key:
            raise InvalidInputError(
                f"the pii encrypt operator reads its AES key from ${rule.key_env}: set it (16, 24 or 32 characters)"
            )
        entities = tuple(rule.entities) if rule.entities else None
        return pii.PiiScanner(entities, rule.operator, salt, key, allow=tuple(rule.allow))
    if isinstance(rule, ToxicityRule):
        return moderation.ToxicityScanner(tuple(rule.words))
    if isinstance(rule, InjectionRule):
        return injection.InjectionScanner(
            embedder_factory() if rule.classifier and embedder_factory else None
        )
    if isinstance(rule, SecretsRule):
        return rules.SecretsScanner()
    if isinstance(rule, TopicsRule):
        return moderation.TopicScanner(embedder_factory(), dict(rule.topics))
    if isinstance(rule, RegexRule):
        return rules.RegexScanner(dict(rule.patterns))
    if isinstance(rule, LanguageRule):
        return rules.LanguageScanner(tuple(rule.allowed))
    return rules.LengthScanner(rule.max_chars)


def default_embedder():
    from clearlm.models.embeddings import load_embedder

    return load_embedder()


def parse_policy(text: str, source: str = "<policy>", embedder_factory=default_embedder) -> Policy:
    """A policy from YAML text.

    Raises:
        InvalidInputError: YAML that does not parse (with its line and column), or a schema error, named
            by its path in the file, e.g. ``input[1].threshold: Input should be less than or equal to 1``.
    """
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise InvalidInputError(
            f"{source} is not valid YAML{where}: {getattr(exc, 'problem', exc)}"
        ) from None
    if not isinstance(data, dict):
        raise InvalidInputError(f"{source} must be a YAML mapping with keys such as name, input, output")
    try:
        spec = PolicySpec.model_validate(data)
    except ValidationError as exc:
        lines = [f"{_path(e['loc'])}: {e['msg']}" for e in exc.errors()[:5]]
        raise InvalidInputError(f"{source} is not a valid policy:\n  " + "\n  ".join(lines)) from None
    for stage in ("input", "output"):
        for i, rule in enumerate(getattr(spec, stage)):
            if isinstance(rule, PiiRule):
                from clearlm.govern.pii import ENTITIES

                bad = set(rule.entities or ()) - set(ENTITIES)
                if bad:
                    raise InvalidInputError(
                        f"{source} is not a valid policy:\n  {stage}[{i}].entities: unknown {sorted(bad)}; "
                        f"choose from {', '.join(ENTITIES)}"
                    )
    return Policy(spec, embedder_factory)


def load_policy(path: str | Path, embedder_factory=default_embedder) -> Policy:
    """A policy from a YAML file. Raises InvalidInputError (unreadable file, or see :func:`parse_policy`)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInputError(f"cannot read the policy file {path}: {exc}") from None
    return parse_policy(text, str(path), embedder_factory)


def _path(loc) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in SCANNERS and out.endswith("]"):
            continue  # pydantic names the union member; the file does not
        else:
            out += ("." if out else "") + str(part)
    return out or "policy"
