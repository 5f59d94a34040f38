"""Content checks: toxicity (the packaged alt-profanity-check model plus an extensible word list) and
banned topics (embedding similarity to topic descriptions)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from clearlm.govern.base import Finding, ScanContext, SpanScanner

BASE_WORDS = ("fuck", "shit", "bitch", "bastard", "asshole", "cunt", "dickhead", "motherfucker", "retard")


@dataclass
class ToxicityScanner(SpanScanner):
    """The whole text's probability of being offensive (alt-profanity-check, a linear SVM on bag-of-words,
    calibrated), and a finding per listed word (``words`` extends the built-in list; whole words, any case)."""

    words: tuple[str, ...] = ()
    name: str = field(default="toxicity", init=False)

    def findings(self, text: str, context: ScanContext) -> list[Finding]:
        if not text.strip():
            return []
        from profanity_check import predict_prob

        out = []
        prob = float(predict_prob([text])[0])
        if prob >= 0.5:
            out.append(Finding("offensive", 0, 0, prob))
        words = "|".join(re.escape(w) for w in (*BASE_WORDS, *self.words))
        out += [
            Finding("listed_word", m.start(), m.end(), 1.0)
            for m in re.finditer(rf"\b({words})\w*", text, re.I)
        ]
        return out


@dataclass
class TopicScanner(SpanScanner):
    """``topics``: name -> description. A finding per topic whose description is close to the text (the
    best sentence) in all-MiniLM-L6-v2 space: score = (cos - floor) / (ceiling - floor), clipped to [0, 1]."""

    embedder: object = None
    topics: dict[str, str] = field(default_factory=dict)
    floor: float = 0.25
    ceiling: float = 0.55
    name: str = field(default="banned_topics", init=False)
    _vectors: np.ndarray | None = field(default=None, init=False, repr=False)

    def findings(self, text: str, context: ScanContext) -> list[Finding]:
        if not text.strip() or not self.topics:
            return []
        if self._vectors is None:
            self._vectors = self.embedder.encode(list(self.topics.values()))
        sentences = [s for s in re.split(r"(?<=[.!?\n])\s+", text) if s.strip()][:32] or [text]
        cos = (self.embedder.encode([text, *sentences]) @ self._vectors.T).max(axis=0)
        scores = np.clip((cos - self.floor) / (self.ceiling - self.floor), 0, 1)
        return [Finding(name, 0, 0, float(s)) for name, s in zip(self.topics, scores, strict=True) if s > 0]
