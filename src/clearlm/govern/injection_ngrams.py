"""The prompt-injection scanner's second classifier, one that reads any script: logistic regression on the
character 2- to 4-grams of each word (scikit-learn's ``char_wb`` analyzer, reimplemented here so that
scoring needs no scikit-learn), present or absent, the vector scaled to unit length. all-mpnet-base-v2 is
an English model: attacks written in Chinese, Arabic, Hindi, ... land near benign text in its space, while
their words ("忽略", "تجاهل", "निर्देश") are plain character n-grams here.

Weights (``data/injection_ngrams.json``, an n-gram -> weight table, no pickle) are trained by
``benchmarks/train_injection_classifier.py`` on the same texts as the embedding classifier; the scanner
combines the two scores with the weights stored next to the embedding classifier (``"stack"``).
"""

from __future__ import annotations

import json
import math
import re
from functools import cache
from importlib import resources

SIZES = (2, 3, 4)
MAX_UNITS = 32  # the whole text and its first 31 sentences, as the embedding classifier
# a sentence ends at . ! ? followed by white space (not inside "maria.okafor@example.com" or "3.5"), at a
# line break, or at CJK full stops, which need no space after them
SENTENCE_END = re.compile(r"(?<=[.!?])\s+|(?<=[\n。！？])\s*")


def grams(text: str) -> set[str]:
    """The distinct character n-grams (lengths SIZES) of each word of ``text``, lower-cased, each word
    padded with one space on both sides (scikit-learn's ``char_wb``)."""
    out: set[str] = set()
    for word in text.lower().split():
        padded = f" {word} "
        for n in SIZES:
            out.update(padded[i : i + n] for i in range(len(padded) - n + 1))
    return out


def units(text: str) -> list[str]:
    """The texts scored: the whole text, then each of its sentences when it has two or more."""
    sentences = [s for s in SENTENCE_END.split(text) if s.strip()]
    return [text] + (sentences[: MAX_UNITS - 1] if len(sentences) > 1 else [])


@cache
def weights() -> tuple[dict[str, float], float]:
    """(n-gram -> weight, intercept) from ``data/injection_ngrams.json`` (read once)."""
    body = json.loads(resources.files("clearlm.govern").joinpath("data/injection_ngrams.json").read_text())
    return body["weights"], float(body["intercept"])


def decision(text: str) -> float:
    """The classifier's highest decision value (log-odds) over ``units(text)``."""
    w, b = weights()
    best = -math.inf
    for unit in units(text):
        g = grams(unit)
        if g:
            best = max(best, sum(w.get(x, 0.0) for x in g) / math.sqrt(len(g)) + b)
    return best if best > -math.inf else b
