"""Rule-based checks: secrets (detect-secrets), user regular expressions, language, length."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from clearlm.errors import InvalidInputError
from clearlm.govern.base import Finding, ScanContext, SpanScanner


@dataclass
class SecretsScanner(SpanScanner):
    """API keys, tokens, private keys and passwords in text (Yelp's detect-secrets plugins; the
    high-entropy-string plugins are left out, as they flag ordinary identifiers in prose)."""

    name: str = field(default="secrets", init=False)

    def findings(self, text: str, context: ScanContext) -> list[Finding]:
        from detect_secrets.core.scan import scan_line
        from detect_secrets.settings import default_settings

        out = []
        offset = 0
        with default_settings():
            for line in text.splitlines(keepends=True):
                for secret in scan_line(line):
                    if "High Entropy" in secret.type or not secret.secret_value:
                        continue
                    i = line.find(secret.secret_value)
                    if i < 0:
                        continue
                    start, end = i, i + len(secret.secret_value)
                    while end < len(line) and not line[end].isspace() and line[end] not in "\"'`,;":
                        end += 1  # the whole token, not just the part a plugin matched
                    out.append(
                        Finding(secret.type.replace(" ", "_").upper(), offset + start, offset + end, 1.0)
                    )
                offset += len(line)
        return out


@dataclass
class RegexScanner(SpanScanner):
    """``patterns``: name -> regular expression (Python syntax); a finding per match, score 1.

    Raises:
        InvalidInputError: a pattern that does not compile.
    """

    patterns: dict[str, str] = field(default_factory=dict)
    name: str = field(default="regex", init=False)

    def __post_init__(self) -> None:
        self._compiled = {}
        for key, pattern in self.patterns.items():
            try:
                self._compiled[key] = re.compile(pattern)
            except re.error as exc:
                raise InvalidInputError(f"regex pattern {key!r} does not compile: {exc}") from None

    def findings(self, text: str, context: ScanContext) -> list[Finding]:
        return [
            Finding(k, m.start(), m.end(), 1.0) for k, rx in self._compiled.items() for m in rx.finditer(text)
        ]


_detector = None


@dataclass
class LanguageScanner(SpanScanner):
    """A finding when the text is in none of ``allowed`` (ISO 639-1 codes), detected by lingua; score is
    lingua's confidence in the detected language. Texts under 20 characters are not judged."""

    allowed: tuple[str, ...] = ("en",)
    name: str = field(default="language", init=False)

    def findings(self, text: str, context: ScanContext) -> list[Finding]:
        global _detector
        if len(text.strip()) < 20:
            return []
        from lingua import LanguageDetectorBuilder

        if _detector is None:
            _detector = LanguageDetectorBuilder.from_all_languages().with_low_accuracy_mode().build()
        values = _detector.compute_language_confidence_values(text)
        if not values:
            return []
        best = values[0]
        code = best.language.iso_code_639_1.name.lower()
        return [] if code in self.allowed else [Finding(f"language_{code}", 0, 0, float(best.value))]


@dataclass
class LengthScanner(SpanScanner):
    """A finding when the text is longer than ``max_chars`` characters (score 1)."""

    max_chars: int = 8000
    name: str = field(default="length", init=False)

    def findings(self, text: str, context: ScanContext) -> list[Finding]:
        return [Finding("too_long", 0, 0, 1.0)] if len(text) > self.max_chars else []

    def redact(self, text: str, findings: list[Finding]) -> str:
        return text[: self.max_chars] if findings else text
