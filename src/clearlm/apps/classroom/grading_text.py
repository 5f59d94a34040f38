"""The grader's text side: what it reads in a learner's answer without the language model.

- :func:`segments`: the answer cut into spans (sentences; a bracketed note, an HTML comment, a tagged block
  or a ``### ... ###`` banner each on its own), with their character offsets.
- :func:`screen`: the spans the project's prompt-injection scanner (``clearlm.govern.injection``, the
  policy's ``prompt_injection`` scanner: patterns and its classifier) scores at or over ``threshold``
  (0.8, the sample policy's), removed from the text to grade and kept as findings.
- :class:`TextFeatures` / :func:`text_features`: the cosine similarity of the answer to the reference
  answer (all-MiniLM-L6-v2, the knowledge bases' embedder), each key point's coverage (its best cosine
  similarity to one of the answer's sentences), the length in words, and the language (lingua, as
  ``apps.support.translation`` detects it).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np

INJECTION_THRESHOLD = 0.8  # the sample policy's prompt_injection threshold
COVERED = 0.5  # a key point whose best sentence similarity reaches this is taken as made
# a bracketed note, an HTML comment, a tagged block, a ### banner ###: each a span of its own
_ASIDE = re.compile(
    r"\[(?P<b>\w+)\].*?\[/(?P=b)\]|<(?P<t>\w+)>.*?</(?P=t)>|\[[^\]]{3,}\]|\([^)]{3,}\)|<!--.*?-->"
    r"|#{2,}.*?#{2,}|!{2,}.*?!{2,}",
    re.S,
)
# requests addressed to a grader, which the general scanner (tuned on chat attacks) misses: a mark asked
# for, the rubric set aside, the grader addressed (the grading set's dev split showed these)
GRADER_PATTERNS = re.compile(
    r"\b(full|maximum|max|perfect|top)\s+(marks?|scores?|credit|points)\b"
    r"|\b(give|award|assign|output|mark|score|grade|treat)\b[^.\n]{0,40}\b([0-9]+\s*(points?|marks?|/\s*[0-9]+)"
    r"|score\s*[0-9]|full(y)? (marks|credit|correct)|as (fully )?correct|matching the reference)"
    r"|\b(ignore|disregard|set aside|forget)\b[^.\n]{0,30}\b(rubric|marking|criteria|reference|scheme)"
    r"|\b(the\s+)?(ai|automatic|automated|marking|grading)\s+(grader|model|system|scores?)\b"
    r"|\b(dear|attention|note to the|message to the)\s+(ai|grader|assistant|marker)"
    r"|\b(grader|marker)\s*:|\b(correct|right|real)\s+score\b",
    re.I,
)
_SENTENCE = re.compile(r"[^.!?\n]+(?:[.!?]+|$)", re.M)


@dataclass(frozen=True, slots=True)
class Span:
    """A piece of the answer: ``text`` and its character offsets ``[start, end)`` in the answer."""

    text: str
    start: int
    end: int


def segments(answer: str) -> list[Span]:
    """The answer's spans in reading order: asides (see the module docstring) whole, the rest cut into
    sentences at ``.``, ``!``, ``?`` and line breaks; blank pieces dropped."""
    out: list[Span] = []
    at = 0
    for m in _ASIDE.finditer(answer):
        out += _sentences(answer, at, m.start())
        out.append(_stripped(answer, m.start(), m.end()))
        at = m.end()
    out += _sentences(answer, at, len(answer))
    return [s for s in out if any(c.isalnum() for c in s.text)]


def _stripped(text: str, start: int, end: int) -> Span:
    """The span ``text[start:end]`` without its leading and trailing whitespace."""
    piece = text[start:end]
    lead = len(piece) - len(piece.lstrip())
    return Span(piece.strip(), start + lead, start + lead + len(piece.strip()))


def _sentences(text: str, start: int, end: int) -> list[Span]:
    found = (_stripped(text, start + m.start(), start + m.end()) for m in _SENTENCE.finditer(text[start:end]))
    return [s for s in found if s.text]


def windows(answer: str, size: int = 6) -> list[Span]:
    """Word windows of ``size`` words (the last one shorter), for answers of one sentence."""
    words = list(re.finditer(r"\S+", answer))
    return [
        _stripped(answer, words[i].start(), words[min(i + size, len(words)) - 1].end())
        for i in range(0, len(words), size)
    ]


def without(answer: str, spans: list[Span]) -> str:
    """``answer`` with ``spans`` cut out (whitespace tidied)."""
    keep, at = [], 0
    for s in sorted(spans, key=lambda s: s.start):
        keep.append(answer[at : s.start])
        at = s.end
    keep.append(answer[at:])
    return re.sub(r"\s+", " ", "".join(keep)).strip()


@dataclass(frozen=True, slots=True)
class Screened:
    """What :func:`screen` found: ``text`` (the answer without the flagged spans), ``removed`` (each
    flagged span with its scanner findings' highest score and types), ``whole_flagged``: the scanner
    flags the whole answer although no single span reaches the threshold."""

    text: str
    removed: list[dict]
    whole_flagged: bool = False


def screen(answer: str, scanner, threshold: float = INJECTION_THRESHOLD) -> Screened:
    """The answer without the spans ``scanner`` (an ``InjectionScanner``) scores >= ``threshold`` or
    :data:`GRADER_PATTERNS` matches (finding type ``grader_instruction``)."""
    from clearlm.govern.base import Finding, ScanContext

    ctx = ScanContext("input", "user")
    removed, flagged = [], []
    for span in segments(answer):
        found = [f for f in scanner.findings(span.text, ctx) if f.score >= threshold]
        if GRADER_PATTERNS.search(span.text):
            found.append(Finding("grader_instruction", 0, 0, 1.0))
        if found:
            flagged.append(span)
            removed.append(
                {
                    "text": span.text,
                    "start": span.start,
                    "end": span.end,
                    "score": round(max(f.score for f in found), 4),
                    "types": sorted({f.type for f in found}),
                }
            )
    text = without(answer, flagged)
    whole = False
    if not flagged and answer.strip():
        whole = any(f.score >= threshold for f in scanner.findings(answer, ctx))
    return Screened(text, removed, whole)


@dataclass(frozen=True, slots=True)
class TextFeatures:
    """``similarity``: cosine of the answer and the reference answer; ``coverage``: per key point its
    best cosine to one of the answer's sentences (in the rubric's order); ``words``: the answer's word
    count; ``language``: ISO 639-1 code, or None when lingua is unsure (under 20 characters, ...)."""

    similarity: float
    coverage: tuple[float, ...]
    words: int
    language: str | None

    @property
    def mean_coverage(self) -> float:
        return float(np.mean(self.coverage)) if self.coverage else self.similarity

    @property
    def english(self) -> bool:
        return self.language in (None, "en")

    def vector(self) -> list[float]:
        """[similarity, mean coverage, log(1 + words), english (1/0)]: the calibration's text inputs."""
        return [self.similarity, self.mean_coverage, math.log1p(self.words), float(self.english)]


def text_features(embedder, answer: str, reference: str, key_points: tuple[str, ...]) -> TextFeatures:
    """The :class:`TextFeatures` of a non-empty ``answer`` (``embedder``: a clearlm ``Embedder``)."""
    from clearlm.apps.support.translation import detect_language

    sentences = [s.text for s in segments(answer)] or [answer]
    vectors = embedder.encode([answer, reference, *key_points, *sentences])
    a, r = vectors[0], vectors[1]
    k = vectors[2 : 2 + len(key_points)]
    s = vectors[2 + len(key_points) :]
    coverage = tuple(float(x) for x in (k @ s.T).max(axis=1)) if len(key_points) else ()
    return TextFeatures(float(a @ r), coverage, len(answer.split()), detect_language(answer))
