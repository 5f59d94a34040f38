"""Extractive answers: the sentences of the retrieved passages closest in meaning to the question, quoted
word for word and cited, or the abstention when none is close enough. No text is generated, so the answer
states the passage's exact commands, options and values, and every citation points at the span it quotes.

Sentences are ranked by the cosine similarity of their embedding and the question's (the knowledge base's
own embedding model: a bi-encoder trained on question-answer pairs, Reimers and Gurevych 2019), the
answer-sentence selection of extractive question answering (Yang et al. 2015, WikiQA) without a trained
reader. The answer quotes the best ``SENTENCES`` sentences in the order the passages give them; it
abstains when the best similarity is under ``MIN_SIMILARITY``.

On issue 14's questions over the Debian Reference (``benchmarks/bench_answers.py``) this states the key
fact more often than qwen2.5-0.5b-instruct generating from the same passages, in well under a second; the
README gives the figures.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from clearlm.knowledge.passage import Passage
from clearlm.knowledge.quotes import NO_ANSWER

SENTENCES = 2  # sentences quoted
# The best sentence's cosine similarity under which the answer abstains (all-MiniLM-L6-v2). Chosen on
# kb_questions + kb_unanswerable (benchmarks/bench_answers.py --answer extract): see the README.
MIN_SIMILARITY = 0.55
MIN_CHARS = 12  # shorter pieces ("Note", "foo login:") are not sentences worth quoting
MAX_CHARS = 400  # a longer piece (a table, a code block) is not quoted whole
_BOUNDARY = re.compile(r"(?<=[.!?:])\s+|\n+")


@dataclass(frozen=True, slots=True)
class ScoredSentence:
    """A sentence of a passage: ``passage`` its 0-based index, [``start``, ``end``) its characters in the
    passage's text, ``similarity`` the cosine similarity of its embedding and the question's."""

    passage: int
    start: int
    end: int
    similarity: float


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """[start, end) of each sentence of ``text``: pieces between ". ", "! ", "? ", ": " and line breaks,
    white space trimmed, ``MIN_CHARS`` to ``MAX_CHARS`` characters long."""
    spans, start = [], 0
    for m in [*_BOUNDARY.finditer(text), None]:
        end = m.start() if m else len(text)
        piece = text[start:end]
        lead = len(piece) - len(piece.lstrip())
        s, e = start + lead, start + len(piece.rstrip())
        if MIN_CHARS <= e - s <= MAX_CHARS:
            spans.append((s, e))
        start = m.end() if m else len(text)
    return spans


def rank_sentences(embedder, question: str, passages: list[Passage]) -> list[ScoredSentence]:
    """Every sentence of ``passages`` (``sentence_spans``) with its similarity to ``question``, most
    similar first (ties: earlier passage, earlier sentence). ``embedder``: a
    ``clearlm.models.embeddings.Embedder`` (one ``encode`` call of 1 + the number of sentences texts)."""
    spans = [(i, s, e) for i, p in enumerate(passages) for s, e in sentence_spans(p.text)]
    if not spans:
        return []
    vectors = np.asarray(embedder.encode([question] + [passages[i].text[s:e] for i, s, e in spans]))
    vectors = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    similarity = vectors[1:] @ vectors[0]
    order = sorted(range(len(spans)), key=lambda j: (-similarity[j], j))
    return [ScoredSentence(*spans[j], float(similarity[j])) for j in order]


def extractive_text(
    ranked: list[ScoredSentence],
    passages: list[Passage],
    *,
    sentences: int = SENTENCES,
    min_similarity: float = MIN_SIMILARITY,
) -> str:
    """The answer: the ``sentences`` best of ``ranked``, each as its passage writes it followed by
    ``[n]`` (its passage's number), in passage order; ``NO_ANSWER`` when ``ranked`` is empty or its best
    similarity is under ``min_similarity``."""
    if not ranked or ranked[0].similarity < min_similarity:
        return NO_ANSWER
    chosen = sorted(ranked[:sentences], key=lambda s: (s.passage, s.start))
    return " ".join(f"{passages[s.passage].text[s.start : s.end]} [{s.passage + 1}]" for s in chosen)
